"""Backup: walk the sources, save changed file content and directory trees, and write a snapshot.

The calling thread walks the file system in depth-first order and compares each file with its node in the parent
snapshot; only new or changed files go to a pool of file workers, which chunk, hash, compress and seal them through
:meth:`Repository.save_blob` (all native code that releases the GIL). A directory is handed, once walked, to a
tree finisher thread that waits for its entries and saves its tree blob; directories reach it in post-order, so a
subdirectory's tree ID is always known before its parent's. The number of files in flight is bounded, which bounds
memory. The snapshot is written only after every pack and index object is stored.

On a local repository the subdirectories of the first directory backed up (or of its only subdirectory, and so
on down) are shared among forked copies of this process, each a walk, file workers and tree finisher of its own
(see "child processes" below): per-file Python work no longer waits for one interpreter lock.
"""

from __future__ import annotations

import getpass
import os
import queue
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from sauvegarde import __version__
from sauvegarde.chunking import Chunker
from sauvegarde.compression import Buffer, looks_compressed
from sauvegarde.engine.events import (
    Counters,
    FileError,
    FileWarning,
    Reporter,
    SentCounters,
    child_reporting,
    ignore,
    report_problems,
    take_back,
)
from sauvegarde.engine.find import SnapshotFilter, filter_snapshots
from sauvegarde.engine.observe import BackupObserver, BlockSampler
from sauvegarde.engine.parent import (
    ParentTrees,
    Wire,
    content_ids,
    entry_is_current,
    node_unchanged,
    reuse_entry,
    split_ids,
    stat_unchanged,
)
from sauvegarde.errors import UsageError
from sauvegarde.repository import Node, Repository, Snapshot, Tree
from sauvegarde.repository.blobs import BlobType
from sauvegarde.repository.snapshot import format_time
from sauvegarde.repository.tree import DIR, FILE
from sauvegarde.source import Excluder, node_from_stat
from sauvegarde.source.listing import (
    RWF_NOWAIT,
    fetch_file_ahead,
    largest_first,
    list_dir,
    open_noatime,
    read_cached,
    starts_cached,
    subdir_names,
)
from sauvegarde.util.forked import Child, ChildFailed, Send, Turns, can_fork, start_children

_T = TypeVar("_T")
_MAX_IN_FLIGHT = 16  # batches and large files queued for the file workers: the walk need not run further ahead
_BATCH_FILES = 128
_STAT_BATCH = 1024  # entries of a directory stat'ed at a time: a huge directory's stat results are not all held
_BATCH_BYTES = 4 * 1024 * 1024
_CHUNKS_IN_FLIGHT = 4  # chunks of one large file handed to the chunk workers and not stored yet (about 1 MiB each)


@dataclass
class BackupOptions:
    paths: list[str] = field(default_factory=list)
    excluder: Excluder = field(default_factory=Excluder)
    one_file_system: bool = False
    tags: list[str] = field(default_factory=list)
    hostname: str = field(default_factory=socket.gethostname)
    parent: str | None = None  # snapshot ID; None means: find the latest with the same host and paths
    force: bool = False  # read every file even when the parent says it is unchanged
    stdin: BinaryIO | None = None
    stdin_filename: str = "stdin"
    time: datetime | None = None  # the snapshot's time (naive means local); None: when the backup ends
    # one file worker per core, at most 4: small files hold the GIL between short system calls, and more threads
    # than cores only hand it back and forth (/usr/share on 2 cores: 3 workers 10.8 s, 2.3 million futex calls;
    # 2 workers 9.1 s); large files release it while they are hashed, compressed and encrypted
    workers: int = max(2, min(4, os.cpu_count() or 2))
    observer: BackupObserver | None = None  # sees sampled blocks of the files read (the ransomware guard)
    # the subdirectories of the first directory backed up are shared among this many forked processes, each with
    # its own file workers (local repositories only; 0: everything in this process); see _start_split
    processes: int = min(2, os.cpu_count() or 1)
    # ... unless the parent snapshot had fewer entries: the children's start-up and their own packs and index
    # objects cost more than they save (10,000 files: first backup 0.92 -> 1.12 s, unchanged 0.42 -> 0.47 s). A
    # first backup, of unknown size, is split
    split_min_files: int = 20_000


@dataclass
class BackupSummary:
    snapshot_id: str = ""
    parent: str | None = None
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs: int = 0
    bytes_processed: int = 0
    bytes_added: int = 0
    duration_s: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Dir:
    """A walked directory waiting for its entries' nodes."""

    __slots__ = ("done", "entries", "node", "same_as", "unchanged")

    def __init__(self, node: Node | None) -> None:
        self.node = node
        self.entries: list[_Entry] = []
        self.done = threading.Event()
        self.unchanged = 0  # entries carried over from the parent listing exactly as they were
        # the parent's tree when this one is identical to it (every entry carried over unchanged, none added)
        self.same_as: bytes | None = None


class _Batch:
    """Small changed files read together by one worker task; a task per file costs more than reading it. (Or by
    the walking thread of a child process: see :meth:`Backup._store_cached`.)"""

    __slots__ = ("future", "items", "size", "submitted")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, Node, Wire | None]] = []
        self.size = 0
        self.future: Future[list[Node | None]] | None = None
        self.submitted = threading.Event()


_Entry = Node | Wire | _Dir | tuple[_Batch, int] | Future[Node | None]
_PLACEHOLDER: Node = Node(name=b"", type=DIR)  # a subdirectory a child process backs up (see _join_split)
_GONE: Node = Node(name=b"", type=DIR)  # ... and that turned out not to be there


def _resolved(e: _Entry) -> Node | Wire | None:
    """The node of a walked entry, once its worker is done (None: it was skipped)."""
    if isinstance(e, Node | dict):
        return e
    if isinstance(e, _Dir):
        e.done.wait()
        return e.node if e.node is not None and e.node.subtree is not None else None
    if isinstance(e, tuple):
        batch, i = e
        batch.submitted.wait()
        assert batch.future is not None
        return batch.future.result()[i]
    return e.result()


class _Split:
    """The subdirectories of one directory, shared among child processes."""

    def __init__(self, base: bytes, names: list[bytes], parents: dict[bytes, Wire]) -> None:
        self.base = base
        self.names = names
        self.parents = parents
        self.positions = dict.fromkeys(names, -1)  # name -> its index in the directory's entries
        self.children: list[Child] = []
        self.tallies: dict[int, Counters] = {}  # the progress each child reported
        self.turns = Turns(len(names))  # which child backs up which subdirectory: the next free one


class Backup:
    """One backup run; create, then call :meth:`run` once."""

    def __init__(self, repo: Repository, options: BackupOptions, reporter: Reporter = ignore) -> None:
        self.repo = repo
        self.opts = options
        self.report = reporter
        self.counters = Counters()
        self.summary = BackupSummary()
        self._summary_lock = threading.Lock()
        self._parents = ParentTrees(repo)
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(_MAX_IN_FLIGHT)
        self._finish_queue: queue.Queue[_Dir | None] = queue.Queue()
        self._finisher_error: BaseException | None = None
        self._root_dev: int | None = None
        self._batch = _Batch()
        self._inline = False  # the walking thread stores the files the page cache holds (in child processes)
        self._abort = threading.Event()
        # stores the chunks of large files (see _read_content); threads start with the first such chunk
        self._chunk_pool = ThreadPoolExecutor(options.workers, thread_name_prefix="chunk")
        self._split_at: set[bytes] = set()  # the backed-up directories whose subdirectories may be split
        self._split_tried = False  # only the first: later, this process's threads are at work (see _start_split)
        self._work_started = False  # file content handed to the workers (no fork after that)
        self._children_stored = 0  # bytes of packs the child processes wrote
        self._split: _Split | None = None

    # ---- entry point ----------------------------------------------------------------------------------

    def run(self) -> Snapshot:
        start = time.monotonic()
        started_at = datetime.now().astimezone()
        if self.opts.stdin is None and not self.opts.paths:
            raise UsageError("nothing to back up: give at least one path")
        if self.opts.stdin is None:
            paths = _normalize(self.opts.paths)
        else:
            paths = ["/" + os.fsdecode(b"/".join(_stdin_parts(self.opts.stdin_filename)))]
        parent = self._find_parent(paths)
        self.summary.parent = parent.id if parent else None
        if parent is not None and parent.files < self.opts.split_min_files:
            self._split_tried = True  # a small tree: one process
        if self.opts.observer is not None:
            self.opts.observer.start(parent, self._previous(paths))
        self.repo.index_orphan_packs()
        pool = ThreadPoolExecutor(self.opts.workers, thread_name_prefix="file")
        finisher = threading.Thread(target=self._finish_loop, name="tree-finisher", daemon=True)
        finisher.start()
        try:
            if self.opts.stdin is not None:
                root = self._stdin_root()
            else:
                parent_root = self._parents.listing(bytes.fromhex(parent.tree) if parent else None)
                root = self._save_roots(paths, parent_root, pool)
        except BaseException:
            # Interrupted or failed: stop the workers quickly. Nothing written so far can harm the repository.
            self._abort.set()
            for child in self._split.children if self._split is not None else ():
                child.kill()
            raise
        finally:
            self._submit_batch(pool)  # the tree finisher may be waiting for it (its files are skipped on abort)
            self._finish_queue.put(None)
            finisher.join()
            pool.shutdown(wait=True, cancel_futures=self._abort.is_set())
            self._chunk_pool.shutdown(wait=True, cancel_futures=True)
        if self._finisher_error is not None:
            raise self._finisher_error
        root_id = self._save_tree(root)
        self.repo.flush()
        self.summary.bytes_added = self.repo.stored_bytes + self._children_stored
        self.summary.duration_s = round(time.monotonic() - start, 3)
        summary = {
            k: v for k, v in self.summary.as_dict().items() if k not in ("snapshot_id", "parent", "errors", "warnings")
        }
        observed = self.opts.observer.finish(summary) if self.opts.observer is not None else None
        snap = Snapshot(
            time=_snapshot_time(self.opts.time, started_at),
            tree=root_id.hex(),
            paths=paths,
            hostname=self.opts.hostname,
            username=_username(),
            uid=os.getuid(),
            gid=os.getgid(),
            tags=list(self.opts.tags),
            parent=self.summary.parent,
            program_version=f"sauvegarde {__version__}",
            summary=summary | {"errors": len(self.summary.errors)},
            extra={"guard": observed} if observed is not None else {},
        )
        self.summary.snapshot_id = self.repo.save_snapshot(snap)
        return snap

    def _find_parent(self, paths: list[str]) -> Snapshot | None:
        if self.opts.force:
            return None
        if self.opts.parent:
            return self.repo.load_snapshot(self.opts.parent)
        snaps = self._previous(paths)
        return snaps[-1] if snaps else None

    def _previous(self, paths: list[str]) -> list[Snapshot]:
        """Earlier snapshots of this host and these paths, oldest first."""
        return filter_snapshots(self.repo.snapshots(), SnapshotFilter(hosts=[self.opts.hostname], paths=paths))

    # ---- walking --------------------------------------------------------------------------------------

    def _save_roots(self, paths: list[str], parent_root: dict[bytes, Wire], pool: ThreadPoolExecutor) -> _Dir:
        """Build the virtual tree joining the given absolute paths under ``/``."""
        if "/" in paths:
            root = _Dir(None)
            self._root_dev = os.lstat("/").st_dev
            self._split_at.add(b"/")
            split = self._fill_dir(root, b"/", parent_root, pool)
            if split is not None:
                self._join_split(root, split, pool)
            return root
        layout: dict[bytes, object] = {}
        self._split_at.update(os.fsencode(p) for p in paths)
        for p in paths:
            parts = [os.fsencode(x) for x in p.split("/") if x]
            cur = layout
            for part in parts[:-1]:
                nxt = cur.setdefault(part, {})
                if nxt is None:
                    break  # an ancestor is itself backed up whole
                assert isinstance(nxt, dict)
                cur = nxt
            else:
                cur[parts[-1]] = None
        return self._save_virtual(b"", layout, parent_root, pool)

    def _save_virtual(
        self, prefix: bytes, layout: dict[bytes, object], parents: dict[bytes, Wire], pool: ThreadPoolExecutor
    ) -> _Dir:
        d = _Dir(None)
        for name in sorted(layout):
            path = prefix + b"/" + name
            pnode = parents.get(name)
            sub = layout[name]
            if sub is None:
                try:
                    st = os.lstat(path)
                except OSError as exc:
                    self._error(path, exc)
                    continue
                self._root_dev = st.st_dev
                entry = self._save_entry(path, name, st, pnode, pool)
                if entry is not None:
                    d.entries.append(entry)
                continue
            assert isinstance(sub, dict)
            try:
                node = node_from_stat(name, path, os.stat(path))
            except OSError as exc:
                self._error(path, exc)
                continue
            child = self._save_virtual(path, sub, self._parents.subtree(pnode), pool)
            child.node = node
            d.entries.append(child)
            self._finish_queue.put(child)
        return d

    def _save_entry(
        self, path: bytes, name: bytes, st: os.stat_result, pnode: Wire | None, pool: ThreadPoolExecutor
    ) -> _Entry | None:
        node = self._reported(path, lambda p: node_from_stat(name, p, st))
        if node is None:
            return None
        if node.type == DIR:
            return self._save_dir(path, node, pnode, pool)
        if node.type != FILE:
            self.counters.add(files=1)
            return node
        if pnode is not None and node_unchanged(node, pnode) and self.repo.index.known([content_ids(pnode)])[0]:
            node.content = split_ids(content_ids(pnode))
            self._count("files_unmodified", node.size)
            self.counters.add(files=1, nbytes=node.size)
            return node
        self._work_started = True
        if node.size >= self.repo.config.chunker.min_size:
            if self._inline and node.size <= self.repo.config.chunker.max_size:
                cached = self._save_cached(path, node, pnode)
                if cached is not None:
                    return cached
            elif self._inline and starts_cached(path):
                # streamed here too, its chunks stored by the chunk workers: its time is this child's, so the
                # other takes the directories left meanwhile (a 76 MB file taken by a worker thread mid-walk ended
                # its child 0.5-0.7 s after the other)
                return self._save_file(path, node, pnode)
            self._slots.acquire()
            fut = pool.submit(self._save_file, path, node, pnode)
            fut.add_done_callback(lambda _f: self._slots.release())
            return fut
        batch = self._batch
        batch.items.append((path, node, pnode))
        batch.size += node.size
        if len(batch.items) >= _BATCH_FILES or batch.size >= _BATCH_BYTES:
            self._submit_batch(pool)
        return batch, len(batch.items) - 1

    def _submit_batch(self, pool: ThreadPoolExecutor) -> None:
        batch, self._batch = self._batch, _Batch()
        if not batch.items:
            return
        if self._inline and self._store_cached(batch):
            return
        self._slots.acquire()
        batch.future = pool.submit(self._save_batch, batch.items)
        batch.future.add_done_callback(lambda _f: self._slots.release())
        batch.submitted.set()

    def _save_batch(self, items: list[tuple[bytes, Node, Wire | None]]) -> list[Node | None]:
        """Small files: read each in one call, then store their contents together (:meth:`Repository.save_blobs`).

        A file that does not look exactly as the walk saw it (grown, changed, replaced) goes the careful way of
        :meth:`_save_file` instead. Those the page cache holds are read first, and the disk is asked to fetch the
        others meanwhile (read one after the other, they kept one request in flight per worker), unless the walk
        stores what is cached itself (a worker process's: a batch reaches the workers only when the walk found it
        not cached and asked, see :meth:`_store_cached`). One process (a
        remote repository), profiling tree with the page cache dropped, 3 alternating runs: 6.13-6.48 ->
        5.22-5.48 s; in the page cache 3.5-3.7 s either way.
        """
        out: list[Node | None] = [None] * len(items)
        if self._abort.is_set():
            return out
        fast: list[tuple[int, Buffer]] = []
        waiting: list[int] = []
        for i, (path, node, _pnode) in enumerate(items):
            data = self._read_as_walked(path, node, cached_only=True) if RWF_NOWAIT and not self._inline else None
            if data is None:
                waiting.append(i)
            else:
                fast.append((i, data))
        for i in waiting:
            path, node, pnode = items[i]
            data = self._read_as_walked(path, node)
            if data is None:
                out[i] = self._save_file(path, node, pnode)
            else:
                fast.append((i, data))
        fast.sort(key=lambda item: item[0])
        self._store_read(items, fast, out)
        return out

    def _store_read(
        self, items: list[tuple[bytes, Node, Wire | None]], fast: list[tuple[int, Buffer]], out: list[Node | None]
    ) -> None:
        """Store the small files of a batch that were read whole (``fast``: their index in ``items`` and content)
        and put their nodes in ``out``."""
        stored = [(i, data) for i, data in fast if data]
        ids = self.repo.save_blobs(BlobType.DATA, [data for _i, data in stored]) if stored else []
        content = dict(zip((i for i, _d in stored), ids, strict=True))
        observer = self.opts.observer
        new = changed = nbytes = 0
        for i, data in fast:
            path, node, pnode = items[i]
            node.content = [content[i]] if data else []
            out[i] = node
            nbytes += len(data)
            if pnode is None:
                new += 1
            else:
                changed += 1
            if observer is not None:
                sampler = BlockSampler()
                if data:
                    sampler.feed(data)
                observer.file(path, node, sampler, pnode)
        with self._summary_lock:
            self.summary.files_new += new
            self.summary.files_changed += changed
            self.summary.bytes_processed += nbytes
        self.counters.add(files=new + changed, nbytes=nbytes)

    def _read_as_walked(self, path: bytes, node: Node, cached_only: bool = False) -> Buffer | None:
        """The whole content of a file in one read, or None if it is no longer what the walk saw (or, with
        ``cached_only``, if reading it would wait for the disk: the disk is then asked to start reading it,
        :func:`~sauvegarde.util.pagecache.fetch_ahead`)."""
        try:
            fd = open_noatime(path)
        except OSError:
            return None  # _save_file tries again and reports why
        try:
            data: Buffer | None = read_cached(fd, node.size, fetch=True) if cached_only else os.read(fd, node.size + 1)
            if data is None:
                return None
            st = os.fstat(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        if (
            len(data) != node.size
            or not stat.S_ISREG(st.st_mode)
            or (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            != (node.size, node.mtime_ns, node.ctime_ns, node.inode)
        ):
            return None
        return data

    # Files the walking thread stores itself. In a child process all Python work waits for one interpreter lock
    # and the processes already share the cores: a file handed to a worker thread costs the lock going back and
    # forth at each of its calls (open, read, hash, compress...), and no core is gained. A file whose content the
    # page cache holds is read and stored right where it is walked (small ones still batched); one whose read would
    # wait for the disk goes to the workers as before, so that reads still overlap when the data is not in memory.
    # /usr/share copied (47,000 files, 577 MB), first backup, medians of 6 alternating runs: in the page cache
    # 3.81 -> 3.65 s, CPU 6.72 -> 6.52 s, peak of the process tree 136-137 -> 129-134 MiB; not cached, unchanged
    # (7.0-7.5 s either way: nothing is cached, so everything goes to the workers).
    # A read that would wait asks the disk to start on the file (and a batch that goes to the workers, on all its
    # files): one file worker per child read its batches one file at a time, and a cold disk answered one request
    # at a time. The same tree (now 46,700 files, 698 MB) with the page cache dropped, 3 alternating runs: 5.41-5.69
    # -> 3.45-3.73 s; in the page cache nothing is asked.

    def _save_cached(self, path: bytes, node: Node, pnode: Wire | None) -> Node | None:
        """Store a file of one to a few chunks here if the page cache holds its content; None: the file workers
        take it (not cached, changed since the walk, unreadable: they report why)."""
        data = self._read_as_walked(path, node, cached_only=True)
        if data is None:
            return None
        sampler = BlockSampler() if self.opts.observer is not None else None
        node.content = self._store_whole(data, sampler)
        self._count(None, len(data))
        return self._file_saved(path, node, pnode, sampler)

    def _store_cached(self, batch: _Batch) -> bool:
        """Store a batch of small files here if the page cache holds all of them; False: none was stored, the file
        workers take the batch. (Read all, then stored, then released together: read one by one as they were
        walked, their buffers were scattered among longer-lived allocations and a child kept 20 MB more.)"""
        datas: list[tuple[int, Buffer]] = []
        for i, (path, node, _pnode) in enumerate(batch.items):
            data = self._read_as_walked(path, node, cached_only=True)
            if data is None:
                # the file worker will read them one after the other: the disk starts on all of them now
                for later_path, later, _p in batch.items[i + 1 :]:
                    fetch_file_ahead(later_path, later.size)
                return False
            datas.append((i, data))
        out: list[Node | None] = [None] * len(batch.items)
        done: Future[list[Node | None]] = Future()
        try:
            if not self._abort.is_set():
                self._store_read(batch.items, datas, out)
            done.set_result(out)
        except BaseException as exc:
            done.set_exception(exc)  # for the tree finisher, which may wait on it
            raise
        finally:
            batch.future = done
            batch.submitted.set()
        return True

    def _save_dir(self, path: bytes, node: Node, pnode: Wire | None, pool: ThreadPoolExecutor) -> _Dir:
        d = _Dir(node)
        parents = self._parents.subtree(pnode)
        split = self._fill_dir(d, path, parents, pool)
        if split is not None:
            self._join_split(d, split, pool)
        if parents and d.unchanged == len(parents) == len(d.entries):
            # the same entries, each byte for byte (same keys in the same order, names sorted): the tree would
            # encode to the parent's blob, which the listing was just read from
            subtree = pnode.get("st") if pnode is not None else None
            d.same_as = subtree if isinstance(subtree, bytes) else None
        self._finish_queue.put(d)
        return d

    def _fill_dir(self, d: _Dir, path: bytes, parents: dict[bytes, Wire], pool: ThreadPoolExecutor) -> _Split | None:
        with self._summary_lock:
            self.summary.dirs += 1
        try:
            names = list_dir(path)
        except OSError as exc:
            self._error(path, exc)
            names = []
        base = path.rstrip(b"/")
        excluder = self.opts.excluder
        if excluder:
            names = [name for name in names if not excluder.excluded(base + b"/" + name)]
        if self.opts.observer is not None:
            self.opts.observer.directory(base or b"/", parents, names)
        split = self._start_split(path, base, names, parents) if path in self._split_at else None
        for start in range(0, len(names), _STAT_BATCH):
            self._fill_entries(d, base, names[start : start + _STAT_BATCH], parents, pool, split)
        return split

    def _fill_entries(
        self,
        d: _Dir,
        base: bytes,
        names: list[bytes],
        parents: dict[bytes, Wire],
        pool: ThreadPoolExecutor,
        split: _Split | None = None,
    ) -> None:
        """Stat some entries of a directory and add them to its tree, carrying unchanged files over."""
        listed: list[tuple[bytes, bytes, os.stat_result]] = []
        for name in names:
            if split is not None and name in split.positions:
                split.positions[name] = len(d.entries)  # written by a child process; see _join_split
                d.entries.append(_PLACEHOLDER)
                continue
            child = base + b"/" + name
            try:
                listed.append((child, name, os.lstat(child)))
            except FileNotFoundError:
                self._warn(child, "vanished before it could be read")
            except OSError as exc:
                self._error(child, exc)
        # Files whose stat matches the parent's entry are carried over if all their blobs are still indexed;
        # the index is searched once for the whole batch.
        candidates: dict[bytes, Wire] = {}
        for _child, name, st in listed:
            w = parents.get(name)
            if w is not None and stat_unchanged(st, w):
                candidates[name] = w
        known = self.repo.index.known([content_ids(w) for w in candidates.values()])
        reusable = {name for name, ok in zip(candidates, known, strict=True) if ok}
        reused = reused_bytes = 0  # counted once for the batch: two locks per file cost more than the rest
        for child, name, st in listed:
            if name in reusable:
                w = parents[name]
                if entry_is_current(w, st):
                    d.unchanged += 1
                d.entries.append(reuse_entry(w, st))
                reused += 1
                reused_bytes += w.get("s", 0)
                continue
            entry = self._save_listed(child, name, st, parents.get(name), pool)
            if entry is not None:
                d.entries.append(entry)
        if reused:
            with self._summary_lock:
                self.summary.files_unmodified += reused
                self.summary.bytes_processed += reused_bytes
            self.counters.add(files=reused, nbytes=reused_bytes)

    def _save_listed(
        self, path: bytes, name: bytes, st: os.stat_result, pnode: Wire | None, pool: ThreadPoolExecutor
    ) -> _Entry | None:
        """An entry of a directory being walked: with --one-file-system, a mount point is kept as an empty
        directory; anything else is backed up (:meth:`_save_entry`)."""
        if self.opts.one_file_system and stat.S_ISDIR(st.st_mode) and st.st_dev != self._root_dev:
            try:
                mnode = node_from_stat(name, path, st)
            except OSError as exc:
                self._error(path, exc)
                return None
            empty = _Dir(mnode)
            self._finish_queue.put(empty)
            return empty
        return self._save_entry(path, name, st, pnode, pool)

    def _save_subdir(self, split: _Split, i: int, pool: ThreadPoolExecutor) -> _Entry | None:
        """Subdirectory ``i`` of a split directory (in a child process, or here if its child failed)."""
        name = split.names[i]
        path = split.base + b"/" + name
        st = self._reported(path, os.lstat)
        return None if st is None else self._save_listed(path, name, st, split.parents.get(name), pool)

    # ---- file content ---------------------------------------------------------------------------------

    def _chunker(self) -> Chunker:
        ch: Chunker | None = getattr(self._local, "chunker", None)
        if ch is None:
            ch = self._local.chunker = Chunker(self.repo.config.chunker)
        return ch

    def _save_file(self, path: bytes, node: Node, pnode: Wire | None) -> Node | None:
        if self._abort.is_set():
            return None
        try:
            fd = open_noatime(path)
        except FileNotFoundError:
            self._warn(path, "vanished before it could be read")
            return None
        except OSError as exc:
            self._error(path, exc)
            return None
        sampler = BlockSampler() if self.opts.observer is not None else None
        try:
            with os.fdopen(fd, "rb", buffering=0) as f:
                before = os.fstat(fd)
                if not stat.S_ISREG(before.st_mode):
                    self._warn(path, "replaced by another kind of file while being read; skipped")
                    return None
                if before.st_size < self.repo.config.chunker.min_size:
                    size, content = self._read_small(fd, before.st_size, sampler)
                else:
                    size, content = self._read_content(f, before.st_size, sampler)
                after = os.fstat(fd)
        except OSError as exc:
            self._error(path, exc)
            return None
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size) or size != before.st_size:
            self._warn(path, "changed while being read; the snapshot holds what was read")
        node.content = content
        node.size = size
        node.mtime_ns, node.ctime_ns, node.inode = before.st_mtime_ns, before.st_ctime_ns, before.st_ino
        return self._file_saved(path, node, pnode, sampler)

    def _file_saved(self, path: bytes, node: Node, pnode: Wire | None, sampler: BlockSampler | None) -> Node:
        """A file read and stored on its own (its content IDs set): shown to the observer, counted."""
        if sampler is not None and self.opts.observer is not None:
            self.opts.observer.file(path, node, sampler, pnode)
        self._count("files_changed" if pnode is not None else "files_new", 0)
        self.counters.add(files=1)
        return node

    def _read_small(self, fd: int, size: int, sampler: BlockSampler | None) -> tuple[int, list[bytes]]:
        """Read a file expected to be one chunk (it may have grown since ``fstat``: read to the end)."""
        data = os.read(fd, size + 1)
        if len(data) > size:
            parts = [data]
            while more := os.read(fd, 1 << 20):
                parts.append(more)
            data = b"".join(parts)
        self._count(None, len(data))
        if not data:
            return 0, []
        if sampler is not None:
            sampler.feed(data)
        return len(data), [self.repo.save_blob(BlobType.DATA, data)[0]]

    def _read_content(
        self, f: BinaryIO, size_hint: int, sampler: BlockSampler | None = None
    ) -> tuple[int, list[bytes]]:
        ids: list[bytes] = []
        total = 0
        if size_hint < self.repo.config.chunker.min_size:
            data = f.read()
            while True:  # the file may have grown since fstat
                more = f.read()
                if not more:
                    break
                data += more
            if data:
                ids.append(self.repo.save_blob(BlobType.DATA, data)[0])
                if sampler is not None:
                    sampler.feed(data)
            total = len(data)
            self._count(None, total)
            return total, ids
        if size_hint <= self.repo.config.chunker.max_size:
            # read whole and cut in memory: the stream chunker's own buffer is twice the largest chunk (16 MiB,
            # zero-filled for every file), the file at most that; the cut points are the same
            data = f.read()
            while more := f.read():  # the file may have grown since fstat
                data += more
            ids = self._store_whole(data, sampler)
            self._count(None, len(data))
            return len(data), ids
        # Larger files and streams: chunks are stored by the chunk workers (hashing, compressing and sealing
        # release the GIL) while this thread reads and cuts on; their IDs are collected in order. One thread for
        # everything kept a lone large file on one core, three quarters of it in zstd (650 MB: 4.5 s).
        pending: deque[Future[tuple[bytes, bool]]] = deque()
        raw: bool | None = None  # decided by the first chunk, as above
        try:
            for chunk in self._chunker().chunks(f):
                if sampler is not None:
                    sampler.feed(chunk)
                if raw is None:
                    raw = looks_compressed(chunk)
                # a copy: the chunker reuses its window for the next chunks
                save = self.repo.save_blob
                pending.append(self._chunk_pool.submit(save, BlobType.DATA, bytes(chunk), compressible=not raw))
                total += len(chunk)
                self._count(None, len(chunk))
                while len(pending) > _CHUNKS_IN_FLIGHT:
                    ids.append(pending.popleft().result()[0])
            while pending:
                ids.append(pending.popleft().result()[0])
        finally:
            for fut in pending:
                fut.cancel()
        return total, ids

    def _store_whole(self, data: Buffer, sampler: BlockSampler | None) -> list[bytes]:
        """Cut a file read whole into chunks and store them; their IDs."""
        # the whole file: a format compressed already is so in its later chunks too (no magic of their own)
        compressible = not looks_compressed(data)
        ids: list[bytes] = []
        group: list[memoryview] = []
        size = 0
        for chunk in self._chunker().chunks_of(data):
            group.append(chunk)
            size += len(chunk)
            if sampler is not None:
                sampler.feed(chunk)
            if size >= _BATCH_BYTES:  # compressed together, on every core; bounded: each copy costs memory
                ids += self.repo.save_blobs(BlobType.DATA, group, compressible)
                group, size = [], 0
        if group:
            ids += self.repo.save_blobs(BlobType.DATA, group, compressible)
        return ids

    def _stdin_root(self) -> _Dir:
        """The file read from standard input, at the path ``--stdin-filename`` gives (directories made up)."""
        assert self.opts.stdin is not None
        now = time.time_ns()
        *dirs, name = _stdin_parts(self.opts.stdin_filename)
        size, content = self._read_content(self.opts.stdin, 1 << 62)
        node = Node(
            name=name,
            type=FILE,
            mode=0o600,
            uid=os.getuid(),
            gid=os.getgid(),
            mtime_ns=now,
            atime_ns=now,
            ctime_ns=now,
            size=size,
            content=content,
        )
        self._count("files_new", 0)
        for dname in reversed(dirs):
            subtree = self.repo.save_blob(BlobType.TREE, Tree([node]).encode())[0]
            node = Node(name=dname, type=DIR, mode=0o700, uid=os.getuid(), gid=os.getgid(), mtime_ns=now)
            node.subtree = subtree
        root = _Dir(None)
        root.entries.append(node)
        return root

    # ---- trees ----------------------------------------------------------------------------------------

    def _finish_loop(self) -> None:
        while True:
            d = self._finish_queue.get()
            if d is None:
                return
            if self._finisher_error is not None or self._abort.is_set():
                d.done.set()
                continue
            try:
                assert d.node is not None
                d.node.subtree = self._save_tree(d)
                d.node.size = 0
                d.entries = []  # saved: the nodes are no longer needed (memory stays flat as trees grow)
            except BaseException as exc:
                self._finisher_error = exc
            finally:
                d.done.set()

    def _save_tree(self, d: _Dir) -> bytes:
        if d.same_as is not None:
            return d.same_as
        nodes = [n for n in map(_resolved, d.entries) if n is not None]
        return self.repo.save_blob(BlobType.TREE, Tree.encode_entries(nodes))[0]

    # ---- child processes ------------------------------------------------------------------------------
    # Unchanged and small files cost Python work each (stat, compare, read, hash and store calls) under one
    # interpreter lock. The subdirectories of the first directory backed up are shared among forked copies of
    # this process: each takes the next one not taken (a counter in shared memory; those with the most entries
    # first, so that small ones even out the end: source.listing.largest_first), backs it up with file workers
    # and a tree finisher of its own, writes its packs and index objects, and returns the subdirectories' nodes
    # (with their tree IDs), its summary and the guard's observations. This process backs up the files beside
    # them meanwhile. The fork happens before this process has stored anything or started a worker, so a child
    # begins with no pack half written and no lock held by a thread it does not have. A child that fails gives
    # nothing: its subdirectories are backed up again here, and whatever it stored is unreferenced data a later
    # prune removes.

    def _start_split(self, path: bytes, base: bytes, names: list[bytes], parents: dict[bytes, Wire]) -> _Split | None:
        if self._split_tried:
            return None
        self._split_tried = True
        observer = self.opts.observer
        if (
            self.opts.processes < 1
            or not self.repo.shared_by_processes
            or not can_fork()
            or self._work_started
            or self.repo.has_unsaved_work()
            or (observer is not None and not hasattr(observer, "child_state"))
        ):
            return None
        try:
            subdirs = subdir_names(path, set(names))
        except OSError:
            return None  # the walk reports it
        if len(subdirs) == 1:
            # /home with one user, /srv with one data directory: try again one level down, where the work is
            # (the fork is still refused there if files of this directory were handed to the workers first)
            self._split_tried = False
            self._split_at.add(base + b"/" + subdirs[0])
            return None
        if len(subdirs) < 2:
            return None
        split = self._split = _Split(base, largest_first(path, subdirs), parents)

        def work(send: Send) -> dict[str, object]:
            return self._child_work(split, send)

        split.children = start_children(
            self.opts.processes, lambda: child_reporting(work, self.counters, split.tallies)
        )
        return split

    def _child_work(self, split: _Split, send: Send) -> dict[str, object]:  # pragma: no cover - in the child
        self.repo.after_fork()
        self._summary_lock = threading.Lock()  # a parent thread may hold the old locks: fresh ones
        self.summary = BackupSummary()
        self.counters = SentCounters(send)
        self.report = ignore  # errors and warnings go back with the summary
        self._slots = threading.BoundedSemaphore(_MAX_IN_FLIGHT)
        self._finish_queue = queue.Queue()
        self._batch = _Batch()
        self._inline = True  # see _save_cached
        self._local = threading.local()
        workers = max(1, self.opts.workers // max(1, self.opts.processes))
        self._chunk_pool = ThreadPoolExecutor(workers, thread_name_prefix="chunk")
        observer = self.opts.observer
        if observer is not None:
            observer.start_child()  # type: ignore[attr-defined]
        pool = ThreadPoolExecutor(workers, thread_name_prefix="file")
        finisher = threading.Thread(target=self._finish_loop, name="tree-finisher", daemon=True)
        finisher.start()
        taken: list[tuple[int, _Entry | None]] = []
        try:
            while (i := split.turns.take()) is not None:
                taken.append((i, self._save_subdir(split, i, pool)))
        finally:
            self._submit_batch(pool)
            self._finish_queue.put(None)
            finisher.join()
            pool.shutdown(wait=True)
            self._chunk_pool.shutdown(wait=True)
        if self._finisher_error is not None:
            raise self._finisher_error
        nodes = {i: _resolved(e) if e is not None else None for i, e in taken}
        self.repo.flush()
        self.counters.send_now()
        return {
            "nodes": nodes,
            "summary": self.summary,
            "stored": self.repo.stored_bytes,
            "observer": observer.child_state() if observer is not None else None,  # type: ignore[attr-defined]
        }

    def _join_split(self, d: _Dir, split: _Split, pool: ThreadPoolExecutor) -> None:
        """Wait for the children; put their subdirectories' nodes in place, or back them up here if a child
        failed."""
        done: dict[int, Node | Wire | None] = {}
        for child in split.children:
            try:
                result = child.wait()
            except ChildFailed as exc:
                self._warn(split.base or b"/", f"{exc}; its part of the backup is done again by the main process")
                take_back(self.counters, split.tallies[child.pid])
                continue
            done.update(result["nodes"])
            self._merge_child(result)
        for i, name in enumerate(split.names):
            pos = split.positions[name]
            if i in done:
                node = done[i]
                d.entries[pos] = node if node is not None else _GONE
                continue
            entry = self._save_subdir(split, i, pool)
            d.entries[pos] = entry if entry is not None else _GONE
        d.entries = [e for e in d.entries if e is not _GONE]

    def _merge_child(self, result: dict[str, Any]) -> None:
        child: BackupSummary = result["summary"]
        with self._summary_lock:
            for key in ("files_new", "files_changed", "files_unmodified", "dirs", "bytes_processed"):
                setattr(self.summary, key, getattr(self.summary, key) + getattr(child, key))
            self.summary.errors.extend(child.errors)
            self.summary.warnings.extend(child.warnings)
        self._children_stored += result["stored"]
        report_problems(self.report, child.errors, child.warnings)
        if self.opts.observer is not None and result["observer"] is not None:
            self.opts.observer.merge_child(result["observer"])  # type: ignore[attr-defined]

    # ---- reporting ------------------------------------------------------------------------------------

    def _count(self, key: str | None, nbytes: int) -> None:
        with self._summary_lock:
            if key is not None:
                setattr(self.summary, key, getattr(self.summary, key) + 1)
            self.summary.bytes_processed += nbytes
        if key is None:
            self.counters.add(nbytes=nbytes)

    def _reported(self, path: bytes, look: Callable[[bytes], _T]) -> _T | None:
        """``look(path)``, or None once a failure is reported (a file gone is a warning, anything else an error)."""
        try:
            return look(path)
        except FileNotFoundError:
            self._warn(path, "vanished before it could be read")
        except OSError as exc:
            self._error(path, exc)
        return None

    def _error(self, path: bytes, exc: OSError) -> None:
        msg = exc.strerror or str(exc)
        text = os.fsdecode(path)
        with self._summary_lock:
            self.summary.errors.append({"path": text, "error": msg})
        self.report(FileError(text, msg))

    def _warn(self, path: bytes, msg: str) -> None:
        text = os.fsdecode(path)
        with self._summary_lock:
            self.summary.warnings.append({"path": text, "warning": msg})
        self.report(FileWarning(text, msg))


def _snapshot_time(when: datetime | None, started_at: datetime) -> str:
    if when is None:
        return format_time(time.time_ns(), started_at)
    when = when.astimezone()  # a naive time is local time
    ns = int(when.replace(microsecond=0).timestamp()) * 1_000_000_000 + when.microsecond * 1000
    return format_time(ns, when)


def _stdin_parts(filename: str) -> list[bytes]:
    """The components of ``--stdin-filename`` (``stdin`` if it has none); ``.`` and ``..`` are refused."""
    parts = [os.fsencode(p) for p in filename.split("/") if p]
    if any(p in (b".", b"..") for p in parts):
        raise UsageError(f"--stdin-filename {filename!r}: '.' and '..' are not allowed")
    return parts or [b"stdin"]


def _normalize(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if not os.path.lexists(p):
            raise UsageError(f"{p}: no such file or directory")
        out.append(os.path.normpath(os.path.abspath(p)))
    return sorted(set(out))


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
