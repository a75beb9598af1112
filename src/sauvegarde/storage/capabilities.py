"""Optional storage capabilities beyond the base contract: Object Lock (retention, versions, tamper evidence), and
the clean-up of temporary files left by interrupted saves.

Only some backends have them (Object Lock: S3; clean-up: local and SFTP). Callers ask :func:`object_lock_storage`
or :func:`temporary_cleanup`, which look through wrappers (anything with an ``inner`` storage) for a backend that
implements :class:`ObjectLockStorage` or :class:`TemporaryCleanup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sauvegarde.errors import StorageError, UsageError

MODES = ("compliance", "governance")


class ObjectLocked(StorageError):
    """The storage refused to delete or change an object because its retention is in force."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Retain every object but locks for ``days`` days from its writing (or its last extension)."""

    days: int
    mode: str = "compliance"

    def __post_init__(self) -> None:
        if self.days < 1:
            raise UsageError("retention must be at least 1 day")
        if self.mode not in MODES:
            raise UsageError(f"invalid lock mode {self.mode!r}: expected compliance or governance")

    def until(self, now: datetime) -> datetime:
        return now + timedelta(days=self.days)

    def as_dict(self) -> dict[str, object]:
        return {"days": self.days, "mode": self.mode}

    @classmethod
    def from_dict(cls, value: Any) -> RetentionPolicy | None:
        if not isinstance(value, dict) or "days" not in value:
            return None
        return cls(int(value["days"]), str(value.get("mode", "compliance")))


@dataclass
class PurgeReport:
    versions_purged: int = 0
    markers_purged: int = 0
    versions_waiting: int = 0  # retention still in force: a later prune purges them
    names_waiting: list[str] = field(default_factory=list)


@runtime_checkable
class ObjectLockStorage(Protocol):
    """A storage that keeps versions and can retain them (S3 with Object Lock)."""

    retention: RetentionPolicy | None
    hidden_reads: list[str]  # names read from a retained version because the current one was hidden or replaced
    clock: Callable[[], datetime]

    def set_retention(self, policy: RetentionPolicy | None) -> None: ...

    def prepare_object_lock(self) -> None: ...

    def object_lock_enabled(self) -> bool: ...

    def versioning_enabled(self) -> bool: ...

    def default_retention(self) -> dict[str, Any] | None: ...

    def hidden_objects(self) -> list[str]: ...

    def reveal(self, names: list[str]) -> None: ...

    def revealed_versions(self) -> dict[str, str]: ...

    def list_detailed(self, prefix: str) -> Iterator[tuple[str, int, Any]]: ...

    def retain_until(self, name: str, version: str | None = None) -> datetime | None: ...

    def extend_retention(self, name: str, until: datetime, version: str | None = None) -> bool: ...

    def purge_versions(self, may_purge: Callable[[str], bool], prefix: str = "") -> PurgeReport: ...


def object_lock_storage(storage: object) -> ObjectLockStorage | None:
    """The Object Lock capable backend behind ``storage`` (looking through wrappers), or None."""
    found = _behind_wrappers(storage, ObjectLockStorage)
    return found if isinstance(found, ObjectLockStorage) else None


@runtime_checkable
class TemporaryCleanup(Protocol):
    """A backend whose interrupted saves leave temporary files it can find and remove (local, SFTP)."""

    def remove_temporaries(self, older_than_s: float, dry_run: bool = False) -> tuple[int, int]: ...


def temporary_cleanup(storage: object) -> TemporaryCleanup | None:
    """The backend behind ``storage`` (looking through wrappers) that can remove its stale temporary files."""
    found = _behind_wrappers(storage, TemporaryCleanup)
    return found if isinstance(found, TemporaryCleanup) else None


def _behind_wrappers(storage: object, capability: type) -> object | None:
    """``storage`` or the first storage it wraps (through ``inner``) that is an instance of ``capability``."""
    seen = 0
    while storage is not None and seen < 16:
        if isinstance(storage, capability):
            return storage
        storage = getattr(storage, "inner", None)
        seen += 1
    return None
