"""Maps repository locations (URLs or paths) to storage backends."""

from __future__ import annotations

from collections.abc import Callable

from sauvegarde.errors import UsageError
from sauvegarde.storage.base import Storage
from sauvegarde.storage.local import LocalStorage
from sauvegarde.storage.memory import MemoryStorage

_MEMORY: dict[str, MemoryStorage] = {}


def _memory(rest: str) -> Storage:
    # Named in-memory storages live for the process: several opens of memory:NAME see the same objects.
    return _MEMORY.setdefault(rest, MemoryStorage(f"memory:{rest}"))


def _s3(rest: str) -> Storage:
    from sauvegarde.storage.s3 import S3Storage  # boto3 is imported only when needed

    return S3Storage(rest)


_SCHEMES: dict[str, Callable[[str], Storage]] = {
    "local": LocalStorage,
    "memory": _memory,
    "s3": _s3,
}


def open_storage(location: str) -> Storage:
    """Storage for ``location``: ``SCHEME:REST`` for a registered scheme, else a local path."""
    if not location:
        raise UsageError("empty repository location")
    scheme, sep, rest = location.partition(":")
    if sep and scheme in _SCHEMES and not location.startswith("/"):
        return _SCHEMES[scheme](rest)
    if sep and scheme.isalpha() and len(scheme) > 1 and rest.startswith("//"):
        raise UsageError(f"unsupported repository scheme {scheme!r} in {location!r}")
    return LocalStorage(location)
