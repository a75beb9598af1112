"""FUSE operations over a :class:`~sauvegarde.engine.browse.Browser`, in the shape ``mfusepy`` calls them.

Paths arrive as text decoded from bytes with ``surrogateescape`` (mfusepy's default), so any name round-trips.
Errors are raised as :class:`OSError` with an ``errno``; repository failures become ``EIO`` and are logged.
Plain class on purpose: mfusepy only looks methods up by name, so this module needs no FUSE library to import.
"""

from __future__ import annotations

import errno
import itertools
import logging
import stat
import threading
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from sauvegarde.engine.browse import Browser, FileContent
from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node

log = logging.getLogger("sauvegarde.mount")

_P = ParamSpec("_P")
_R = TypeVar("_R")

_FORMAT = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
    "socket": stat.S_IFSOCK,
}
_WRITE_FLAGS = 0o3  # O_WRONLY | O_RDWR


def _fs(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _text(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def _io_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn repository errors into EIO (logged once), leaving OSErrors with their errno."""

    @wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except SauvegardeError as exc:
            log.error("sauvegarde mount: %s: %s", func.__name__, exc)
            raise OSError(errno.EIO, str(exc)) from None

    return wrapper


def attributes(node: Node) -> dict[str, int]:
    """``stat`` fields for a node (times in nanoseconds: the operations set ``use_ns``)."""
    size = node.size if node.type == "file" else len(node.target) if node.type == "symlink" else 0
    return {
        "st_mode": _FORMAT[node.type] | (node.mode & 0o7777),
        "st_nlink": 2 if node.type == "dir" else max(1, node.nlink),
        "st_uid": node.uid,
        "st_gid": node.gid,
        "st_size": size,
        "st_blocks": (size + 511) // 512,
        "st_blksize": 128 * 1024,
        "st_rdev": node.rdev,
        "st_mtime": node.mtime_ns,
        "st_atime": node.atime_ns or node.mtime_ns,
        "st_ctime": node.ctime_ns or node.mtime_ns,
    }


class SnapshotFS:
    """The read-only file system; thread-safe (libfuse calls it from several threads)."""

    use_ns = True  # mfusepy: times are integer nanoseconds

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self._open: dict[int, FileContent] = {}
        self._handles = itertools.count(1)
        self._lock = threading.Lock()
        self.mounted = False  # set once libfuse has mounted the file system and starts serving

    def init(self, path: str) -> None:
        self.mounted = True

    @_io_errors
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        if fh is not None:
            with self._lock:
                content = self._open.get(fh)
            if content is not None:
                return attributes(content.node)
        return attributes(self.browser.lookup(_fs(path)))

    @_io_errors
    def readdir(self, path: str, fh: int) -> list[str | tuple[str, dict[str, int], int]]:
        entries: list[str | tuple[str, dict[str, int], int]] = [".", ".."]
        for node in self.browser.listdir(_fs(path)):
            entries.append((_text(node.name), {"st_mode": _FORMAT[node.type]}, 0))
        return entries

    @_io_errors
    def readlink(self, path: str) -> str:
        return _text(self.browser.readlink(_fs(path)))

    @_io_errors
    def open(self, path: str, flags: int) -> int:
        if flags & _WRITE_FLAGS:
            raise OSError(errno.EROFS, "read-only file system")
        content = self.browser.open(self.browser.lookup(_fs(path)))
        with self._lock:
            fh = next(self._handles)
            self._open[fh] = content
        return fh

    @_io_errors
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self._lock:
            content = self._open.get(fh)
        if content is None:
            raise OSError(errno.EBADF, "file not open")
        return content.read(offset, size)

    def release(self, path: str, fh: int) -> int:
        with self._lock:
            self._open.pop(fh, None)
        return 0

    @_io_errors
    def listxattr(self, path: str) -> list[str]:
        return [_text(name) for name in sorted(self.browser.lookup(_fs(path)).xattrs)]

    @_io_errors
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        value = self.browser.lookup(_fs(path)).xattrs.get(_fs(name))
        if value is None:
            raise OSError(errno.ENODATA, "no such attribute")
        return value

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}
