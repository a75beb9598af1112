"""Local directory storage: one file per object, written to a temporary file, fsynced, then linked in place.
``save_file`` links in a temporary file the caller wrote itself (the repository spools packs there).

``os.link`` refuses to replace an existing name, which makes ``save`` atomic and write-once even between
processes; the temporary file lives in the same directory so the link never crosses file systems. An object
leaves the page cache once it is durable (util.pagecache.drop_behind): a backup writing gigabytes of packs does
not push out what the machine was using, and its writes keep reusing the same pages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError
from sauvegarde.storage.base import Buffer, ObjectInfo, check_name, check_range
from sauvegarde.util.pagecache import WILLNEED, drop_behind, fetch_ahead

# files kept open per thread by load_unchanging
_OPEN_PER_THREAD = 8


class LocalStorage:
    """Objects as files under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.location = self.root
        self._dirs: set[str] = set()
        self._dirs_lock = threading.Lock()
        # per thread: name -> (descriptor, size), most recently read last; a thread only touches its own
        self._open: dict[int, OrderedDict[str, tuple[int, int]]] = {}

    def _path(self, name: str) -> str:
        return os.path.join(self.root, check_name(name))

    def exists(self) -> bool:
        return os.path.isdir(self.root)

    def create(self) -> None:
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.root}: {exc.strerror}") from None

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._dirs:
            return
        if directory != self.root:
            # makedirs applies ``mode`` to the last directory only: create each level under the root ourselves
            self._ensure_dir(os.path.dirname(directory))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with self._dirs_lock:
            self._dirs.add(directory)

    def save(self, name: str, data: Buffer) -> None:
        path = self._path(name)
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-{threading.get_ident()}-{os.path.basename(path)}")
        try:
            self._ensure_dir(directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                drop_behind(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            finally:
                os.close(fd)
            try:
                _link_in_place(name, tmp, path)
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise StorageError(f"cannot write {name} in {self.root}: {exc.strerror}") from None

    @property
    def spool_dir(self) -> str:
        """Where the repository may write an object before :meth:`save_file` (the root: same file system, and
        ``.tmp-`` names are never listed)."""
        return self.root

    def save_file(self, name: str, source: str) -> None:
        """Store the file at ``source`` (named ``.tmp-...`` in :attr:`spool_dir`) as ``name``, atomic and
        write-once as :meth:`save`: made durable, then linked into place. The caller removes ``source``."""
        path = self._path(name)
        directory = os.path.dirname(path)
        try:
            self._ensure_dir(directory)
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
                drop_behind(fd)
            finally:
                os.close(fd)
            _link_in_place(name, source, path)
        except OSError as exc:
            raise StorageError(f"cannot write {name} in {self.root}: {exc.strerror}") from None

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(name)
        try:
            with open(path, "rb", buffering=0) as f:
                size = os.fstat(f.fileno()).st_size
                n = check_range(name, size, offset, length)
                data = os.pread(f.fileno(), n, offset)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(f"{name}: not found") from None
        except OSError as exc:
            raise StorageError(f"cannot read {name}: {exc.strerror}") from None
        if len(data) != n:
            raise StorageError(f"{name}: short read ({len(data)} of {n} bytes)")
        return data

    def load_unchanging(self, name: str, offset: int, length: int) -> bytes:
        """:meth:`load` of a range of an object whose name fixes its content (a pack is named by its hash): the file
        stays open for the calling thread's next reads (its last 8 files), saving an open, a stat and a close per
        read; walking a snapshot reads its trees one small range at a time. An object deleted meanwhile stays
        readable through its open file, with the content its name implies."""
        files = self._open.get(threading.get_ident())
        if files is None:
            files = self._open.setdefault(threading.get_ident(), OrderedDict())
        hit = files.get(name)
        if hit is None:
            hit = files[name] = self._open_object(name)
            while len(files) > _OPEN_PER_THREAD:
                _close(files.popitem(last=False)[1][0])
        else:
            files.move_to_end(name)
        fd, size = hit
        n = check_range(name, size, offset, length)
        try:
            data = os.pread(fd, n, offset)
        except OSError as exc:
            raise StorageError(f"cannot read {name}: {exc.strerror}") from None
        if len(data) != n:
            raise StorageError(f"{name}: short read ({len(data)} of {n} bytes)")
        return data

    def fetch_ahead(self, name: str) -> None:
        """Ask the kernel to start reading an object into the page cache and return at once (a hint: nothing
        happens if it cannot be opened, or the platform has no such advice; a name outside the naming scheme is
        refused as everywhere). A reader that finishes one pack before asking for the next otherwise leaves the
        disk idle while it works."""
        path = self._path(name)
        if WILLNEED is None:
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fetch_ahead(fd)
        finally:
            _close(fd)

    def _open_object(self, name: str) -> tuple[int, int]:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(f"{name}: not found") from None
        except OSError as exc:
            raise StorageError(f"cannot read {name}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
        except OSError as exc:
            _close(fd)
            raise StorageError(f"cannot read {name}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):  # a directory such as ``data/ab`` opens, but is not an object
            _close(fd)
            raise ObjectNotFound(f"{name}: not found")
        return fd, st.st_size

    def stat(self, name: str) -> ObjectInfo:
        try:
            st = os.stat(self._path(name))
        except FileNotFoundError:
            raise ObjectNotFound(f"{name}: not found") from None
        except OSError as exc:
            raise StorageError(f"cannot stat {name}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):  # a directory such as ``data/ab`` is not an object
            raise ObjectNotFound(f"{name}: not found")
        return ObjectInfo(name, st.st_size)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = os.path.join(self.root, base) if base else self.root
        for dirpath, _dirs, files in os.walk(start):
            rel = os.path.relpath(dirpath, self.root)
            for fname in files:
                if fname.startswith(".tmp-"):
                    continue
                name = fname if rel == "." else f"{rel}/{fname}"
                if not name.startswith(prefix):
                    continue
                try:
                    size = os.stat(os.path.join(dirpath, fname)).st_size
                except FileNotFoundError:
                    continue
                yield ObjectInfo(name, size)

    def remove_temporaries(self, older_than_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Delete the ``.tmp-`` files last written more than ``older_than_s`` seconds ago: what a process killed
        while saving or spooling left behind (no listing shows them). Returns their count and bytes. Call
        under an exclusive lock (prune does), so that no backup is writing them."""
        cutoff = time.time() - older_than_s
        count = size = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for fname in files:
                if not fname.startswith(".tmp-"):
                    continue
                path = os.path.join(dirpath, fname)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or st.st_mtime > cutoff:
                        continue
                    if not dry_run:
                        os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    rel = os.path.relpath(path, self.root)
                    raise StorageError(f"cannot remove the temporary file {rel}: {exc.strerror}") from None
                count += 1
                size += st.st_size
        return count, size

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(f"{name}: not found") from None
        except OSError as exc:
            raise StorageError(f"cannot delete {name}: {exc.strerror}") from None

    # other processes see what this one stores: a forked copy may write to the repository (see engine.backup)
    shared_by_processes = True

    def after_fork(self) -> None:
        """In a forked child: fresh locks (a thread the child does not have may have held one), and none of the
        parent's cached descriptors (kept per thread ID, which the child's threads may reuse)."""
        self._dirs_lock = threading.Lock()
        self.close()

    def close(self) -> None:
        """Close the files :meth:`load_unchanging` keeps open (call when no thread reads any more)."""
        for files in list(self._open.values()):
            while files:
                _close(files.popitem()[1][0])
        self._open.clear()

    def __del__(self) -> None:
        self.close()


def _link_in_place(name: str, source: str, path: str) -> None:
    """Give the durable file ``source`` its object name ``path``: ``link`` refuses an existing name, which makes
    saving write-once even between processes; then the directory entry is made durable."""
    try:
        os.link(source, path)
    except FileExistsError:
        raise ObjectExists(f"{name}: already exists") from None
    _fsync_dir(os.path.dirname(path))


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
