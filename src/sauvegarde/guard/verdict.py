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
    name: bytes, size: int, head: bytes, tail: bytes, inner: list[bytes], previous: str, renamed_from: bytes = b""
) -> tuple[str, list[str], str]:
    """The kind of a changed file's content, the rules it fires and a detail; ``previous`` is the old kind or "".

    ``renamed_from`` is the name the file had in the parent snapshot when it was renamed by adding or replacing an
    extension (``a.docx`` -> ``a.docx.x7Gq2``): its content is then judged by the type the old name promised.
    The inner blocks are only looked at when a rule could fire from them, and only until one looks random.
    """
    # runs for every file a backup reads: the common cases (plain text, a plain name) are inlined
    if head.isascii() and b"\x00" not in head and head and not head.startswith(sig.MAGIC_PREFIXES):
        kind = sig.TEXT
    else:
        kind = sig.magic_kind(head)
    rules: list[str] = []
    detail = ""
    dot = name.rfind(b".")  # sig.extension, for a name without "/"
    ext = name[dot + 1 :].decode("utf-8", "replace").lower() if dot > 0 else ""
    if ext in sig.RANSOM_EXT or (len(ext) >= 20 and ext.isalnum()):  # sig.ransom_extension, inlined
        rules.append("ransom-extension")
        ext = sig.extension(sig.stem(name))  # judge the content by the name it had
    elif renamed_from and ext not in sig.ENCRYPTED_EXT:
        ext = sig.extension(renamed_from)
    if ext in _NOTE_EXT and sig.note_name(name) and (phrases := sig.note_text(head)):
        rules.append("ransom-note")
        detail = ", ".join(phrases)
    if kind in sig.COMPRESSED_KINDS:
        if size > sig.BLOCK and not sig.structure_ok(kind, head, tail):
            rules.append("format-broken")
            detail = f"{kind} header but no {kind} end"
        elif kind == "jpeg" and len(inner) >= 2 and sum(map(sig.jpeg_scan_broken, inner)) * 2 > len(inner):
            rules.append("format-broken")
            detail = f"jpeg header and end, but {sum(map(sig.jpeg_scan_broken, inner))}/{len(inner)} inner blocks "
            detail += "are not JPEG scan data"
        return kind, rules, detail
    head_random = kind != sig.TEXT and sig.looks_random(head)
    if head_random:
        kind = sig.RANDOM
    if ext in sig.ENCRYPTED_EXT:
        return kind, rules, detail
    expected = sig.EXT_KIND.get(ext)
    low = ext in sig.LOW_ENTROPY_EXT
    other = bool(previous) and previous != sig.RANDOM and previous != kind  # the content changed type
    rest = inner if tail is head else [*inner, tail]
    if head_random:
        if expected is not None and expected != kind:
            rule, why = "magic-mismatch", f".{ext} file without {expected} signature"
        elif low:
            rule, why = "encrypted-content", f".{ext} file"
        elif other:
            rule, why = "type-changed", f"was {previous}, now {kind}"
        else:
            return kind, rules, detail
    elif expected is not None and previous == expected and kind == sig.BINARY:
        # the format's signature is gone from a file still named for it: caught even when too short to be judged
        # random (tiny icons), or when the first block is not random (overwritten by a header of the attacker's)
        rule, why = "magic-mismatch", f".{ext} file was {previous}, now without its signature"
    elif (kind == sig.TEXT or low or other) and rest and any(map(sig.looks_random, rest)):
        if kind == sig.TEXT or low:
            rule, why = "intermittent", f"{kind} file"
        else:
            rule, why = "type-changed", f"was {previous}, now {kind}"
    else:
        return kind, rules, detail
    rules.append(rule)
    randoms = int(head_random) + sum(sig.looks_random(b) for b in rest)
    detail = f"{why}; {randoms}/{1 + len(rest)} sampled blocks random"
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
