"""Restore: recreate a snapshot's tree under a target directory, exactly.

Entries land at ``TARGET/<original absolute path>``. The calling thread walks the snapshot and creates directories,
links and special files; regular files are written by a pool of workers, each fetching its blobs through a shared
blob pool a few blobs ahead, so one large file still keeps several cores busy. Every blob is authenticated and
checked against its ID before a byte is written. Hardlinks are made after all files exist; directory metadata
(modes and times) is applied last, deepest first, so that writing into a directory does not disturb its mtime.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sauvegarde.engine.events import Counters, FileError, FileWarning, Reporter, ignore
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node, Repository, Snapshot
from sauvegarde.repository.tree import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, SOCKET, SYMLINK
from sauvegarde.source import Excluder
from sauvegarde.source.metadata import gid_for, uid_for

_SPARSE_BLOCK = 64 * 1024
_PREFETCH = 8


@dataclass
class RestoreOptions:
    target: str
    include: Excluder = field(default_factory=Excluder)
    exclude: Excluder = field(default_factory=Excluder)
    path: str | None = None
    verify: bool = False
    workers: int = max(2, min(8, (os.cpu_count() or 2) * 2))


@dataclass
class RestoreSummary:
    files: int = 0
    dirs: int = 0
    other: int = 0
    bytes: int = 0
    verified: int = 0
    duration_s: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _OpenDir:
    path: bytes
    node: Node
    made: bool = False


class Restore:
    """One restore run; create, then call :meth:`run` once."""

    def __init__(
        self, repo: Repository, snapshot: Snapshot, options: RestoreOptions, reporter: Reporter = ignore
    ) -> None:
        self.repo = repo
        self.snap = snapshot
        self.opts = options
        self.report = reporter
        self.counters = Counters()
        self.summary = RestoreSummary()
        self._lock = threading.Lock()
        self._trees = TreeLoader(repo)
        self._is_root = os.geteuid() == 0
        self._target = os.fsencode(os.path.abspath(options.target))
        self._dirs_made: list[tuple[bytes, Node]] = []
        self._links: dict[tuple[int, int], bytes] = {}
        self._deferred_links: list[tuple[bytes, bytes, Node]] = []
        self._written: list[tuple[bytes, Node]] = []
        self._blob_pool: ThreadPoolExecutor | None = None

    def run(self) -> RestoreSummary:
        start = time.monotonic()
        root = bytes.fromhex(self.snap.tree)
        prefix = b""
        node: Node | None = None
        if self.opts.path and self.opts.path.strip("/"):
            node, _ = resolve(self._trees, root, self.opts.path)
            prefix = os.fsencode("/" + self.opts.path.strip("/"))
        os.makedirs(self._target, exist_ok=True)
        self._blob_pool = ThreadPoolExecutor(self.opts.workers, thread_name_prefix="blob")
        files = ThreadPoolExecutor(self.opts.workers, thread_name_prefix="restore")
        futures: list[Future[None]] = []
        try:
            if node is None:
                self._restore_tree(root, b"", [], files, futures)
            else:
                parent_dir = os.path.dirname(prefix)
                os.makedirs(self._target + parent_dir, exist_ok=True)
                self._restore_entry(prefix, node, [], files, futures)
            for fut in futures:
                fut.result()
        finally:
            files.shutdown(wait=True)
            self._blob_pool.shutdown(wait=True)
        self._make_deferred_links()
        for path, dnode in reversed(self._dirs_made):
            self._apply_metadata(path, dnode)
        if self.opts.verify:
            self._verify()
        self.summary.duration_s = round(time.monotonic() - start, 3)
        return self.summary

    # ---- walking --------------------------------------------------------------------------------------

    def _restore_tree(
        self,
        tree_id: bytes,
        prefix: bytes,
        stack: list[_OpenDir],
        pool: ThreadPoolExecutor,
        futures: list[Future[None]],
    ) -> None:
        try:
            tree = self._trees.load(tree_id)
        except SauvegardeError as exc:
            self._error(prefix or b"/", str(exc))
            return
        for node in tree.nodes:
            self._restore_entry(prefix + b"/" + node.name, node, stack, pool, futures)

    def _selected(self, path: bytes) -> bool:
        return not self.opts.include or self.opts.include.excluded(path)

    def _restore_entry(
        self, path: bytes, node: Node, stack: list[_OpenDir], pool: ThreadPoolExecutor, futures: list[Future[None]]
    ) -> None:
        if self.opts.exclude and self.opts.exclude.excluded(path):
            return
        selected = self._selected(path)
        if node.type == DIR:
            stack.append(_OpenDir(path, node))
            if selected:
                self._make_dirs(stack)
            if node.subtree is not None:
                self._restore_tree(node.subtree, path, stack, pool, futures)
            stack.pop()
            return
        if not selected:
            return
        self._make_dirs(stack)
        out = self._target + path
        if node.type == FILE:
            key = (node.dev, node.inode)
            if node.nlink > 1 and node.inode:
                first = self._links.get(key)
                if first is not None:
                    self._deferred_links.append((out, first, node))
                    return
                self._links[key] = out
            futures.append(pool.submit(self._write_file, out, node))
            return
        try:
            _remove_existing(out)
            if node.type == SYMLINK:
                os.symlink(node.target, out)
            elif node.type == FIFO:
                os.mkfifo(out, 0o600)
            elif node.type in (CHARDEV, BLOCKDEV):
                kind = stat.S_IFCHR if node.type == CHARDEV else stat.S_IFBLK
                os.mknod(out, 0o600 | kind, node.rdev)
            elif node.type == SOCKET:
                self._warn(path, "sockets are not restored")
                return
        except OSError as exc:
            self._error(path, exc.strerror or str(exc))
            return
        self._apply_metadata(out, node)
        with self._lock:
            self.summary.other += 1
        self.counters.add(files=1)

    def _make_dirs(self, stack: list[_OpenDir]) -> None:
        """Create the directories on the stack that do not exist yet (a directory is made only when needed)."""
        for d in stack:
            if d.made:
                continue
            d.made = True
            path, node = d.path, d.node
            out = self._target + path
            try:
                os.mkdir(out, 0o700)
            except FileExistsError:
                if not os.path.isdir(out) or os.path.islink(out):
                    _remove_existing(out)
                    os.mkdir(out, 0o700)
            except OSError as exc:
                self._error(path, exc.strerror or str(exc))
                continue
            self._dirs_made.append((out, node))
            self.summary.dirs += 1

    # ---- files ----------------------------------------------------------------------------------------

    def _blobs(self, content: list[bytes]) -> Iterator[bytes]:
        assert self._blob_pool is not None
        window: collections.deque[Future[bytes]] = collections.deque()
        it = iter(content)
        for blob_id in it:
            window.append(self._blob_pool.submit(self.repo.load_blob, blob_id))
            if len(window) >= _PREFETCH:
                break
        while window:
            data = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(self._blob_pool.submit(self.repo.load_blob, nxt))
            yield data

    def _write_file(self, out: bytes, node: Node) -> None:
        try:
            fd = _create(out)
        except OSError as exc:
            self._error(out[len(self._target) :], exc.strerror or str(exc))
            return
        written = 0
        try:
            with os.fdopen(fd, "wb", buffering=0) as f:
                for data in self._blobs(node.content):
                    if node.sparse:
                        _write_sparse(f, data)
                    else:
                        f.write(data)
                    written += len(data)
                    self.counters.add(nbytes=len(data))
                f.truncate(written)
        except (OSError, SauvegardeError) as exc:
            msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._error(out[len(self._target) :], f"{msg}; the file is incomplete")
            with contextlib.suppress(OSError):
                os.unlink(out)
            return
        if written != node.size:
            self._warn(out[len(self._target) :], f"restored {written} bytes, snapshot says {node.size}")
        self._apply_metadata(out, node)
        with self._lock:
            self.summary.files += 1
            self.summary.bytes += written
            self._written.append((out, node))
        self.counters.add(files=1)

    def _make_deferred_links(self) -> None:
        for out, first, node in self._deferred_links:
            try:
                _remove_existing(out)
                os.link(first, out)
            except OSError as exc:
                self._error(out[len(self._target) :], f"hardlink: {exc.strerror or exc}")
                continue
            with self._lock:
                self.summary.files += 1
            self.counters.add(files=1)
            del node

    # ---- metadata -------------------------------------------------------------------------------------

    def _apply_metadata(self, out: bytes, node: Node) -> None:
        path = out[len(self._target) :]
        is_link = node.type == SYMLINK
        if self._is_root:
            try:
                os.lchown(out, uid_for(node.user, node.uid), gid_for(node.group, node.gid))
            except OSError as exc:
                self._warn(path, f"cannot set owner: {exc.strerror}")
        for name, value in node.xattrs.items():
            try:
                os.setxattr(out, name, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM) or name.startswith(b"user."):
                    self._warn(path, f"cannot set xattr {os.fsdecode(name)}: {exc.strerror}")
        if not is_link:
            try:
                os.chmod(out, node.mode)
            except OSError as exc:
                self._warn(path, f"cannot set mode: {exc.strerror}")
        try:
            os.utime(out, ns=(node.atime_ns, node.mtime_ns), follow_symlinks=False)
        except OSError as exc:
            self._warn(path, f"cannot set times: {exc.strerror}")

    # ---- verification ---------------------------------------------------------------------------------

    def _verify(self) -> None:
        for out, node in self._written:
            try:
                with open(out, "rb") as f:
                    for blob_id in node.content:
                        hit = self.repo.index.lookup(blob_id)
                        if hit is None:
                            raise SauvegardeError(f"blob {blob_id.hex()} missing from index")
                        if self.repo.blob_id(f.read(hit[1].plain_length)) != blob_id:
                            raise SauvegardeError("content differs from the snapshot")
                    if f.read(1):
                        raise SauvegardeError("file is longer than in the snapshot")
            except (OSError, SauvegardeError) as exc:
                self._error(out[len(self._target) :], f"verify: {exc}")
                continue
            self.summary.verified += 1

    # ---- reporting ------------------------------------------------------------------------------------

    def _error(self, path: bytes, msg: str) -> None:
        text = os.fsdecode(path)
        with self._lock:
            self.summary.errors.append({"path": text, "error": msg})
        self.report(FileError(text, msg))

    def _warn(self, path: bytes, msg: str) -> None:
        text = os.fsdecode(path)
        with self._lock:
            self.summary.warnings.append({"path": text, "warning": msg})
        self.report(FileWarning(text, msg))


def _create(out: bytes) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(out, flags, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ETXTBSY):
            raise
    _remove_existing(out)
    return os.open(out, flags, 0o600)


def _remove_existing(out: bytes) -> None:
    """Clear the way for a new entry; never follows a symlink."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(out)
    else:
        os.unlink(out)


def _write_sparse(f: object, data: bytes) -> None:
    """Write ``data`` at the current offset, seeking over whole zero blocks instead of writing them."""
    assert hasattr(f, "write") and hasattr(f, "seek")
    view = memoryview(data)
    zero = bytes(_SPARSE_BLOCK)
    for i in range(0, len(view), _SPARSE_BLOCK):
        block = view[i : i + _SPARSE_BLOCK]
        if block == zero[: len(block)]:
            f.seek(len(block), os.SEEK_CUR)
        else:
            f.write(block)
