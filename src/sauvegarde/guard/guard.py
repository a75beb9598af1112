"""The guard as a backup observer: judges each changed file from its sampled blocks, counts per-folder changes
against the parent snapshot, checks canary files, and at the end turns it all into a :class:`Verdict`."""

from __future__ import annotations

import copy
import itertools
import operator
import os
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
# A ransom note without a note-like name: the same new text file (at most NOTE_MAX bytes) written NOTE_COPIES times
# or more in one backup, with NOTE_PHRASES or more distinct ransom phrases in its first block
NOTE_MAX = 64 * 1024
NOTE_COPIES = 3
NOTE_PHRASES = 2
MAX_NOTES = 100  # copies of one note listed as findings


_TYPE = operator.methodcaller("get", "t")


class _Copies:
    __slots__ = ("count", "head", "paths")

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.count = 0
        self.paths: list[bytes] = []


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
        self._checked = itertools.count()  # next() is atomic under the GIL
        self._checked_by_children = 0
        self._deleted = 0
        self._has_parent = False
        self._history: list[float] = []
        self._renamed: dict[bytes, tuple[bytes, Wire]] = {}  # new path -> (old name, old entry)
        self._parent_files: dict[bytes, int] = {}  # folder -> its files in the parent snapshot
        self._new_texts: dict[bytes, _Copies] = {}  # content IDs -> copies of a new small text file

    # ---- observer protocol -----------------------------------------------------------------------------

    def start(self, parent: Snapshot | None, previous: list[Snapshot]) -> None:
        self._has_parent = parent is not None
        self._history = [r for s in previous[-HISTORY:] if s.parent and (r := change_rate(s.summary)) is not None]

    def directory(self, path: bytes, parents: dict[bytes, Wire], names: list[bytes]) -> None:
        key = path.rstrip(b"/") or b"/"
        names_set = set(names)
        wanted = self._canary_dirs.get(key) if self._canary_dirs else None
        if wanted:
            for name in wanted & names_set:
                self._canaries_seen.add(os.path.join(path, name))
            for name in wanted - names_set:
                if name in parents:
                    self._canary(os.path.join(path, name), "canary-deleted")
        if not parents:
            return
        # runs for every directory of every backup, changed or not: the common case is kept to C-level loops
        n_files = sum(map(FILE.__eq__, map(_TYPE, parents.values())))
        gone = parents.keys() - names_set
        deleted = [n for n in gone if parents[n].get("t") == FILE] if gone else []
        renames: dict[bytes, tuple[bytes, Wire]] = {}
        if deleted:
            gone_files = set(deleted)
            gone_stems = {sig.stem(n): n for n in deleted}
            base = path.rstrip(b"/")
            for n in names_set - parents.keys():
                old = sig.stem(n)
                if old not in gone_files:
                    old = gone_stems.get(old, b"")
                if old:  # a.docx -> a.docx.x7Gq2 (added) or a.docx -> a.x7Gq2 (replaced)
                    renames[base + b"/" + n] = (old, parents[old])
        with self._lock:
            self._parent_files[key] = n_files
            if deleted:
                st = self._dirs.get(key)
                if st is None:
                    st = self._dirs[key] = DirStats()
                st.deleted += len(deleted)
                st.renamed += sum(1 for p in renames if not sig.benign_rename(p))
                self._deleted += len(deleted)
                self._renamed.update(renames)

    def file(self, path: bytes, node: Node, sample: BlockSampler, parent: Wire | None) -> None:
        old_name, old = b"", parent
        if parent is None and self._renamed:
            with self._lock:
                old_name, old = self._renamed.pop(path, (b"", None))
        previous = ""
        if old is not None:
            k = old.get("k", "")
            previous = k if isinstance(k, str) else ""
        kind, rules, detail = judge_file(
            node.name, node.size, sample.head, sample.tail, sample.inner, previous, old_name
        )
        node.kind = kind
        next(self._checked)  # atomic: most files (new, no finding) take no lock
        canary = path in self.canaries if self.canaries else False
        # a new small text file: ransom notes are the same file dropped in every folder, whatever their name
        note = (
            parent is None
            and self._has_parent
            and node.size <= NOTE_MAX
            and kind == sig.TEXT
            and "ransom-note" not in rules
        )
        if parent is None and not rules and not canary and not note:
            return
        with self._lock:
            if parent is not None:
                key = os.path.dirname(path)
                st = self._dirs.get(key)
                if st is None:
                    st = self._dirs[key] = DirStats()
                st.rewritten += 1
            if rules:
                if old_name:
                    detail = f"renamed from {os.fsdecode(old_name)}; {detail}".rstrip("; ")
                self._findings.append(FileFinding(os.fsdecode(path), kind, previous, rules, detail))
            if canary:
                self._canaries_seen.add(path)
            if note:
                copies = self._new_texts.setdefault(b"".join(node.content), _Copies(sample.head))
                copies.count += 1
                if len(copies.paths) < MAX_NOTES:
                    copies.paths.append(path)
        if canary and parent is not None and content_ids(parent) != b"".join(node.content):
            self._canary(path, "canary-changed")

    def finish(self, summary: dict[str, Any]) -> dict[str, Any] | None:
        return self.verdict(summary).as_dict() | {"mode": self.mode}

    # ---- backups shared among processes (see engine.backup, "child processes") -------------------------

    def start_child(self) -> None:
        """In a forked child: forget what the parent had seen (it keeps it) and take fresh locks."""
        self._lock = threading.Lock()
        self._findings = []
        self._dirs = {}
        self._canary_rules = []
        self._canaries_seen = set()
        self._checked = itertools.count()
        self._deleted = 0
        self._renamed = {}
        self._parent_files = {}
        self._new_texts = {}

    def child_state(self) -> dict[str, Any]:
        """What a child saw, for :meth:`merge_child` in the parent (plain data: it is pickled)."""
        with self._lock:
            return {
                "findings": self._findings,
                "dirs": self._dirs,
                "canary_rules": self._canary_rules,
                "canaries_seen": self._canaries_seen,
                "checked": next(copy.copy(self._checked)),
                "deleted": self._deleted,
                "parent_files": self._parent_files,
                "new_texts": {k: (c.head, c.count, c.paths) for k, c in self._new_texts.items()},
            }

    def merge_child(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._findings.extend(state["findings"])
            for key, st in state["dirs"].items():
                mine = self._dirs.get(key)
                if mine is None:
                    self._dirs[key] = st
                else:  # a folder both saw (not expected: a child's folders are its own)
                    mine.rewritten += st.rewritten
                    mine.deleted += st.deleted
                    mine.renamed += st.renamed
            self._canary_rules.extend(state["canary_rules"])
            self._canaries_seen.update(state["canaries_seen"])
            self._checked_by_children += state["checked"]  # (the counter itself is advanced without the lock)
            self._deleted += state["deleted"]
            self._parent_files.update(state["parent_files"])
            for key, (head, count, paths) in state["new_texts"].items():
                copies = self._new_texts.setdefault(key, _Copies(head))
                copies.count += count
                copies.paths.extend(paths[: max(0, MAX_NOTES - len(copies.paths))])

    # ---- the verdict -----------------------------------------------------------------------------------

    def verdict(self, summary: dict[str, Any]) -> Verdict:
        for c in sorted(self.canaries - self._canaries_seen):
            if self._has_parent and not any(p == os.fsdecode(c) for _r, p in self._canary_rules):
                self._canary(c, "canary-missing")
        for copies in self._new_texts.values():
            if copies.count >= NOTE_COPIES and len(phrases := sig.note_text(copies.head)) >= NOTE_PHRASES:
                detail = f"same new file in {copies.count} places: " + ", ".join(phrases)
                for p in copies.paths:
                    self._findings.append(FileFinding(os.fsdecode(p), sig.TEXT, "", ["ransom-note"], detail))
        self._new_texts.clear()
        backup_rules = []
        rate = change_rate(summary, self._deleted)
        baseline = _median(self._history) if len(self._history) >= MIN_HISTORY else None
        if (
            rate is not None
            and baseline is not None
            and rate >= CHANGE_RATE_MIN
            and rate >= CHANGE_RATE_FACTOR * max(baseline, 0.005)
        ):
            backup_rules.append("change-rate")
        stats: dict[str, Any] = {
            # the count so far, without advancing it
            "files_checked": next(copy.copy(self._checked)) + self._checked_by_children,
            "files_flagged": len(self._findings),
            "deleted": self._deleted,
            "change_rate": None if rate is None else round(rate, 4),
            "baseline": None if baseline is None else round(baseline, 4),
        }
        for p, d in self._dirs.items():
            d.parent_files = self._parent_files.get(p, 0)
        dirs = {os.fsdecode(p): d for p, d in self._dirs.items()}
        return combine(self._findings, dirs, backup_rules, self._canary_rules, stats)

    def _canary(self, path: bytes, rule: str) -> None:
        with self._lock:
            self._canary_rules.append((rule, os.fsdecode(path)))


def _median(values: list[float]) -> float:
    """The median (``statistics`` costs 3 ms of import, through decimal and fractions, in every guarded backup)."""
    v = sorted(values)
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


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
