"""Browsing a repository as a read-only file tree: the model behind ``sauvegarde mount``.

The top of the tree is virtual and built from the snapshot list, as restic lays it out::

    snapshots/<local time>/...      one directory per snapshot (``-1``, ``-2`` appended to equal times), ``latest``
    ids/<short id>/...
    hosts/<host>/<local time>/...   with a ``latest`` link per host
    tags/<tag>/<local time>/...     with a ``latest`` link per tag

Below a snapshot directory come the nodes of its trees. Every entry is a :class:`Node`: virtual directories and
links are synthesised ones. Paths are bytes, relative to the top, ``/``-separated. A missing entry raises
:class:`FileNotFoundError`, a path through a non-directory :class:`NotADirectoryError`, so a file-system adapter can
pass the ``errno`` on. Reading a file fetches only the data blobs covering the requested range (their sizes come
from the index), and keeps recently decoded blobs in a small LRU cache shared by all open files.
"""

from __future__ import annotations

import bisect
import errno
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sauvegarde.engine.walk import TreeLoader
from sauvegarde.errors import IntegrityError
from sauvegarde.repository import Node, Repository, Snapshot
from sauvegarde.repository.tree import DIR, FILE, SYMLINK

DEFAULT_BLOB_CACHE_BYTES = 64 * 1024 * 1024
LATEST = b"latest"


@dataclass
class VirtualDir:
    """A directory of the virtual top part of the tree."""

    node: Node
    children: dict[bytes, VirtualDir | Node] = field(default_factory=dict)

    def add_dir(self, name: bytes) -> VirtualDir:
        hit = self.children.get(name)
        if isinstance(hit, VirtualDir):
            return hit
        sub = VirtualDir(_virtual_dir_node(name, self.node.mtime_ns, self.node.uid, self.node.gid))
        self.children[name] = sub
        return sub


def _virtual_dir_node(name: bytes, mtime_ns: int, uid: int, gid: int) -> Node:
    t = mtime_ns
    return Node(name=name, type=DIR, mode=0o555, uid=uid, gid=gid, mtime_ns=t, atime_ns=t, ctime_ns=t)


def snapshot_time_ns(snap: Snapshot) -> int:
    dt = snap.datetime
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def snapshot_names(snaps: Sequence[Snapshot]) -> list[bytes]:
    """Directory names for ``snaps`` (oldest first): local time to the second, ``-1``, ``-2``... for equal ones."""
    names: list[bytes] = []
    seen: dict[str, int] = {}
    for snap in snaps:
        base = snap.datetime.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        n = seen.get(base, 0)
        seen[base] = n + 1
        names.append((base if n == 0 else f"{base}-{n}").encode())
    return names


def short_ids(snaps: Sequence[Snapshot]) -> list[bytes]:
    """8-digit IDs, lengthened for snapshots whose short IDs collide."""
    count: dict[str, int] = {}
    for s in snaps:
        count[s.short_id] = count.get(s.short_id, 0) + 1
    return [(s.short_id if count[s.short_id] == 1 else s.id).encode() for s in snaps]


def _entry_name(text: str) -> bytes:
    """A host or tag as one directory name: never empty, ``.``, ``..``, nor containing ``/``."""
    name = text.encode(errors="surrogateescape").replace(b"/", b"_")
    return name if name.strip(b".") else b"_" + name


def _snapshot_root(name: bytes, snap: Snapshot) -> Node:
    t = snapshot_time_ns(snap)
    return Node(
        name=name,
        type=DIR,
        mode=0o755,
        uid=snap.uid,
        gid=snap.gid,
        mtime_ns=t,
        atime_ns=t,
        ctime_ns=t,
        subtree=bytes.fromhex(snap.tree),
    )


def _link(name: bytes, target: bytes, mtime_ns: int, owner: Node) -> Node:
    t = mtime_ns
    return Node(
        name=name,
        type=SYMLINK,
        mode=0o777,
        uid=owner.uid,
        gid=owner.gid,
        size=len(target),
        target=target,
        mtime_ns=t,
        atime_ns=t,
        ctime_ns=t,
    )


def build_layout(
    snaps: Sequence[Snapshot], now_ns: int | None = None, uid: int | None = None, gid: int | None = None
) -> VirtualDir:
    """The virtual top of the tree for ``snaps``; its directories belong to ``uid``/``gid`` (default: ours)."""
    snaps = sorted(snaps, key=lambda s: (s.datetime, s.id))
    mtime = snapshot_time_ns(snaps[-1]) if snaps else (now_ns if now_ns is not None else time.time_ns())
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    root = VirtualDir(_virtual_dir_node(b"", mtime, uid, gid))
    by_time = root.add_dir(b"snapshots")
    ids = root.add_dir(b"ids")
    hosts = root.add_dir(b"hosts")
    tags = root.add_dir(b"tags")
    names = snapshot_names(snaps)
    for snap, name, sid in zip(snaps, names, short_ids(snaps), strict=True):
        t = snapshot_time_ns(snap)
        by_time.children[name] = _snapshot_root(name, snap)
        ids.children[sid] = _snapshot_root(sid, snap)
        places = [hosts.add_dir(_entry_name(snap.hostname))]
        places += [tags.add_dir(_entry_name(tag)) for tag in sorted(set(snap.tags)) if tag]
        for place in places:  # names are unique across all snapshots, so within each group too
            place.children[name] = _snapshot_root(name, snap)
            place.children[LATEST] = _link(LATEST, name, t, root.node)
            place.node.mtime_ns = t
    if snaps:
        by_time.children[LATEST] = _link(LATEST, names[-1], mtime, root.node)
    return root


class BlobCache:
    """Recently decoded data blobs, bounded in bytes; concurrent requests for one blob load it once."""

    def __init__(self, repo: Repository, max_bytes: int = DEFAULT_BLOB_CACHE_BYTES) -> None:
        self.repo = repo
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._loading: dict[bytes, threading.Event] = {}
        self._lock = threading.Lock()
        self.loads = 0  # blobs fetched from the repository, for tests and statistics

    def get(self, blob_id: bytes) -> bytes:
        while True:
            with self._lock:
                hit = self._blobs.get(blob_id)
                if hit is not None:
                    self._blobs.move_to_end(blob_id)
                    return hit
                waiting = self._loading.get(blob_id)
                if waiting is None:
                    done = self._loading[blob_id] = threading.Event()
                    break
            waiting.wait()  # another thread is loading it; then look again (it may have failed)
        try:
            data = self.repo.load_blob(blob_id)
            with self._lock:
                self.loads += 1
                if len(data) <= self.max_bytes:
                    self._blobs[blob_id] = data
                    self._bytes += len(data)
                    while self._bytes > self.max_bytes:
                        _, old = self._blobs.popitem(last=False)
                        self._bytes -= len(old)
            return data
        finally:
            with self._lock:
                del self._loading[blob_id]
            done.set()


class FileContent:
    """Random access to one file node's content; blob offsets are computed once, from the index."""

    def __init__(self, repo: Repository, node: Node, cache: BlobCache) -> None:
        if node.type != FILE:
            raise _oserror(errno.EISDIR if node.type == DIR else errno.EINVAL, node.name)
        self.node = node
        self._cache = cache
        self._starts = [0]  # start offset of each blob, then the end
        for blob_id in node.content:
            hit = repo.index.lookup(blob_id)
            if hit is None:
                raise IntegrityError(f"blob {blob_id.hex()} is not in the index (data missing)")
            self._starts.append(self._starts[-1] + hit[1].plain_length)

    @property
    def size(self) -> int:
        return self._starts[-1]

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at the end of the file)."""
        end = min(offset + size, self.size)
        if offset < 0 or offset >= end:
            return b""
        i = bisect.bisect_right(self._starts, offset) - 1
        parts: list[bytes] = []
        pos = offset
        while pos < end:
            start, stop = self._starts[i], self._starts[i + 1]
            blob = self._cache.get(self.node.content[i])
            parts.append(blob[pos - start : min(end, stop) - start])
            pos = stop
            i += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)


class Browser:
    """The browsable tree of one open repository; thread-safe.

    The snapshot list is read again when the virtual part is visited and ``refresh_interval`` seconds have passed
    (index objects written since are loaded then too), so new backups appear in a long-running mount.
    """

    def __init__(
        self,
        repo: Repository,
        refresh_interval: float = 60.0,
        blob_cache_bytes: int = DEFAULT_BLOB_CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        path_cache_size: int = 8192,
    ) -> None:
        self.repo = repo
        self.loader = TreeLoader(repo)
        self.blobs = BlobCache(repo, blob_cache_bytes)
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._known_index = set(repo.list_index_ids())
        self._dirs: OrderedDict[bytes, dict[bytes, Node]] = OrderedDict()  # tree ID -> entries by name
        self._paths: OrderedDict[bytes, VirtualDir | Node] = OrderedDict()
        self._path_cache_size = path_cache_size
        self._snapshots: list[Snapshot] = []
        self._root = build_layout([])
        self._refreshed = -1e18
        self.refresh(force=True)

    # ---- snapshot list -----------------------------------------------------------------------------------

    @property
    def snapshots(self) -> list[Snapshot]:
        return list(self._snapshots)

    def refresh(self, force: bool = False) -> bool:
        """Read the snapshot list again if it is due (or ``force``); returns whether the layout changed."""
        if not force and self._clock() - self._refreshed < self.refresh_interval:
            return False
        with self._refresh_lock:
            if not force and self._clock() - self._refreshed < self.refresh_interval:
                return False
            self._refreshed = self._clock()
            new_index = [i for i in self.repo.list_index_ids() if i not in self._known_index]
            if new_index:
                self.repo.index.add_files(self.repo.load_index_file(i) for i in new_index)
                self._known_index.update(new_index)
            snaps = self.repo.snapshots()
            if [s.id for s in snaps] == [s.id for s in self._snapshots] and not force:
                return False
            root = build_layout(snaps)
            with self._lock:
                self._snapshots = snaps
                self._root = root
                self._paths.clear()
            return True

    # ---- lookups -----------------------------------------------------------------------------------------

    def lookup(self, path: bytes) -> Node:
        """The node at ``path``."""
        entry = self._resolve(_normalize(path))
        return entry.node if isinstance(entry, VirtualDir) else entry

    def listdir(self, path: bytes) -> list[Node]:
        """The entries of the directory at ``path``, sorted by name."""
        entry = self._resolve(_normalize(path))
        if isinstance(entry, VirtualDir) and self.refresh():
            entry = self._resolve(_normalize(path))
        if isinstance(entry, VirtualDir):
            return [c.node if isinstance(c, VirtualDir) else c for _, c in sorted(entry.children.items())]
        if entry.type != DIR:
            raise _oserror(errno.ENOTDIR, path)
        return list(self._entries(entry).values())

    def readlink(self, path: bytes) -> bytes:
        node = self.lookup(path)
        if node.type != SYMLINK:
            raise _oserror(errno.EINVAL, path)  # as readlink(2)
        return node.target

    def open(self, node: Node) -> FileContent:
        return FileContent(self.repo, node, self.blobs)

    def read(self, path: bytes, offset: int, size: int) -> bytes:
        """Convenience for tests and one-off reads: open, read a range."""
        return self.open(self.lookup(path)).read(offset, size)

    # ---- internals ---------------------------------------------------------------------------------------

    def _resolve(self, path: bytes) -> VirtualDir | Node:
        if not path:
            self.refresh()
            with self._lock:
                return self._root
        with self._lock:
            hit = self._paths.get(path)
            if hit is not None:
                self._paths.move_to_end(path)
                return hit
        parent_path, _, name = path.rpartition(b"/")
        parent = self._resolve(parent_path)
        child: VirtualDir | Node | None
        if isinstance(parent, VirtualDir):
            child = parent.children.get(name)
        elif parent.type != DIR:
            raise _oserror(errno.ENOTDIR, path)
        else:
            child = self._entries(parent).get(name)
        if child is None and isinstance(parent, VirtualDir) and self.refresh():
            return self._resolve(path)  # a snapshot made since the last look
        if child is None:
            raise _oserror(errno.ENOENT, path)
        with self._lock:
            self._paths[path] = child
            if len(self._paths) > self._path_cache_size:
                self._paths.popitem(last=False)
        return child

    def _entries(self, node: Node) -> dict[bytes, Node]:
        if node.subtree is None:
            return {}
        with self._lock:
            hit = self._dirs.get(node.subtree)
            if hit is not None:
                self._dirs.move_to_end(node.subtree)
                return hit
        entries = self.loader.load(node.subtree).by_name()
        with self._lock:
            self._dirs[node.subtree] = entries
            if len(self._dirs) > 1024:
                self._dirs.popitem(last=False)
        return entries


def _normalize(path: bytes) -> bytes:
    return b"/".join(p for p in path.split(b"/") if p and p != b".")


def _oserror(code: int, path: bytes) -> OSError:
    """``FileNotFoundError`` and friends, with their ``errno`` set (``OSError(message)`` alone leaves it ``None``)."""
    return OSError(code, os.strerror(code), path.decode(errors="replace"))
