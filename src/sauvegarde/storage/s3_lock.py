"""The Object Lock side of the S3 backend: retention on save, versions, tamper-resistant reads, purges.

On a bucket with Object Lock (which implies versioning), every object Sauvegarde writes except ``locks/`` carries a
retain-until date. An unversioned DELETE then only puts a *delete marker* on top (the object is hidden, not
destroyed), and deleting or shortening a retained version is refused. This module lets the backend:

- read through tampering: an object hidden behind a delete marker is read from its newest data version; an object
  whose name holds several data versions (someone "overwrote" it: S3 stores a new version) is read from its
  *oldest* one, since every Sauvegarde object is written once and a later version can only be foreign. The
  repository says which names to treat so (``reveal``: those no deletion log of its own names), and they are then
  listed and read as if untouched; a name that reads as missing is also looked up among versions on the spot.
  Such reads are collected in ``hidden_reads`` for the CLI to warn about;
- list hidden or overwritten objects (``hidden_objects``), for ``check``;
- extend retention (``extend_retention``), never shortening it;
- purge old versions whose retention ended (``purge_versions``), for names the caller vouches it deleted itself.

Deletions this process made are remembered so that the contract holds (a deleted object is gone for its deleter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sauvegarde.errors import StorageError, UsageError
from sauvegarde.storage.base import ObjectInfo
from sauvegarde.storage.capabilities import PurgeReport, RetentionPolicy
from sauvegarde.storage.s3_errors import error_code

LOCKS_PREFIX = "locks/"


@dataclass(frozen=True)
class Version:
    name: str
    version_id: str
    latest: bool
    marker: bool  # a delete marker, not data
    modified: datetime | None
    size: int = 0


def is_expired(retain_until: datetime | None, now: datetime) -> bool:
    """Whether a version may be deleted for good: no retention, or retention ended."""
    return retain_until is None or retain_until <= now


def authentic_version(versions: list[Version]) -> Version | None:
    """The version a reader should trust for a write-once name, or None when the current one is fine.

    Hidden (latest is a delete marker): the newest data version. Overwritten (several data versions): the
    oldest. S3 lists the versions of a key newest first.
    """
    data = [v for v in versions if not v.marker]
    if not data:
        return None
    if versions[0].marker:
        return data[0] if len(data) == 1 else data[-1]
    return data[-1] if len(data) > 1 else None


class ObjectLockOps:
    """Mixed into :class:`~sauvegarde.storage.s3.S3Storage`; see the module docstring."""

    client: Any
    bucket: str

    def key(self, name: str) -> str:
        raise NotImplementedError

    def error(self, exc: Exception, name: str | None, action: str) -> Exception:
        raise NotImplementedError

    def head(self, name: str, version: str | None = None) -> ObjectInfo:
        raise NotImplementedError

    def create_bucket(self, object_lock: bool = False) -> None:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def __init__(self) -> None:
        self.retention: RetentionPolicy | None = None
        self.hidden_reads: list[str] = []
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._deleted: set[str] = set()
        self._versioned: bool | None = None
        self._lock_config: dict[str, Any] | None = None
        self._revealed: dict[str, Version] = {}  # name -> the retained version to read and list instead
        self._ops = threading.Lock()

    # ---- bucket state ---------------------------------------------------------------------------------

    def versioning_enabled(self) -> bool:
        if self._versioned is None:
            try:
                status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            except (ClientError, BotoCoreError) as exc:
                raise self.error(exc, None, "read the versioning state of") from None
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned

    def lock_configuration(self) -> dict[str, Any]:
        if self._lock_config is None:
            try:
                resp = self.client.get_object_lock_configuration(Bucket=self.bucket)
                self._lock_config = dict(resp.get("ObjectLockConfiguration") or {})
            except ClientError as exc:
                if error_code(exc) not in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
                    raise self.error(exc, None, "read the Object Lock state of") from None
                self._lock_config = {}
            except BotoCoreError as exc:
                raise self.error(exc, None, "read the Object Lock state of") from None
        return self._lock_config

    def object_lock_enabled(self) -> bool:
        return self.lock_configuration().get("ObjectLockEnabled") == "Enabled"

    def default_retention(self) -> dict[str, Any] | None:
        """The bucket's default retention rule, if any (Sauvegarde wants none: it sets retention per object)."""
        rule: dict[str, Any] = self.lock_configuration().get("Rule") or {}
        return rule.get("DefaultRetention")

    def prepare_object_lock(self) -> None:
        """Create the bucket with Object Lock, or require that the existing bucket has it."""
        if not self.exists():
            self.create_bucket(object_lock=True)
            self._versioned = self._lock_config = None
        if not self.object_lock_enabled():
            raise UsageError(
                f"bucket {self.bucket} exists without Object Lock; it cannot be added to it here: "
                "use a new bucket (sauvegarde creates it with Object Lock) or enable Object Lock on this one first"
            )

    def set_retention(self, policy: RetentionPolicy | None) -> None:
        self.retention = policy

    def save_arguments(self, name: str) -> dict[str, Any]:
        if self.retention is None or name.startswith(LOCKS_PREFIX):
            return {}
        return {
            "ObjectLockMode": self.retention.mode.upper(),
            "ObjectLockRetainUntilDate": self.retention.until(self.clock()),
        }

    def note_saved(self, name: str) -> None:
        if self._deleted:
            with self._ops:
                self._deleted.discard(name)

    def note_deleted(self, name: str) -> None:
        with self._ops:
            self._deleted.add(name)
            self._revealed.pop(name, None)

    # ---- versions -------------------------------------------------------------------------------------

    def versions(self, prefix: str) -> Iterator[Version]:
        """Every version and delete marker under ``prefix``, newest first within each name."""
        root = self.key("x")[:-1]
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=root + prefix)
            for page in pages:
                entries = [(v, False) for v in page.get("Versions", [])]
                entries += [(m, True) for m in page.get("DeleteMarkers", [])]
                for item, marker in entries:
                    yield Version(
                        item["Key"][len(root) :],
                        str(item.get("VersionId") or "null"),
                        bool(item.get("IsLatest")),
                        marker,
                        item.get("LastModified"),
                        int(item.get("Size") or 0),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, None, "list versions in") from None

    def versions_by_name(self, prefix: str) -> dict[str, list[Version]]:
        """Versions grouped by name, newest first (the latest, then by modification time)."""
        grouped: dict[str, list[Version]] = {}
        for v in self.versions(prefix):
            grouped.setdefault(v.name, []).append(v)
        epoch = datetime.min.replace(tzinfo=UTC)
        for versions in grouped.values():
            versions.sort(key=lambda v: (v.latest, v.modified or epoch), reverse=True)
        return grouped

    def _tracked(self, name: str) -> bool:
        return not name.startswith(LOCKS_PREFIX) and name not in self._deleted

    def hidden_version(self, name: str) -> str | None:
        """For a name that reads as missing: the version to read if it is only hidden behind a delete marker."""
        if not self._tracked(name) or not self.versioning_enabled():
            return None
        versions = self.versions_by_name(name).get(name, [])
        chosen = authentic_version(versions) if versions and versions[0].marker else None
        if chosen is None:
            return None
        with self._ops:
            self.hidden_reads.append(name)
        return chosen.version_id

    def reveal(self, names: list[str]) -> None:
        """Read and list ``names`` from their authentic retained version (see :func:`authentic_version`).

        The repository calls this for objects hidden or overwritten by someone else (no deletion log names them),
        so that listings and reads see the repository as its clients left it.
        """
        if not names:
            return
        grouped = self.versions_by_name("")
        with self._ops:
            for name in names:
                chosen = authentic_version(grouped.get(name, []))
                if chosen is not None and self._tracked(name):
                    self._revealed[name] = chosen

    def revealed_version(self, name: str) -> str | None:
        """The retained version to read for ``name`` if it was revealed; counts as a hidden read."""
        with self._ops:
            chosen = self._revealed.get(name)
            if chosen is None:
                return None
            self.hidden_reads.append(name)
            return chosen.version_id

    def revealed_versions(self) -> dict[str, str]:
        """Revealed names and the version ID that stands for each (for retention upkeep; not a read)."""
        with self._ops:
            return {n: v.version_id for n, v in self._revealed.items()}

    def revealed(self, prefix: str) -> dict[str, int]:
        """Revealed names under ``prefix`` and the size of the version that stands for them."""
        with self._ops:
            return {n: v.size for n, v in self._revealed.items() if n.startswith(prefix)}

    def hidden_objects(self) -> list[str]:
        """Names (locks excluded) hidden behind a delete marker or overwritten while a data version remains."""
        out = []
        for name, versions in self.versions_by_name("").items():
            if name.startswith(LOCKS_PREFIX):
                continue
            if authentic_version(versions) is not None:
                out.append(name)
        return sorted(out)

    # ---- retention ------------------------------------------------------------------------------------

    def retain_until(self, name: str, version: str | None = None) -> datetime | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name)}
        if version:
            kwargs["VersionId"] = version
        try:
            resp = self.client.head_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, name, "stat") from None
        until: datetime | None = resp.get("ObjectLockRetainUntilDate")
        return until

    def extend_retention(self, name: str, until: datetime, version: str | None = None) -> bool:
        """Set the retain-until date of ``name`` to ``until`` unless it is already later; True if changed."""
        if self.retention is None:
            raise StorageError(f"{name}: this repository has no retention policy")
        current = self.retain_until(name, version)
        if current is not None and current >= until:
            return False
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key(name),
            "Retention": {"Mode": self.retention.mode.upper(), "RetainUntilDate": until},
        }
        if version:
            kwargs["VersionId"] = version
        try:
            self.client.put_object_retention(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, name, "extend the retention of") from None
        return True

    def purge_versions(self, may_purge: Callable[[str], bool], prefix: str = "") -> PurgeReport:
        """Delete for good the versions of deleted names whose retention ended.

        Only names whose latest version is a delete marker and for which ``may_purge`` says yes (names the
        repository logged as deleted by itself, and locks) are touched; the markers go once no data is left.
        """
        report = PurgeReport()
        now = self.clock()
        for name, versions in self.versions_by_name(prefix).items():
            if not versions[0].marker or not may_purge(name):
                continue
            left = 0
            for v in versions:
                if v.marker:
                    continue
                if name.startswith(LOCKS_PREFIX) or is_expired(self.retain_until(name, v.version_id), now):
                    self._delete_version(name, v.version_id)
                    report.versions_purged += 1
                else:
                    left += 1
            if left:
                report.versions_waiting += left
                report.names_waiting.append(name)
                continue
            for v in versions:
                if v.marker:
                    self._delete_version(name, v.version_id)
                    report.markers_purged += 1
        return report

    def _delete_version(self, name: str, version: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name), VersionId=version)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, name, "delete an old version of") from None
