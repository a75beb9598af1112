"""Maps repository locations (URLs or paths) to storage backends."""

from __future__ import annotations

import os
from collections.abc import Callable

from sauvegarde.errors import UsageError
from sauvegarde.storage.base import Storage
from sauvegarde.storage.local import LocalStorage
from sauvegarde.storage.memory import MemoryStorage
from sauvegarde.storage.wrappers import LimitedStorage, MetricsStorage, RetryingStorage

_MEMORY: dict[str, MemoryStorage] = {}


def _memory(rest: str) -> Storage:
    # Named in-memory storages live for the process: several opens of memory:NAME see the same objects.
    return _MEMORY.setdefault(rest, MemoryStorage(f"memory:{rest}"))


def _sftp(rest: str) -> Storage:
    from sauvegarde.storage.sftp import SftpStorage  # paramiko is imported only when needed

    return SftpStorage.from_location(rest)


def _rest(rest: str) -> Storage:
    from sauvegarde.storage.rest import RestStorage  # urllib3 is imported only when needed

    return RestStorage.from_location(rest)


def _s3(rest: str) -> Storage:
    from sauvegarde.storage.s3 import S3Storage  # boto3 is imported only when needed

    return S3Storage(rest)


_SCHEMES: dict[str, Callable[[str], Storage]] = {
    "local": LocalStorage,
    "memory": _memory,
    "rest": _rest,
    "s3": _s3,
    "sftp": _sftp,
}

# Remote schemes get MetricsStorage(RetryingStorage(LimitedStorage(backend))); local and memory stay bare.
_REMOTE = {"sftp", "s3", "rest"}
REMOTE_CONNECTIONS = 8  # operations in flight per remote storage


def _wrap_remote(storage: Storage) -> Storage:
    """Retry transient errors (``SAUVEGARDE_STORAGE_RETRIES`` retries after the first try, default 5)."""
    retries = os.environ.get("SAUVEGARDE_STORAGE_RETRIES", "5")
    if not retries.isdigit():
        raise UsageError(f"SAUVEGARDE_STORAGE_RETRIES must be a whole number, not {retries!r}")
    limited = LimitedStorage(storage, REMOTE_CONNECTIONS)
    return MetricsStorage(RetryingStorage(limited, attempts=int(retries) + 1))


def open_storage(location: str) -> Storage:
    """Storage for ``location``: ``SCHEME:REST`` for a registered scheme, else a local path."""
    if not location:
        raise UsageError("empty repository location")
    scheme, sep, rest = location.partition(":")
    if sep and scheme in _SCHEMES and not location.startswith("/"):
        storage = _SCHEMES[scheme](rest)
        return _wrap_remote(storage) if scheme in _REMOTE else storage
    if sep and scheme.isalpha() and len(scheme) > 1 and rest.startswith("//"):
        raise UsageError(f"unsupported repository scheme {scheme!r} in {location!r}")
    return LocalStorage(location)
