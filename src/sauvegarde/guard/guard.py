"""The guard as a backup observer: judges each changed file from its sampled blocks, counts per-folder changes
against the parent snapshot, checks canary files, and at the end turns it all into a :class:`Verdict`."""

from __future__ import annotations

import os
import statistics
import threading
from typing import Any

from sauvegarde.engine.observe import BlockSampler
from sauvegarde.engine.parent import Wire, content_ids
from sauvegarde.guard import signals as sig
from sauvegarde.guard.verdict import DirStats, FileFinding, Verdict, combine, judge_file
from sauvegarde.repository import Node, Snapshot
from sauvegarde.repository.tree import FILE

OFF, WARN, ENFORCE = "off", "warn", "enforce"
MODES = (OFF, WARN, ENFORCE)
CHANGE_RATE_MIN = 0.2  # a backup changing less than this share of files is never "far above history"
CHANGE_RATE_FACTOR = 10.0  # ... and it must be this many times the median of the asset's history
HISTORY = 10  # earlier snapshots considered
MIN_HISTORY = 3


class Guard:
    """Accumulates signals during one backup; thread-safe (``file`` runs in the file workers)."""

    def __init__(self, mode: str = ENFORCE, canaries: list[str] | tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.canaries = {os.fsencode(os.path.normpath(os.path.abspath(c))) for c in canaries}
        self._canary_dirs: dict[bytes, set[bytes]] = {}
        for c in self.canaries:
            d, name = os.path.split(c)
            self._canary_dirs.setdefault(d, set()).add(name)
        self._lock = threading.Lock()
        self._findings: list[FileFinding] = []
        self._dirs: dict[bytes, DirStats] = {}
        self._canary_rules: list[tuple[str, str]] = []
        self._canaries_seen: set[bytes] = set()
        self._checked = 0
        self._deleted = 0
        self._has_parent = False
        self._history: list[float] = []

    # ---- observer protocol -----------------------------------------------------------------------------

    def start(self, parent: Snapshot | None, previous: list[Snapshot]) -> None:
        self._has_parent = parent is not None
        self._history = [r for s in previous[-HISTORY:] if s.parent and (r := change_rate(s.summary)) is not None]

    def directory(self, path: bytes, parents: dict[bytes, Wire], names: list[bytes]) -> None:
        names_set = set(names)
        wanted = self._canary_dirs.get(path.rstrip(b"/") or b"/")
        if wanted:
            for name in wanted & names_set:
                self._canaries_seen.add(os.path.join(path, name))
            for name in wanted - names_set:
                if name in parents:
                    self._canary(os.path.join(path, name), "canary-deleted")
        if not parents:
            return
        files = [n for n, w in parents.items() if w.get("t") == FILE]
        deleted = [n for n in files if n not in names_set]
        renamed = 0
        if deleted:
            gone = set(deleted)
            gone_stems = {sig.stem(n) for n in deleted}
            renamed = sum(1 for n in names_set - parents.keys() if sig.stem(n) in gone or sig.stem(n) in gone_stems)
        with self._lock:
            st = self._dirs.setdefault(path.rstrip(b"/") or b"/", DirStats())
            st.parent_files = len(files)
            st.deleted += len(deleted)
            st.renamed += renamed
            self._deleted += len(deleted)

    def file(self, path: bytes, node: Node, sample: BlockSampler, parent: Wire | None) -> None:
        previous = ""
        if parent is not None:
            k = parent.get("k", "")
            previous = k if isinstance(k, str) else ""
        kind, rules, detail = judge_file(node.name, node.size, sample.head, sample.tail, sample.inner, previous)
        node.kind = kind
        canary = path in self.canaries
        with self._lock:
            self._checked += 1
            if parent is not None:
                self._dirs.setdefault(os.path.dirname(path), DirStats()).rewritten += 1
            if rules:
                self._findings.append(FileFinding(os.fsdecode(path), kind, previous, rules, detail))
            if canary:
                self._canaries_seen.add(path)
        if canary and parent is not None and content_ids(parent) != b"".join(node.content):
            self._canary(path, "canary-changed")

    def finish(self, summary: dict[str, Any]) -> dict[str, Any] | None:
        return self.verdict(summary).as_dict() | {"mode": self.mode}

    # ---- the verdict -----------------------------------------------------------------------------------

    def verdict(self, summary: dict[str, Any]) -> Verdict:
        for c in sorted(self.canaries - self._canaries_seen):
            if self._has_parent and not any(p == os.fsdecode(c) for _r, p in self._canary_rules):
                self._canary(c, "canary-missing")
        backup_rules = []
        rate = change_rate(summary, self._deleted)
        baseline = statistics.median(self._history) if len(self._history) >= MIN_HISTORY else None
        if (
            rate is not None
            and baseline is not None
            and rate >= CHANGE_RATE_MIN
            and rate >= CHANGE_RATE_FACTOR * max(baseline, 0.005)
        ):
            backup_rules.append("change-rate")
        stats: dict[str, Any] = {
            "files_checked": self._checked,
            "files_flagged": len(self._findings),
            "deleted": self._deleted,
            "change_rate": None if rate is None else round(rate, 4),
            "baseline": None if baseline is None else round(baseline, 4),
        }
        dirs = {os.fsdecode(p): d for p, d in self._dirs.items()}
        return combine(self._findings, dirs, backup_rules, self._canary_rules, stats)

    def _canary(self, path: bytes, rule: str) -> None:
        with self._lock:
            self._canary_rules.append((rule, os.fsdecode(path)))


def change_rate(summary: dict[str, Any], deleted: int = 0) -> float | None:
    """Share of files new, changed or deleted in a backup, from its summary (None if it has no files)."""
    try:
        changed = int(summary.get("files_new", 0)) + int(summary.get("files_changed", 0))
        total = changed + int(summary.get("files_unmodified", 0)) + deleted
    except (TypeError, ValueError):
        return None
    return (changed + deleted) / total if total else None


def verdict_of(snap: Snapshot) -> str | None:
    """The guard's verdict stored with a snapshot (``clean`` once released), or None if it was not guarded."""
    g = snap.extra.get("guard")
    if not isinstance(g, dict):
        return None
    if g.get("released"):
        return "clean"
    v = g.get("verdict")
    return v if isinstance(v, str) else None


def is_suspect(snap: Snapshot) -> bool:
    return verdict_of(snap) in ("suspicious", "attack")
