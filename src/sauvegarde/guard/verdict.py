"""Judging one changed file from its sampled blocks, and combining findings into a verdict with bounded evidence.

Rules are named; each file finding lists the rules it fired. *Strong* rules say "this file's content was replaced by
ciphertext" (or is a ransom note); *weak* rules (mass changes in a folder, change rate far above the asset's history,
a note-like name alone) only raise a verdict together with other signals. See docs/guard.md for the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sauvegarde.guard import signals as sig

CLEAN, SUSPICIOUS, ATTACK = "clean", "suspicious", "attack"
LEVELS = {CLEAN: 0, SUSPICIOUS: 1, ATTACK: 2}

STRONG_RULES = frozenset(
    {"encrypted-content", "intermittent", "magic-mismatch", "type-changed", "format-broken", "ransom-note"}
)
ATTACK_FILES = 3  # this many files with strong findings make an attack
_NOTE_EXT = frozenset({"txt", "html", "htm", "hta", "rtf", "md", "url", ""})
MAX_FILES = 25  # evidence: files listed
MAX_DIRS = 10  # evidence: folders listed


@dataclass
class FileFinding:
    path: str
    kind: str
    previous: str
    rules: list[str]
    detail: str = ""

    @property
    def strong(self) -> bool:
        return any(r in STRONG_RULES for r in self.rules)

    @property
    def score(self) -> float:
        return min(1.0, sum(0.6 if r in STRONG_RULES else 0.2 for r in self.rules))

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "kind": self.kind, "rules": self.rules, "score": round(self.score, 2)}
        if self.previous:
            d["previous"] = self.previous
        if self.detail:
            d["detail"] = self.detail
        return d


def judge_file(
    name: bytes, size: int, head: bytes, tail: bytes, inner: list[bytes], previous: str
) -> tuple[str, list[str], str]:
    """The kind of a changed file's content, the rules it fires and a detail; ``previous`` is the old kind or ""."""
    kind = sig.magic_kind(head)
    rules: list[str] = []
    detail = ""
    ext = sig.extension(name)
    if sig.ransom_extension(name):
        rules.append("ransom-extension")
        ext = sig.extension(sig.stem(name))  # judge the content by the name it had
    if ext in _NOTE_EXT and sig.note_name(name) and (phrases := sig.note_text(head)):
        rules.append("ransom-note")
        detail = ", ".join(phrases)
    if kind in sig.COMPRESSED_KINDS:
        if size > sig.BLOCK and not sig.structure_ok(kind, head, tail):
            rules.append("format-broken")
            detail = f"{kind} header but no {kind} end"
        return kind, rules, detail
    blocks = [head, *inner] if tail is head else [head, *inner, tail]
    randoms = [sig.looks_random(b) for b in blocks]
    if not any(randoms):
        return kind, rules, detail
    if randoms[0]:
        kind = sig.RANDOM
    if ext in sig.ENCRYPTED_EXT:
        return kind, rules, detail
    share = f"{sum(randoms)}/{len(randoms)} sampled blocks random"
    expected = sig.EXT_KIND.get(ext)
    if expected is not None and expected != kind and randoms[0]:
        rules.append("magic-mismatch")
        detail = f".{ext} file without {expected} signature; {share}"
    elif kind == sig.TEXT or (ext in sig.LOW_ENTROPY_EXT and not randoms[0]):
        rules.append("intermittent")
        detail = f"{kind} file with {share}"
    elif ext in sig.LOW_ENTROPY_EXT:
        rules.append("encrypted-content")
        detail = f".{ext} file with {share}"
    elif previous and previous != sig.RANDOM and previous != kind:
        rules.append("type-changed")
        detail = f"was {previous}, now {kind}; {share}"
    elif previous == sig.TEXT and not randoms[0]:
        rules.append("intermittent")
        detail = f"was {previous}; {share}"
    return kind, rules, detail


@dataclass
class DirStats:
    """What happened in one folder compared with the parent snapshot."""

    parent_files: int = 0
    rewritten: int = 0
    deleted: int = 0
    renamed: int = 0  # new names that are an old name with a new or added extension

    def rules(self) -> list[str]:
        out = []
        if self.parent_files >= 10 and (self.rewritten + self.deleted + self.renamed) >= self.parent_files / 2:
            out.append("mass-change")
        if self.renamed >= 3 and self.renamed >= 0.3 * self.parent_files:
            out.append("mass-rename")
        return out


@dataclass
class Verdict:
    verdict: str = CLEAN
    score: float = 0.0
    rules: dict[str, int] = field(default_factory=dict)
    files: list[FileFinding] = field(default_factory=list)
    dirs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: the verdict and why."""
        if self.verdict == CLEAN:
            return "guard: clean"
        return f"guard: {self.verdict.upper()}: " + "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "verdict": self.verdict,
            "score": round(self.score, 2),
            "summary": self.summary(),
            "rules": self.rules,
            "files": [f.as_dict() for f in self.files[:MAX_FILES]],
            "dirs": self.dirs[:MAX_DIRS],
            "stats": self.stats,
        }


def combine(
    findings: list[FileFinding],
    dirs: dict[str, DirStats],
    backup_rules: list[str],
    canary_rules: list[tuple[str, str]],
    stats: dict[str, Any],
) -> Verdict:
    """The verdict of one backup from its file findings, folder statistics, backup-wide and canary rules."""
    v = Verdict(stats=stats)
    for f in findings:
        for r in f.rules:
            v.rules[r] = v.rules.get(r, 0) + 1
    flagged_dirs = []
    for path, d in dirs.items():
        for r in d.rules():
            v.rules[r] = v.rules.get(r, 0) + 1
            flagged_dirs.append((path, d, r))
    for r in backup_rules:
        v.rules[r] = v.rules.get(r, 0) + 1
    for r, _path in canary_rules:
        v.rules[r] = v.rules.get(r, 0) + 1
    flagged_dirs.sort(key=lambda t: -(t[1].rewritten + t[1].deleted + t[1].renamed))
    v.dirs = [
        {"path": p, "rule": r, "parent_files": d.parent_files, "rewritten": d.rewritten, "deleted": d.deleted}
        | {"renamed": d.renamed}
        for p, d, r in flagged_dirs
    ]
    strong = [f for f in findings if f.strong]
    v.files = sorted(strong, key=lambda f: (-f.score, f.path)) + sorted(
        (f for f in findings if not f.strong), key=lambda f: f.path
    )
    weak = {r for _p, _d, r in flagged_dirs} | set(backup_rules)
    renames = v.rules.get("ransom-extension", 0)
    notes = v.rules.get("ransom-note", 0)
    level = CLEAN
    if canary_rules:
        level = ATTACK
        v.reasons.append(f"canary {canary_rules[0][1]} {canary_rules[0][0].removeprefix('canary-')}")
    if notes:
        level = ATTACK
        v.reasons.append(f"{notes} ransom note(s)")
    if strong:
        level = _worse(level, ATTACK if len(strong) >= ATTACK_FILES or weak or renames else SUSPICIOUS)
        v.reasons.append(f"{len(strong)} file(s) look encrypted (e.g. {strong[0].path})")
    if renames:
        level = _worse(level, ATTACK if renames >= ATTACK_FILES else SUSPICIOUS)
        v.reasons.append(f"{renames} file(s) with ransomware extensions")
    if "mass-rename" in weak:
        level = _worse(level, SUSPICIOUS)
        v.reasons.append(f"mass renames to new extensions in {v.rules['mass-rename']} folder(s)")
    if "change-rate" in weak and "mass-change" in weak and not strong:
        level = _worse(level, SUSPICIOUS)
        v.reasons.append(f"change rate {stats.get('change_rate')} far above history {stats.get('baseline')}")
    v.verdict = level
    v.score = min(1.0, sum(f.score for f in strong) / ATTACK_FILES + 0.5 * len(canary_rules) + 0.1 * len(weak))
    if level == ATTACK:
        v.score = max(v.score, 0.9)
    return v


def _worse(a: str, b: str) -> str:
    return a if LEVELS[a] >= LEVELS[b] else b
