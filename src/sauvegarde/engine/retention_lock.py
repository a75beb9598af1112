"""Object Lock upkeep for immutable repositories: extend retention, purge expired versions, find tampering.

(``engine/retention.py`` is the forget policy; this module is about the storage's retain-until dates.)

- :func:`extend_retention`: every object the repository still needs (config, keys, index, snapshots, deletion
  logs, and the packs holding blobs that snapshots reference) gets its retain-until date pushed to now + N days
  once less than N/2 days remain, so protection never lapses silently. Objects written less than N/2 days ago are
  skipped from the listing alone (their date is at least write time + N days); older ones cost one HEAD each.
- :func:`purge_expired`: versions of objects the repository itself deleted (named in an authentic deletion log)
  are deleted for good once their retention ended; until then they are reported as waiting.
- :func:`find_tampering`: objects hidden behind a delete marker (or overwritten) that no deletion log names, and
  deletion logs that do not authenticate.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sauvegarde.engine.referenced import BlobSet, referenced_blobs
from sauvegarde.errors import UsageError
from sauvegarde.repository import Repository, deletions, layout
from sauvegarde.repository.config import RepoConfig
from sauvegarde.storage.capabilities import ObjectLockStorage, PurgeReport, RetentionPolicy, object_lock_storage


@dataclass
class RetentionReport:
    checked: int = 0  # objects the repository still needs
    recent: int = 0  # skipped: written less than N/2 days ago
    hidden: int = 0  # hidden or overwritten by someone else: kept up through their original version
    extended: int = 0
    purge: PurgeReport = field(default_factory=PurgeReport)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "recent": self.recent,
            "hidden": self.hidden,
            "extended": self.extended,
            "versions_purged": self.purge.versions_purged,
            "versions_waiting": self.purge.versions_waiting,
        }


def prepare_immutable(storage: object, config: RepoConfig, policy: RetentionPolicy) -> tuple[RepoConfig, list[str]]:
    """For ``init --immutable-days``: a bucket with Object Lock (created, or required) and the config recording
    the policy; plus warnings about the bucket's setup."""
    ols = object_lock_storage(storage)
    if ols is None:
        raise UsageError("--immutable-days needs an S3 repository (s3:...) on a server with Object Lock")
    ols.prepare_object_lock()
    warnings = []
    if ols.default_retention():
        warnings.append(
            "the bucket has a default retention: it also retains locks and every version for its whole period "
            "(see docs/threat-model.md); Sauvegarde sets retention per object and works best without it"
        )
    return replace(config, extra={**config.extra, "immutability": policy.as_dict()}), warnings


def needs_extension(retain_until: datetime | None, now: datetime, policy: RetentionPolicy) -> bool:
    """Whether an object's retention must be extended now: none, or less than half the period left."""
    return retain_until is None or retain_until - now < timedelta(days=policy.days / 2)


def written_recently(modified: datetime | None, now: datetime, policy: RetentionPolicy) -> bool:
    """Whether an object's write time alone proves more than half the period is left."""
    return modified is not None and now - modified < timedelta(days=policy.days / 2)


def _lock_storage(repo: Repository) -> tuple[ObjectLockStorage, RetentionPolicy]:
    ols = object_lock_storage(repo.storage)
    policy = repo.config.immutability
    if ols is None or policy is None:
        raise UsageError(f"{repo.storage.location} is not an immutable repository (see init --immutable-days)")
    return ols, policy


def needed_packs(repo: Repository, used: BlobSet) -> set[str]:
    """Names of the packs holding at least one referenced blob, per the index."""
    files, _errors = repo.load_packed_index_files()
    return {layout.pack_name(pid) for f in files for pid, packed in f.packs.items() if used.holds_any(packed)}


def extend_retention(
    repo: Repository, used: BlobSet | None = None, now: datetime | None = None, threads: int = 8
) -> RetentionReport:
    """Extend the retention of everything the repository still needs (see the module docstring)."""
    ols, policy = _lock_storage(repo)
    now = now or ols.clock()
    if used is None:
        used = referenced_blobs(repo)
    packs = needed_packs(repo, used)
    report = RetentionReport()
    todo: list[str] = []
    for name, _size, modified in ols.list_detailed(""):
        if name.startswith(layout.LOCKS) or (name.startswith(layout.DATA) and name not in packs):
            continue
        report.checked += 1
        if written_recently(modified, now, policy):
            report.recent += 1
        else:
            todo.append(name)

    # Objects someone hid behind a delete marker (or overwrote) are read from their original version, which
    # is no longer the current one: its retention must be kept up too, or the hiding would win after N days.
    versions: dict[str, str | None] = dict.fromkeys(todo)
    for name, version_id in ols.revealed_versions().items():
        if not (name.startswith(layout.LOCKS) or (name.startswith(layout.DATA) and name not in packs)):
            report.checked += 1
            report.hidden += 1
            versions[name] = version_id

    def one(item: tuple[str, str | None]) -> bool:
        name, version = item
        if not needs_extension(ols.retain_until(name, version), now, policy):
            return False
        return ols.extend_retention(name, policy.until(now), version)

    with ThreadPoolExecutor(threads) as pool:
        report.extended = sum(pool.map(one, versions.items()))
    return report


def purge_expired(repo: Repository) -> PurgeReport:
    """Delete for good the old versions of objects this repository deleted, once their retention ended."""
    ols, _policy = _lock_storage(repo)
    logged, _bad = deletions.logged_names(repo.storage, repo.cipher)
    return ols.purge_versions(lambda name: name in logged or name.startswith(layout.LOCKS))


def maintain(repo: Repository, used: BlobSet | None = None) -> RetentionReport:
    """Extend what is needed, then purge what ended: the upkeep prune runs on immutable repositories."""
    report = extend_retention(repo, used)
    report.purge = purge_expired(repo)
    return report


def find_tampering(repo: Repository) -> tuple[list[str], list[str]]:
    """``(hidden, forged)``: objects hidden or overwritten by someone else, and deletion logs that fail to open."""
    ols = object_lock_storage(repo.storage)
    if ols is None or not ols.versioning_enabled():
        return [], []
    hidden = ols.hidden_objects()
    logged, bad = deletions.logged_names(repo.storage, repo.cipher, hidden)
    return [n for n in hidden if n not in logged], bad
