"""Repository checks: structure always, and with a read-data selection, the content of every selected pack.

Structure: every index object loads; every pack an index names exists and its header agrees with the index;
every snapshot loads and every tree and data blob its trees reference is indexed in a pack that exists. With
``read_data``, selected packs are read front to back (a few MiB at a time) and every blob in them is authenticated,
decompressed and checked against its ID. Problems name the objects and, where data is lost, the snapshots and
files it hits.

Reading data costs Python work per blob under one interpreter lock, so on a repository this machine reads
itself (not remote) the packs are shared among forked copies of this process, each taking the next pack not taken;
each sends back what it found (problems, damaged copies and packs, the references of the trees it read). A copy
that fails gives nothing: its packs are checked again here.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal, TypeVar

import blake3

from sauvegarde.engine.check_places import ArrayPlaces, DictPlaces, build_places
from sauvegarde.engine.events import Counters, SentCounters, child_reporting, take_back
from sauvegarde.engine.retention_lock import find_tampering
from sauvegarde.errors import SauvegardeError, UsageError
from sauvegarde.repository import Repository, Tree
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.packed_index import count as packed_count
from sauvegarde.repository.packed_index import entries as packed_entries
from sauvegarde.repository.packed_index import of_type as packed_of_type
from sauvegarde.repository.tree import DIR, FILE, Link
from sauvegarde.util.forked import ChildFailed, Send, Turns, can_fork, start_children

Severity = Literal["error", "warning"]
_T = TypeVar("_T")
MAX_PATHS_PER_SNAPSHOT = 100
# bytes of a pack read at a time with --read-data: a checking thread holds about this plus one blob, rather than
# a whole pack (16 MiB); remote storage gets larger reads, as requests cost there
_WINDOW = 4 << 20
_WINDOW_REMOTE = 8 << 20
# what the trees read with --read-data refer to, kept for the tree walk that follows (so it does not read,
# authenticate and decode each tree a second time), up to this many bytes of blob IDs; beyond, the walk reads them
_REFS_KEPT_BYTES = 16 << 20

# a tree's references: the content IDs of all its files (concatenated), and its subtrees
Refs = tuple[bytes, tuple[bytes, ...]]


@dataclass
class Problem:
    severity: Severity
    kind: str  # index_damaged, pack_missing, pack_damaged, header_mismatch, blob_damaged, blob_missing, ...
    subject: str  # "pack <id>", "blob <id>", "snapshot <id>"...
    message: str
    snapshots: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # "<short snapshot id>:<path>"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "object": self.subject,
            "message": self.message,
            "snapshots": self.snapshots,
            "paths": self.paths,
        }


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    snapshots: int = 0
    trees: int = 0
    blobs_referenced: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    unused_blobs: int = 0
    # blobs stored in more than one pack: harmless (each copy is indexed and valid; a damaged one is reported as
    # such, and the others keep the data), left by interrupted or concurrent sessions and by a backup's worker
    # processes; prune keeps one
    duplicate_blobs: int = 0
    next_cursor: str = ""  # where a rotating read-data subset ends, for the next run

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.problems) - len(self.errors),
            "problems": [p.as_dict() for p in self.problems],
            "snapshots": self.snapshots,
            "trees": self.trees,
            "blobs_referenced": self.blobs_referenced,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "bytes_read": self.bytes_read,
            "unused_blobs": self.unused_blobs,
            "duplicate_blobs": self.duplicate_blobs,
        }


@dataclass(frozen=True)
class ReadSubset:
    """Which packs ``--read-data`` reads: all, bucket ``n`` of ``m`` by pack ID, or a rotating percentage."""

    n: int = 1
    m: int = 1
    percent: float | None = None
    cursor: str = ""  # hex pack ID where the previous rotating run stopped

    @classmethod
    def parse(cls, text: str, cursor: str = "") -> ReadSubset:
        text = text.strip()
        try:
            if text.endswith("%"):
                pct = float(text[:-1])
                if not 0 < pct <= 100:
                    raise ValueError
                return cls(percent=pct, cursor=cursor)
            n_text, m_text = text.split("/")
            n, m = int(n_text), int(m_text)
            if not 1 <= n <= m:
                raise ValueError
            return cls(n=n, m=m)
        except ValueError:
            raise UsageError(f"invalid subset {text!r}: expected N% (0 < N <= 100) or n/m (1 <= n <= m)") from None

    def select(self, pack_ids: Iterable[bytes]) -> tuple[list[bytes], str]:
        """The packs to read, and the cursor for the next run (rotating subsets only)."""
        ids = sorted(pack_ids)
        if self.percent is None:
            return [p for p in ids if int.from_bytes(p[:8], "big") % self.m == self.n - 1], ""
        if not ids:
            return [], self.cursor
        count = max(1, -(-len(ids) * int(self.percent * 1000) // 100_000))
        start = 0
        if self.cursor:
            cur = bytes.fromhex(self.cursor)
            start = next((i for i, p in enumerate(ids) if p > cur), 0)
        chosen = [ids[(start + k) % len(ids)] for k in range(min(count, len(ids)))]
        return chosen, chosen[-1].hex()


class Checker:
    """One run of ``check``. The repository must be opened without loading its index."""

    def __init__(
        self,
        repo: Repository,
        read: ReadSubset | None = None,
        counters: Counters | None = None,
        threads: int = max(2, min(4, os.cpu_count() or 2)),  # a read window in memory per thread
        build_index: bool = False,  # also fill the repository's in-memory index from the objects loaded
        # with read_data, packs are read by this many forked processes sharing the threads (see the module's
        # docstring; 0 or 1: all in this process)
        processes: int = min(2, os.cpu_count() or 1),
    ) -> None:
        self.repo = repo
        self.build_index = build_index
        self.read = read
        self.counters = counters or Counters()
        self.threads = threads
        self.processes = processes
        self.report = CheckReport()
        self._lock = threading.Lock()
        # blob -> the packs holding it, and whether a snapshot refers to it (check_places): built from
        # pack_entries once the packs are checked, for the walk; a blob is lost when every copy is missing or
        # damaged
        self._places: DictPlaces | ArrayPlaces = DictPlaces({})
        self.pack_entries: dict[bytes, bytes] = {}  # pack -> its index entries, packed (see packed_index)
        # tree -> its copies as the index places them: the walk reads trees through these, not through the
        # repository's in-memory index, which check never builds (nor imports NumPy for)
        self._tree_copies: dict[bytes, list[tuple[bytes, BlobEntry]]] = {}
        self.bad_copies: set[tuple[bytes, bytes]] = set()  # (pack, blob)
        self.bad_packs: set[bytes] = set()
        self._damaged_reported: set[bytes] = set()
        self._tree_ok: dict[bytes, bool] = {}
        self._refs: dict[bytes, Refs] = {}  # of trees read with the packs, until the walk takes them
        self._expected: dict[bytes, bytes] = {}  # pack -> digest of its index entries, for the worker processes
        self._refs_bytes = 0
        self._to_read: set[bytes] = set()  # packs read whole (--read-data), not only their headers

    def add(self, problem: Problem) -> None:
        with self._lock:
            self.report.problems.append(problem)

    def run(self) -> CheckReport:
        self._load_indexes()
        stored = self.repo.list_packs()
        self.report.packs = len(stored)
        self._check_packs(stored)
        # only packs needed their entries: the blob map takes their place (emptying pack_entries as it is built)
        self._places = build_places(self.pack_entries)
        self.report.duplicate_blobs = self._places.duplicates
        self._check_snapshots()
        self._check_tampering()
        self.report.unused_blobs = self._places.unused
        return self.report

    # ---- indexes and packs ----------------------------------------------------------------------------

    def _load_indexes(self) -> None:
        """Every index object, one at a time, kept packed (see repository.packed_index): the entries of each pack
        named by those that no other supersedes, and where each tree is."""
        in_force, errors = self.repo.load_packed_index_files()
        for index_id, message in sorted(errors.items()):
            self.add(Problem("error", "index_damaged", f"index {index_id.hex()}", message))
        for f in in_force:
            for pid, packed in f.packs.items():
                if pid in self.pack_entries:
                    continue  # the same pack named by two index objects (an interrupted prune): harmless
                self.pack_entries[pid] = packed
                for e in packed_of_type(packed, BlobType.TREE):
                    self._tree_copies.setdefault(e.id, []).append((pid, e))
        if self.build_index:
            self.repo.index.add_files(f.to_index_file() for f in in_force)

    def _check_packs(self, stored: dict[bytes, int]) -> None:
        for pid in sorted(set(self.pack_entries) - set(stored)):
            self.bad_packs.add(pid)
            self.add(
                Problem(
                    "error",
                    "pack_missing",
                    f"pack {pid.hex()}",
                    f"named by the index but missing from storage ({packed_count(self.pack_entries[pid])} blobs)",
                )
            )
        for pid in sorted(set(stored) - set(self.pack_entries)):
            self.add(
                Problem(
                    "warning",
                    "pack_unindexed",
                    f"pack {pid.hex()}",
                    "not named by any index (left by an "
                    "interrupted backup): the next backup reuses it, or prune removes it",
                )
            )
        indexed = [p for p in sorted(stored) if p in self.pack_entries]
        to_read = self._to_read
        if self.read is not None:
            chosen, self.report.next_cursor = self.read.select(indexed)
            to_read.update(chosen)
            self.counters.add_total(files=len(chosen), nbytes=sum(stored[p] for p in chosen))

        def one(pid: bytes) -> None:
            if pid in to_read:
                self._read_pack(pid, stored[pid])
            else:
                self._check_header(pid, stored[pid])

        if to_read:
            indexed = self._in_children(indexed, one)
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(one, indexed))

    # ---- child processes ------------------------------------------------------------------------------

    def _in_children(self, packs: list[bytes], one: Callable[[bytes], None]) -> list[bytes]:
        """Check ``packs`` in forked processes where that is possible; the packs left to check here (all of them
        if no process could start, those of any that failed)."""
        if self.processes < 2 or self.repo.remote or not can_fork() or len(packs) < 2 * self.processes:
            return packs
        # A worker compares each pack's header with a digest of the index's entries made here, and unpacks the
        # entries themselves only if they differ: no per-blob objects made in every worker (nor pages of the
        # inherited ones copied into it: a reference count is a write).
        self._expected = {pid: _entries_digest(packed_entries(self.pack_entries[pid])) for pid in packs}
        turns = Turns(len(packs))

        def work(send: Send) -> dict[str, object]:
            return self._child_work(packs, turns, one, send)

        tallies: dict[int, Counters] = {}  # the progress each child reported
        children = start_children(self.processes, lambda: child_reporting(work, self.counters, tallies))
        done: set[int] = set()
        try:
            for child in children:
                try:
                    result = child.wait()
                except ChildFailed as exc:
                    self.add(Problem("warning", "worker_failed", "check", f"{exc}; its packs were checked again"))
                    take_back(self.counters, tallies[child.pid])
                    continue
                done.update(result["done"])
                self._merge_child(result)
        except BaseException:  # interrupted: the workers stop too
            for child in children:
                child.kill()
            raise
        return [pid for i, pid in enumerate(packs) if i not in done]

    def _child_work(
        self, packs: list[bytes], turns: Turns, one: Callable[[bytes], None], send: Send
    ) -> dict[str, object]:  # pragma: no cover - in the child
        self.repo.after_fork()
        self._lock = threading.Lock()  # a parent thread may hold the old one
        self.counters = SentCounters(send)
        first = len(self.report.problems)
        read, nbytes = self.report.packs_read, self.report.bytes_read
        # each keeps the references of the trees it reads up to its share of the budget
        self._refs_bytes += _REFS_KEPT_BYTES - _REFS_KEPT_BYTES // self.processes
        done: list[int] = []
        # the next pack is taken before this one is read, and the disk asked for it: a cold disk would otherwise
        # sit idle while each pack is authenticated, decompressed and hashed (profiling repository, 241 MB, page
        # cache dropped, 3 runs each: 1.06-1.19 -> 0.98-1.05 s)
        after = turns.take()
        while (i := after) is not None:
            after = turns.take()
            if after is not None and packs[after] in self._to_read:
                self.repo.fetch_pack_ahead(packs[after])
            one(packs[i])
            done.append(i)
        self.counters.send_now()
        return {
            "done": done,
            "problems": self.report.problems[first:],
            "packs_read": self.report.packs_read - read,
            "bytes_read": self.report.bytes_read - nbytes,
            "bad_packs": self.bad_packs,
            "bad_copies": self.bad_copies,
            "damaged": self._damaged_reported,
            "refs": self._refs,
        }

    def _merge_child(self, result: dict[str, Any]) -> None:
        self.report.problems.extend(result["problems"])
        self.report.packs_read += result["packs_read"]
        self.report.bytes_read += result["bytes_read"]
        self.bad_packs |= result["bad_packs"]
        self.bad_copies |= result["bad_copies"]
        self._damaged_reported |= result["damaged"]
        for tree_id, refs in result["refs"].items():
            if tree_id not in self._refs:
                self._refs[tree_id] = refs
                self._refs_bytes += _refs_size(refs)

    def _compare(self, pid: bytes, header: list[BlobEntry]) -> None:
        expected = self._expected.get(pid)
        if expected is not None and expected == _entries_digest(header):
            return  # the header lists exactly what the index does (see _in_children)
        found = {e.id: e for e in header}
        wrong = [e for e in packed_entries(self.pack_entries[pid]) if found.get(e.id) != e]
        for e in wrong:
            self._mark_bad(pid, e.id)
            self.add(
                Problem(
                    "error",
                    "header_mismatch",
                    f"blob {e.id.hex()}",
                    f"the index places it in pack {pid.hex()} but the pack's header disagrees",
                )
            )

    def _check_header(self, pid: bytes, size: int) -> None:
        try:
            header = self.repo.read_pack_header(pid, size)
        except SauvegardeError as exc:
            self._pack_damaged(pid, str(exc))
            return
        self._compare(pid, header)

    def _read_pack(self, pid: bytes, size: int) -> None:
        """Read a pack front to back, a window at a time: its name is checked against the BLAKE3 of every byte,
        and each blob is authenticated, decompressed and checked against its ID as soon as it is in memory."""
        name = f"pack {pid.hex()}"
        window = _WINDOW_REMOTE if self.repo.remote else _WINDOW
        hasher = blake3.blake3()
        try:
            header = sorted(self.repo.read_pack_header(pid, size), key=lambda e: e.offset)
        except SauvegardeError as exc:
            self._pack_damaged(pid, str(exc))
            self.counters.add(files=1, nbytes=size)
            return
        self._compare(pid, header)
        pos, i = 0, 0
        while pos < size:
            end = min(size, _read_end(header, i, pos, window))
            try:
                piece = self.repo.load_pack_range(pid, pos, end - pos)
            except SauvegardeError as exc:
                self._pack_damaged(pid, str(exc))
                self.counters.add(files=1, nbytes=size - pos)
                return
            if not piece:
                self._pack_damaged(pid, f"{name}: ends at {pos} bytes instead of {size}")
                self.counters.add(files=1, nbytes=size - pos)
                return
            hasher.update(piece)
            self.counters.add(nbytes=len(piece))
            view, start, pos = memoryview(piece), pos, pos + len(piece)
            while i < len(header) and header[i].offset + header[i].length <= pos:
                e = header[i]
                if e.offset >= start:
                    self._check_blob(pid, e, view[e.offset - start : e.offset - start + e.length])
                else:  # blobs that overlap (not what we write): read again on its own
                    self._check_blob(pid, e, None)
                i += 1
            del piece, view  # released before the next window is read: one in memory per thread, not two
        if hasher.digest() != pid:
            # reported, but blobs that still authenticate stay usable: only those that fail are lost
            self.add(Problem("error", "pack_damaged", name, "content does not match its name"))
        with self._lock:
            self.report.packs_read += 1
            self.report.bytes_read += size
        self.counters.add(files=1)

    def _check_blob(self, pid: bytes, e: BlobEntry, sealed: memoryview | None) -> None:
        try:
            if sealed is None:
                sealed = memoryview(self.repo.load_pack_range(pid, e.offset, e.length))
            plain = self.repo.decode_blob(e, sealed)
        except SauvegardeError as exc:
            self._copy_damaged(pid, e.id, exc)
            return
        if e.type == BlobType.TREE and self._refs_bytes < _REFS_KEPT_BYTES:
            try:
                refs = _refs(Tree.links(plain, f"tree {e.id.hex()}"))
            except SauvegardeError:
                return  # the walk reads it again and reports it
            with self._lock:
                if e.id not in self._refs:
                    self._refs[e.id] = refs
                    self._refs_bytes += _refs_size(refs)

    def _pack_damaged(self, pid: bytes, message: str) -> None:
        with self._lock:
            self.bad_packs.add(pid)
        self.add(Problem("error", "pack_damaged", f"pack {pid.hex()}", message))

    def _mark_bad(self, pid: bytes, blob_id: bytes) -> None:
        with self._lock:
            self.bad_copies.add((pid, blob_id))

    def _copy_damaged(self, pid: bytes, blob_id: bytes, exc: SauvegardeError) -> None:
        """One copy of a blob failed to read, authenticate or decode: mark it bad and report it."""
        self._mark_bad(pid, blob_id)
        with self._lock:
            self._damaged_reported.add(blob_id)
        self.add(Problem("error", "blob_damaged", f"blob {blob_id.hex()}", f"in pack {pid.hex()}: {exc}"))

    def lost(self, blob_id: bytes) -> bool:
        """Whether no readable copy of the blob is known."""
        if blob_id in self._places.missing:
            return True
        packs = self._places.packs(blob_id)
        if not packs:
            return True
        if not self.bad_packs and not self.bad_copies:
            return False
        return all(p in self.bad_packs or (p, blob_id) in self.bad_copies for p in packs)

    def _lost_used(self, blob_id: bytes) -> bool:
        """:meth:`lost` for a blob the walk has just used: only the missing ones, unless copies went bad."""
        if not self.bad_packs and not self.bad_copies:
            return blob_id in self._places.missing
        return self.lost(blob_id)

    def copies(self, blob_id: bytes) -> list[bytes]:
        """The packs the index places the blob in."""
        return self._places.packs(blob_id)

    def _check_tampering(self) -> None:
        """On versioned storage: objects hidden or overwritten by someone without the key (retention_lock.py)."""
        hidden, forged = find_tampering(self.repo)
        for name in hidden:
            why = "tampering: hidden behind a delete marker or overwritten, yet in no deletion log of this repository"
            self.add(Problem("error", "tampering", name, f"{why}; its retained version is still readable"))
        for name in forged:
            self.add(Problem("error", "tampering", name, "tampering: deletion log does not authenticate"))

    # ---- snapshots and trees --------------------------------------------------------------------------

    def _check_snapshots(self) -> None:
        snaps = []
        for sid in sorted(self.repo.snapshot_ids()):
            try:
                snaps.append(self.repo.load_snapshot(sid))
            except SauvegardeError as exc:
                self.add(Problem("error", "snapshot_damaged", f"snapshot {sid}", str(exc), snapshots=[sid]))
        self.report.snapshots = len(snaps)
        for snap in snaps:
            root = bytes.fromhex(snap.tree)
            if self._check_tree(root):
                continue
            hits: list[str] = []
            self._collect(root, b"", hits)
            self.add(
                Problem(
                    "error",
                    "snapshot_incomplete",
                    f"snapshot {snap.id}",
                    f"snapshot {snap.short_id} of {snap.datetime:%Y-%m-%d %H:%M:%S} refers to lost data "
                    f"({len(hits)} path(s) hit{', list truncated' if len(hits) >= MAX_PATHS_PER_SNAPSHOT else ''})",
                    snapshots=[snap.id],
                    paths=[f"{snap.short_id}:{p}" for p in hits],
                )
            )
        self.report.blobs_referenced = self._places.referenced
        self.report.trees = len(self._tree_ok)

    def _load_tree(self, tree_id: bytes) -> Tree | None:
        return self._read_tree(tree_id, Tree.decode)

    def _check_tree(self, tree_id: bytes, used: bool = False) -> bool:
        """Whether everything below ``tree_id`` is readable; each lost object is reported once. (``used``: the
        tree is marked referred to already, with its siblings.)"""
        known = self._tree_ok.get(tree_id)
        if known is not None:
            return known
        if not used:
            self._places.use(tree_id)
        refs = self._refs.pop(tree_id, None)
        if refs is None or self._lost_used(tree_id):  # read from a pack whose header disagrees with the index, say
            refs = self._load_refs(tree_id)
        if refs is None:
            self._tree_ok[tree_id] = False
            self._report_lost(tree_id, "tree")
            return False
        content, subtrees = refs
        # the tree's content looked up together (one search per tree in a large repository's map)
        first, ok = self._places.use_all(content)
        for blob_id in first:
            if self._lost_used(blob_id):
                self._report_lost(blob_id, "data")
        if ok and (self.bad_packs or self.bad_copies):
            ok = not any(self.lost(content[i : i + 32]) for i in range(0, len(content), 32))
        if subtrees:
            self._places.use_all(b"".join(subtrees))
        for subtree in subtrees:
            if not self._check_tree(subtree, used=True):
                ok = False
        self._tree_ok[tree_id] = ok
        return ok

    def _load_refs(self, tree_id: bytes) -> Refs | None:
        """What a tree refers to (checked as strictly as restore decodes it), or None if it cannot be read."""
        links = self._read_tree(tree_id, Tree.links)
        return None if links is None else _refs(links)

    def _read_tree(self, tree_id: bytes, read: Callable[[bytes, str], _T]) -> _T | None:
        """A tree blob read with ``read`` (Tree.decode or Tree.links) from the first of its copies not known to be
        damaged, or None if lost, unreadable or malformed. A copy that fails is reported and marked bad."""
        for pid, entry in self._tree_copies.get(tree_id, ()):
            if pid in self.bad_packs or (pid, tree_id) in self.bad_copies:
                continue
            try:
                return read(self.repo.load_blob_at(pid, entry), f"tree {tree_id.hex()}")
            except SauvegardeError as exc:
                self._copy_damaged(pid, tree_id, exc)
        return None

    def _report_lost(self, blob_id: bytes, what: str) -> None:
        packs = self.copies(blob_id)
        if not packs:
            self.add(Problem("error", "blob_missing", f"blob {blob_id.hex()}", f"{what} blob is in no index"))
        elif blob_id not in self._damaged_reported:
            self.add(
                Problem(
                    "error",
                    "blob_unreadable",
                    f"blob {blob_id.hex()}",
                    f"{what} blob: every copy is in a "
                    f"missing or damaged pack ({', '.join(p.hex()[:16] for p in packs)})",
                )
            )

    def _collect(self, tree_id: bytes, prefix: bytes, hits: list[str]) -> None:
        """Paths below a damaged tree whose content or listing is lost."""
        if len(hits) >= MAX_PATHS_PER_SNAPSHOT:
            return
        tree = self._load_tree(tree_id)
        if tree is None:
            hits.append((prefix or b"/").decode(errors="surrogateescape") + " (directory listing lost)")
            return
        for node in tree.nodes:
            path = prefix + b"/" + node.name
            if node.type == FILE and any(self.lost(b) for b in node.content):
                hits.append(path.decode(errors="surrogateescape"))
            elif node.type == DIR and node.subtree is not None and not self._tree_ok.get(node.subtree, True):
                self._collect(node.subtree, path, hits)
            if len(hits) >= MAX_PATHS_PER_SNAPSHOT:
                return


def _read_end(header: list[BlobEntry], i: int, pos: int, window: int) -> int:
    """Where the next read of a pack from ``pos`` ends: after the last whole blob that fits in the window (so no
    blob is split between reads and none is copied), or after blob ``i`` if it alone is larger; a window of the
    bytes before blob ``i`` if it starts further on (or past the last blob). ``header`` is sorted by offset."""
    limit = pos + window
    if i >= len(header) or header[i].offset >= limit:
        return limit
    j = i
    while j < len(header) and header[j].offset + header[j].length <= limit:
        j += 1
    last = header[max(i, j - 1)]
    return max(last.offset + last.length, pos + 1)


def _entries_digest(entries: list[BlobEntry]) -> bytes:
    """A digest of blob entries in offset order: equal for a pack's header and its index entries when they list
    exactly the same blobs at the same places."""
    ordered = sorted(entries, key=attrgetter("offset"))
    h = blake3.blake3(b"".join(e.id for e in ordered))
    h.update(array("q", [v for e in ordered for v in (e.type, e.offset, e.length, e.raw_length)]).tobytes())
    return h.digest()


def _refs_size(refs: Refs) -> int:
    """About the memory ``refs`` holds, for the budget of references kept."""
    return len(refs[0]) + 32 * len(refs[1]) + 100


def _refs(links: list[Link]) -> Refs:
    content = b"".join(c for typ, c, _s in links if typ == FILE)
    return content, tuple(s for typ, _c, s in links if typ == DIR and s is not None)


def check_repository(repo: Repository, read: ReadSubset | None = None, counters: Counters | None = None) -> CheckReport:
    """Run every check; see the module docstring."""
    return Checker(repo, read, counters).run()
