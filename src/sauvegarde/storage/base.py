"""The storage contract every backend honours.

Names are relative paths of ``/``-separated components made of ``[A-Za-z0-9._-]``, such as ``config``,
``keys/ab12...`` or ``data/ab/ab12...``.

- ``save(name, data)`` is atomic and write-once: readers see either nothing or all of ``data``; saving a name
  that exists raises :class:`ObjectExists` and leaves the stored object untouched.
- ``load(name, offset, length)`` returns exactly the requested range (``length=None``: to the end) of an object
  previously saved; a range past the end raises :class:`StorageError`. Read-after-write is guaranteed.
- ``stat(name)`` gives the size; ``list(prefix)`` yields every object whose name starts with ``prefix``
  (a directory prefix ending in ``/``), in no particular order.
- ``delete(name)`` removes an object; deleting a missing object raises :class:`ObjectNotFound`.
- Missing objects raise :class:`ObjectNotFound` from ``load`` and ``stat``.
- Implementations are safe to call from several threads at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sauvegarde.errors import StorageError

_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int


class Storage(Protocol):
    """Bytes by name. See the module docstring for the contract."""

    location: str

    def exists(self) -> bool:
        """Whether the storage location itself exists (a repository may live there)."""
        ...

    def create(self) -> None:
        """Create the storage location (directory, bucket...) if missing."""
        ...

    def save(self, name: str, data: Buffer) -> None: ...

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def stat(self, name: str) -> ObjectInfo: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, name: str) -> None: ...

    def close(self) -> None: ...


def check_name(name: str) -> str:
    """Reject names that could escape the storage root or are not in the naming scheme."""
    if not _NAME.match(name) or any(part in (".", "..") for part in name.split("/")):
        raise StorageError(f"invalid object name {name!r}")
    return name


def check_range(name: str, size: int, offset: int, length: int | None) -> int:
    """Validate a byte range against an object's size; returns the effective length."""
    if offset < 0 or (length is not None and length < 0):
        raise StorageError(f"{name}: negative range")
    end = size if length is None else offset + length
    if offset > size or end > size:
        raise StorageError(f"{name}: range {offset}+{end - offset} past end of object ({size} bytes)")
    return end - offset
