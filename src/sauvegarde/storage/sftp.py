"""SFTP storage (paramiko): one file per object under a root directory on an SSH server.

Write-once save: the data goes to a temporary file in the object's directory (created exclusively, mode 0600),
is flushed with the ``fsync@openssh.com`` extension when the server has it, then moved in place with the plain
SFTP v3 ``RENAME``. That request must fail when the target exists (draft-ietf-secsh-filexfer-02, 6.5), and
OpenSSH's sftp-server implements it as ``link(2)`` + ``unlink(2)``: atomic, and it never replaces an existing
object even between processes. (``posix-rename@openssh.com`` would overwrite, so it is never used.) When the
rename fails and the target exists, save raises :class:`ObjectExists`. Caveat: on a server file system without
hard links, sftp-server falls back to stat-then-rename, which leaves a tiny race between two writers of one name.

Threads: a paramiko ``SFTPClient`` must not be shared by threads, so each operation borrows one SFTP channel
from a small pool over a single SSH connection; a dropped connection is re-opened by the next operation.
Connection failures raise :class:`TransientStorageError` (for the retry wrapper); everything else is permanent.
Directories are created 0700, objects 0600.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, cast

import paramiko
from paramiko.sftp import CMD_EXTENDED

from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError, TransientStorageError
from sauvegarde.storage.base import Buffer, ObjectInfo, check_name, check_range
from sauvegarde.storage.sftp_connect import SftpLocation, connect, parse_location

OPERATION_TIMEOUT = 120.0  # seconds without any reply before an operation counts as a lost connection
TMP_PREFIX = ".tmp-"


def _is_status_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an SFTP status reply (the channel is fine) rather than a broken connection."""
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, ConnectionError | TimeoutError)
        and exc.errno in (None, errno.ENOENT, errno.EACCES)
    )


def _is_missing(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOENT


def _pieces(offset: int, length: int) -> list[tuple[int, int]]:
    """The range cut in SFTP-sized reads: paramiko's ``read`` of one large range concatenates quadratically."""
    size = paramiko.SFTPFile.MAX_REQUEST_SIZE
    return [(o, min(size, offset + length - o)) for o in range(offset, offset + length, size)]


class _ChannelPool:
    """Up to ``size`` SFTP channels over one SSH connection, lent to one thread at a time."""

    def __init__(self, location: SftpLocation, size: int) -> None:
        self.location = location
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._client: paramiko.SSHClient | None = None
        self._generation = 0
        self._idle: list[tuple[int, paramiko.SFTPClient]] = []
        self.fsync_supported = True

    def _take(self) -> tuple[int, paramiko.SFTPClient]:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                self._reset()
                self._client = connect(self.location)
                self._generation += 1
            if self._idle:
                return self._idle.pop()
            client, generation = self._client, self._generation
        assert client is not None
        sftp = client.open_sftp()
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(OPERATION_TIMEOUT)
        return generation, sftp

    def _reset(self) -> None:
        for _, sftp in self._idle:
            with contextlib.suppress(Exception):
                sftp.close()
        self._idle.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @contextlib.contextmanager
    def channel(self, what: str) -> Iterator[paramiko.SFTPClient]:
        """Borrow a channel for ``what`` (named in errors); connection failures become transient errors."""
        with self._slots:
            try:
                generation, sftp = self._take()
            except StorageError:
                raise
            except Exception as exc:
                raise self._lost(exc, what) from None
            try:
                yield sftp
            except BaseException as exc:
                if isinstance(exc, StorageError) or _is_status_error(exc):
                    self._give_back(generation, sftp)
                    raise
                with contextlib.suppress(Exception):
                    sftp.close()
                if isinstance(exc, Exception):
                    raise self._lost(exc, what) from None
                raise
            self._give_back(generation, sftp)

    def _give_back(self, generation: int, sftp: paramiko.SFTPClient) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append((generation, sftp))
                return
        with contextlib.suppress(Exception):
            sftp.close()

    def _lost(self, exc: Exception, what: str) -> StorageError:
        if isinstance(exc, paramiko.SSHException | EOFError | OSError):
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = "timed out"
            return TransientStorageError(
                f"sftp server {self.location.address}: connection lost during {what}: {reason}"
            )
        return StorageError(f"sftp server {self.location.address}: {what} failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        with self._lock:
            self._reset()


class SftpStorage:
    """Objects as files under ``location.path`` on an SFTP server. Connects on first use."""

    def __init__(self, location: SftpLocation, connections: int = 8) -> None:
        self.sftp_location = location
        self.location = str(location)
        self.root = location.path.rstrip("/") or "/"
        self._pool = _ChannelPool(location, connections)
        self._dirs: set[str] = set()

    @classmethod
    def from_location(cls, rest: str) -> SftpStorage:
        """Storage for what follows ``sftp:`` in a repository location."""
        return cls(parse_location(rest))

    def _path(self, name: str) -> str:
        return posixpath.join(self.root, check_name(name))

    # ---- directories ----------------------------------------------------------------------------------------

    def exists(self) -> bool:
        with self._pool.channel("stat of the repository directory") as sftp:
            try:
                return stat.S_ISDIR(sftp.stat(self.root).st_mode or 0)
            except OSError as exc:
                if _is_missing(exc):
                    return False
                raise self._error(exc, f"cannot stat {self.root}") from None

    def create(self) -> None:
        with self._pool.channel("creating the repository directory") as sftp:
            self._makedirs(sftp, self.root)

    def _makedirs(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        """``mkdir -p`` with mode 0700, remembering directories known to exist."""
        if directory in self._dirs or directory in ("", "/", "."):
            return
        try:
            is_dir = stat.S_ISDIR(sftp.stat(directory).st_mode or 0)
        except OSError as exc:
            if not _is_missing(exc):
                raise self._error(exc, f"cannot stat {directory}") from None
            self._makedirs(sftp, posixpath.dirname(directory))
            try:
                sftp.mkdir(directory, 0o700)
            except OSError as mkdir_exc:  # another writer may have created it meanwhile
                try:
                    is_dir = stat.S_ISDIR(sftp.stat(directory).st_mode or 0)
                except OSError:
                    is_dir = False
                if not is_dir:
                    raise self._error(mkdir_exc, f"cannot create directory {directory}") from None
            is_dir = True
        if not is_dir:
            raise StorageError(f"{self.location}: {directory} is not a directory")
        self._dirs.add(directory)

    # ---- objects --------------------------------------------------------------------------------------------

    def save(self, name: str, data: Buffer) -> None:
        path = self._path(name)
        directory, base = posixpath.split(path)
        tmp = posixpath.join(directory, f"{TMP_PREFIX}{uuid.uuid4().hex}-{base}")
        view = memoryview(data).cast("B")
        with self._pool.channel(f"save of {name}") as sftp:
            try:
                f = sftp.open(tmp, "wx")
            except OSError as exc:
                if not _is_missing(exc):
                    raise self._error(exc, f"cannot write {name}") from None
                self._makedirs(sftp, directory)
                f = sftp.open(tmp, "wx")
            try:
                try:
                    self._write(sftp, f, view)
                finally:
                    f.close()
                self._link_in_place(sftp, name, tmp, path)
            except BaseException as exc:
                if _is_status_error(exc) or isinstance(exc, StorageError):
                    with contextlib.suppress(OSError):
                        sftp.remove(tmp)
                if isinstance(exc, OSError) and _is_status_error(exc):
                    raise self._error(exc, f"cannot write {name}") from None
                raise

    def _write(self, sftp: paramiko.SFTPClient, f: paramiko.SFTPFile, view: memoryview) -> None:
        f.chmod(0o600)
        if len(view):
            # pipelined writes; the last write is synchronous, which collects every pending reply and raises
            # the first error (paramiko drops the errors of pipelined writes that are never collected)
            f.set_pipelined(True)
            f.write(view[:-1])
            f.set_pipelined(False)
            f.write(view[-1:])
        if self._pool.fsync_supported:
            try:
                cast(Any, sftp)._request(CMD_EXTENDED, "fsync@openssh.com", f.handle)
            except OSError as exc:
                if exc.errno is not None or "unsupported" not in str(exc).lower():
                    raise
                self._pool.fsync_supported = False

    def _link_in_place(self, sftp: paramiko.SFTPClient, name: str, tmp: str, path: str) -> None:
        try:
            sftp.rename(tmp, path)  # SFTP v3 RENAME: refuses an existing target (see module docstring)
        except OSError as exc:
            if not _is_status_error(exc):
                raise
            try:
                sftp.stat(path)
            except OSError:
                raise self._error(exc, f"cannot move {name} in place") from None
            raise ObjectExists(f"{name}: already exists") from None

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(name)
        with self._pool.channel(f"load of {name}") as sftp:
            try:
                f = sftp.open(path, "rb")
            except OSError as exc:
                raise self._not_found_or_error(sftp, exc, name, path, "cannot read") from None
            try:
                attrs = f.stat()
                if not stat.S_ISREG(attrs.st_mode or 0):
                    raise ObjectNotFound(f"{name}: not found")
                n = check_range(name, attrs.st_size or 0, offset, length)
                data = b"".join(f.readv(_pieces(offset, n)))
            except OSError as exc:
                if not _is_status_error(exc):
                    raise
                raise self._error(exc, f"cannot read {name}") from None
            finally:
                f.close()
        if len(data) != n:
            raise StorageError(f"{name}: short read ({len(data)} of {n} bytes)")
        return data

    def stat(self, name: str) -> ObjectInfo:
        path = self._path(name)
        with self._pool.channel(f"stat of {name}") as sftp:
            try:
                attrs = sftp.stat(path)
            except OSError as exc:
                if _is_missing(exc):
                    raise ObjectNotFound(f"{name}: not found") from None
                raise self._error(exc, f"cannot stat {name}") from None
        if not stat.S_ISREG(attrs.st_mode or 0):
            raise ObjectNotFound(f"{name}: not found")
        return ObjectInfo(name, attrs.st_size or 0)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = posixpath.join(self.root, check_name(base)) if base else self.root
        found: list[ObjectInfo] = []
        with self._pool.channel(f"listing of {prefix or 'everything'}") as sftp:
            pending = [(start, f"{base}/" if base else "")]
            while pending:
                directory, rel = pending.pop()
                for entry in self._entries(sftp, directory):
                    mode = entry.st_mode or 0
                    name = rel + entry.filename
                    if stat.S_ISDIR(mode):
                        if prefix.startswith(name + "/") or name.startswith(prefix):
                            pending.append((posixpath.join(directory, entry.filename), name + "/"))
                    elif stat.S_ISREG(mode) and not entry.filename.startswith(TMP_PREFIX) and name.startswith(prefix):
                        found.append(ObjectInfo(name, entry.st_size or 0))
        return iter(found)

    def remove_temporaries(self, older_than_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Delete the temporary files (``.tmp-``) of saves cut off by a lost connection or a killed process, last
        written more than ``older_than_s`` seconds ago (their times are the server's, the age is counted on this
        machine's clock: an hour's margin covers ordinary skew); their count and bytes. Under an exclusive lock
        only (prune)."""
        cutoff = time.time() - older_than_s
        count = size = 0
        with self._pool.channel("removal of temporary files") as sftp:
            pending = [self.root]
            while pending:
                directory = pending.pop()
                for entry in self._entries(sftp, directory):
                    mode = entry.st_mode or 0
                    path = posixpath.join(directory, entry.filename)
                    if stat.S_ISDIR(mode):
                        pending.append(path)
                    elif (
                        stat.S_ISREG(mode) and entry.filename.startswith(TMP_PREFIX) and (entry.st_mtime or 0) <= cutoff
                    ):
                        if not dry_run:
                            try:
                                sftp.remove(path)
                            except OSError as exc:
                                if _is_missing(exc):
                                    continue
                                raise self._error(exc, f"cannot remove {path}") from None
                        count += 1
                        size += entry.st_size or 0
        return count, size

    def _entries(self, sftp: paramiko.SFTPClient, directory: str) -> Sequence[paramiko.SFTPAttributes]:
        """A directory's entries with their attributes; none if it does not exist (any more)."""
        try:
            return sftp.listdir_attr(directory)
        except OSError as exc:
            if _is_missing(exc):
                return []
            raise self._error(exc, f"cannot list {directory}") from None

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._pool.channel(f"delete of {name}") as sftp:
            try:
                sftp.remove(path)
            except OSError as exc:
                raise self._not_found_or_error(sftp, exc, name, path, "cannot delete") from None

    def close(self) -> None:
        self._pool.close()

    # ---- errors ---------------------------------------------------------------------------------------------

    def _not_found_or_error(
        self, sftp: paramiko.SFTPClient, exc: OSError, name: str, path: str, what: str
    ) -> BaseException:
        """ObjectNotFound if ``path`` is missing or a directory, else the mapped error."""
        if not _is_status_error(exc):
            return exc
        if _is_missing(exc):
            return ObjectNotFound(f"{name}: not found")
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(sftp.stat(path).st_mode or 0):
                return ObjectNotFound(f"{name}: not found")
        return self._error(exc, f"{what} {name}")

    def _error(self, exc: OSError, what: str) -> StorageError:
        if exc.errno == errno.EACCES:
            return StorageError(f"{self.location}: {what}: permission denied")
        return StorageError(f"{self.location}: {what}: {exc.strerror or exc}")
