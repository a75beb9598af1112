"""In-memory storage that enforces the contract strictly; for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from sauvegarde.errors import ObjectExists, ObjectNotFound
from sauvegarde.storage.base import Buffer, ObjectInfo, check_name, check_range


class MemoryStorage:
    """Objects in a dict. ``location`` is ``memory:NAME``."""

    def __init__(self, location: str = "memory:") -> None:
        self.location = location
        self.objects: dict[str, bytes] = {}
        self._created = False
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self._created

    def create(self) -> None:
        self._created = True

    def save(self, name: str, data: Buffer) -> None:
        check_name(name)
        with self._lock:
            if name in self.objects:
                raise ObjectExists(f"{name}: already exists")
            self.objects[name] = bytes(data)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        check_name(name)
        with self._lock:
            data = self.objects.get(name)
        if data is None:
            raise ObjectNotFound(f"{name}: not found")
        n = check_range(name, len(data), offset, length)
        return data[offset : offset + n]

    def stat(self, name: str) -> ObjectInfo:
        check_name(name)
        with self._lock:
            data = self.objects.get(name)
        if data is None:
            raise ObjectNotFound(f"{name}: not found")
        return ObjectInfo(name, len(data))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = [(k, len(v)) for k, v in self.objects.items() if k.startswith(prefix)]
        for name, size in items:
            yield ObjectInfo(name, size)

    def delete(self, name: str) -> None:
        check_name(name)
        with self._lock:
            if self.objects.pop(name, None) is None:
                raise ObjectNotFound(f"{name}: not found")

    def close(self) -> None:
        pass
