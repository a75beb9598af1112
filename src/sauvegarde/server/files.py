"""The served directory, touched only through directory file descriptors and never through a symbolic link.

Every path is walked one component at a time from the root with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``), objects
are opened with ``O_NOFOLLOW`` and must be regular files, and listings skip anything that is not. A symlink planted
anywhere under the root therefore reads as "not found" and is never written through. Uploads go to a temporary
file created exclusively in the target directory, are fsynced, then hard-linked to their name (``linkat`` refuses
to replace anything, symlinks included: write-once) and the temporary name is removed. Temporary files a killed
server left behind are removed at the next start (:meth:`ServedRoot.remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
import uuid
from collections.abc import Iterator, Sequence

from sauvegarde.storage.rest_names import RESTIC_TYPES, TMP_PREFIX, disk_parts, valid_rest_name

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


class NotFound(Exception):
    """The repository or object does not exist (or is not a plain file/directory)."""


class Exists(Exception):
    """The object already exists: objects are write-once."""


def _check(part: str) -> str:
    if not part or part in (".", "..") or "/" in part or "\x00" in part:
        raise ValueError(f"unsafe path component {part!r}")  # parse_target never lets one through
    return part


class ServedRoot:
    """The directory ``root`` holding repositories."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    @contextlib.contextmanager
    def directory(self, parts: Sequence[str], create: bool = False) -> Iterator[int]:
        """A file descriptor of ``root/parts...``, each level opened without following symlinks."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                _check(part)
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in _MISSING:
                        raise NotFound("/".join(parts)) from None
                    raise
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def repo_exists(self, repo: Sequence[str]) -> bool:
        try:
            with self.directory(repo):
                return True
        except NotFound:
            return False

    def create_repo(self, repo: Sequence[str]) -> None:
        for kind in RESTIC_TYPES:
            with self.directory([*repo, kind], create=True):
                pass

    def stat(self, repo: Sequence[str], kind: str, name: str) -> int:
        *dirs, leaf = disk_parts(kind, name)
        try:
            with self.directory([*repo, *dirs]) as fd:
                st = os.stat(_check(leaf), dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFound(name) from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(name)
        return st.st_size

    def open_object(self, repo: Sequence[str], kind: str, name: str) -> tuple[int, int]:
        """``(fd, size)`` of an object opened for reading; the caller closes ``fd``."""
        *dirs, leaf = disk_parts(kind, name)
        with self.directory([*repo, *dirs]) as dfd:
            try:
                fd = os.open(_check(leaf), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
            except OSError as exc:
                if exc.errno in (*_MISSING, errno.EISDIR):
                    raise NotFound(name) from None
                raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound(name)
        return fd, st.st_size

    def list(self, repo: Sequence[str], kind: str) -> list[tuple[str, int]]:
        """Names and sizes of the objects of type ``kind``; raises :class:`NotFound` without the repository."""
        if not self.repo_exists(repo):
            raise NotFound("/".join(repo))
        try:
            with self.directory([*repo, kind]) as kfd:
                if kind != "data":
                    return _files(kfd, kind, None)
                out: list[tuple[str, int]] = []
                for sub in _subdirs(kfd):
                    with contextlib.suppress(NotFound), self.directory([*repo, kind, sub]) as sfd:
                        out.extend(_files(sfd, kind, sub))
                return out
        except NotFound:
            return []

    def delete(self, repo: Sequence[str], kind: str, name: str) -> int:
        """Remove an object; returns its size."""
        *dirs, leaf = disk_parts(kind, name)
        try:
            with self.directory([*repo, *dirs]) as fd:
                st = os.stat(_check(leaf), dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    raise NotFound(name)
                os.unlink(leaf, dir_fd=fd)
        except FileNotFoundError:
            raise NotFound(name) from None
        return st.st_size

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Remove the ``.tmp-*`` regular files under the root last modified more than ``older_than`` seconds ago
        (left by a server that was killed or crashed mid-upload); returns how many. Symlinks are not followed."""
        cutoff = time.time() - older_than
        removed = 0
        with self.directory([]) as fd:
            for _dir, _dirs, files, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
                for f in files:
                    if not f.startswith(TMP_PREFIX):
                        continue
                    with contextlib.suppress(OSError):
                        st = os.stat(f, dir_fd=dfd, follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                            os.unlink(f, dir_fd=dfd)
                            removed += 1
        return removed

    def usage(self, parts: Sequence[str]) -> int:
        """Bytes in regular files under ``root/parts`` (symlinks not followed); 0 if it does not exist."""
        total = 0
        try:
            with self.directory(parts) as fd:
                for _dir, _dirs, files, dfd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
                    for f in files:
                        with contextlib.suppress(OSError):
                            st = os.stat(f, dir_fd=dfd, follow_symlinks=False)
                            if stat.S_ISREG(st.st_mode):
                                total += st.st_size
        except NotFound:
            return 0
        return total


def _subdirs(fd: int) -> list[str]:
    with os.scandir(fd) as it:
        return [e.name for e in it if e.is_dir(follow_symlinks=False) and valid_rest_name("data", e.name + e.name)]


def _files(fd: int, kind: str, sub: str | None) -> list[tuple[str, int]]:
    out = []
    with os.scandir(fd) as it:
        for e in it:
            if not valid_rest_name(kind, e.name) or (sub is not None and e.name[:2] != sub):
                continue
            with contextlib.suppress(OSError):
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    out.append((e.name, st.st_size))
    return out


class Upload:
    """A new object being received: a temporary file in its directory until :meth:`commit` links it in place."""

    def __init__(self, served: ServedRoot, repo: Sequence[str], kind: str, name: str) -> None:
        *dirs, self.leaf = disk_parts(kind, name)
        _check(self.leaf)
        if not served.repo_exists(repo):
            raise NotFound("/".join(repo))
        self._dir_cm = served.directory([*repo, *dirs], create=True)
        self.dir_fd = self._dir_cm.__enter__()
        self.tmp = f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            self.fd = os.open(
                self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.dir_fd
            )
        except BaseException:
            self._dir_cm.__exit__(None, None, None)
            raise
        self.size = 0
        self._open = True

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(chunk)

    def commit(self) -> None:
        """fsync, link to the final name (never replacing anything), fsync the directory. Raises :class:`Exists`."""
        try:
            os.fsync(self.fd)
            try:
                os.link(self.tmp, self.leaf, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False)
            except FileExistsError:
                raise Exists(self.leaf) from None
            os.fsync(self.dir_fd)
        finally:
            self.abort()

    def abort(self) -> None:
        """Remove the temporary file (idempotent)."""
        if not self._open:
            return
        self._open = False
        os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.tmp, dir_fd=self.dir_fd)
        self._dir_cm.__exit__(None, None, None)
