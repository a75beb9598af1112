"""S3 specifics beyond the shared contract: locations, multipart, Object Lock retention, reads through tampering,
purges, and the retention decisions (with an injected clock: nobody waits for days here)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from s3_server import VOLUME_SLOTS, WeedServer
from sauvegarde.engine.retention_lock import needs_extension, written_recently
from sauvegarde.errors import ObjectNotFound, UsageError
from sauvegarde.storage.capabilities import RetentionPolicy, object_lock_storage
from sauvegarde.storage.s3 import S3Location, S3Storage
from sauvegarde.storage.s3_lock import is_expired
from sauvegarde.storage.wrappers import RetryingStorage

NOW = datetime(2030, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "endpoint", "bucket", "prefix"),
    [
        ("s3:http://127.0.0.1:8333/b", "http://127.0.0.1:8333", "b", ""),
        ("s3:https://s3.example.org/b/some/path/", "https://s3.example.org", "b", "some/path/"),
        ("s3.amazonaws.com/b/p", "https://s3.amazonaws.com", "b", "p/"),
    ],
)
def test_locations(text: str, endpoint: str, bucket: str, prefix: str) -> None:
    loc = S3Location.parse(text)
    assert (loc.endpoint, loc.bucket, loc.prefix) == (endpoint, bucket, prefix)
    assert S3Location.parse(loc.url) == loc


@pytest.mark.parametrize("text", ["s3:http://host", "s3:ftp://host/b", "s3:http:///b"])
def test_bad_locations(text: str) -> None:
    with pytest.raises(UsageError):
        S3Location.parse(text)


def test_retention_decisions_with_an_injected_clock() -> None:
    policy = RetentionPolicy(10)
    assert needs_extension(None, NOW, policy)
    assert needs_extension(NOW + timedelta(days=4, hours=23), NOW, policy)
    assert not needs_extension(NOW + timedelta(days=5, hours=1), NOW, policy)
    assert written_recently(NOW - timedelta(days=4), NOW, policy)
    assert not written_recently(NOW - timedelta(days=6), NOW, policy)
    assert not written_recently(None, NOW, policy)
    assert is_expired(None, NOW) and is_expired(NOW, NOW) and is_expired(NOW - timedelta(seconds=1), NOW)
    assert not is_expired(NOW + timedelta(seconds=1), NOW)
    with pytest.raises(UsageError):
        RetentionPolicy(0)
    with pytest.raises(UsageError):
        RetentionPolicy(1, "forever")


@pytest.fixture
def locked(s3_env: WeedServer) -> S3Storage:
    """A fresh bucket with Object Lock, retention 1 day (compliance)."""
    st = S3Storage(s3_env.url(f"lock-{uuid.uuid4().hex[:16]}", "r"))
    st.prepare_object_lock()
    st.set_retention(RetentionPolicy(1))
    return st


def test_the_test_server_holds_a_bucket_per_test_whatever_the_free_disk_space(s3_env: WeedServer) -> None:
    """Each bucket takes a volume; mini's default allowed free GiB many, so a session ran out of them (CI, 57th)."""
    assert s3_env.volume_slots() == VOLUME_SLOTS >= 1000


def test_prepare_object_lock_refuses_a_plain_bucket(s3_env: WeedServer) -> None:
    st = S3Storage(s3_env.url(s3_env.new_bucket()))
    with pytest.raises(UsageError, match="without Object Lock"):
        st.prepare_object_lock()


def test_saves_are_retained_except_locks(locked: S3Storage) -> None:
    locked.save("data/ab/x", b"x")
    locked.save("locks/l", b"l")
    until = locked.retain_until("data/ab/x")
    assert until is not None and timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(days=1)
    assert locked.retain_until("locks/l") is None
    locked.delete("locks/l")  # locks come and go
    with pytest.raises(ObjectNotFound):
        locked.load("locks/l")


def test_multipart_upload_is_write_once_and_retained(locked: S3Storage) -> None:
    locked.multipart_threshold = 6 * 1024 * 1024
    locked.part_size = 5 * 1024 * 1024
    data = bytes(range(256)) * (13 * 4096)  # 13 MiB: three parts
    locked.save("data/cd/big", data)
    locked.save("data/cd/big2", bytearray(data))  # packs come as bytearrays, uploaded without a copy
    assert locked.load("data/cd/big2") == data
    assert locked.load("data/cd/big", 7 * 1024 * 1024, 100) == data[7 * 1024 * 1024 : 7 * 1024 * 1024 + 100]
    assert locked.retain_until("data/cd/big") is not None
    with pytest.raises(Exception, match="already exists"):
        locked.save("data/cd/big", b"other")


def test_extend_retention_with_an_injected_clock(locked: S3Storage) -> None:
    locked.save("snapshots/s", b"s")
    first = locked.retain_until("snapshots/s")
    assert first is not None
    later = datetime.now(UTC) + timedelta(hours=15)  # less than half a day left at that time
    assert needs_extension(first, later, RetentionPolicy(1))
    assert locked.extend_retention("snapshots/s", later + timedelta(days=1))
    extended = locked.retain_until("snapshots/s")
    assert extended is not None and extended > first
    assert not locked.extend_retention("snapshots/s", first)  # never shortened


def test_deleted_objects_are_hidden_then_read_through_when_revealed(locked: S3Storage, s3_env: WeedServer) -> None:
    locked.save("index/i", b"index")
    attacker = s3_env.client()
    attacker.delete_object(Bucket=locked.bucket, Key="r/index/i")  # a delete marker on top
    other = S3Storage(locked.loc)  # another process: it never deleted anything itself
    assert other.hidden_objects() == ["index/i"]
    assert other.load("index/i") == b"index"  # looked up among versions on the spot
    assert other.hidden_reads == ["index/i"]
    assert [i.name for i in other.list("index/")] == []
    other.reveal(["index/i"])
    assert [(i.name, i.size) for i in other.list("index/")] == [("index/i", 5)]
    attacker.put_object(Bucket=locked.bucket, Key="r/index/i", Body=b"forged")  # "overwrite": a newer version
    third = S3Storage(locked.loc)
    third.reveal(third.hidden_objects())
    assert third.load("index/i") == b"index"  # the oldest version is the write-once original
    assert third.stat("index/i").size == 5


def test_our_own_deletes_stay_deleted(locked: S3Storage) -> None:
    locked.save("snapshots/x", b"x")
    locked.delete("snapshots/x")
    with pytest.raises(ObjectNotFound):
        locked.load("snapshots/x")
    with pytest.raises(ObjectNotFound):
        locked.delete("snapshots/x")


def test_purge_deletes_versions_whose_retention_ended(locked: S3Storage, s3_env: WeedServer) -> None:
    client = s3_env.client()
    soon = datetime.now(UTC) + timedelta(seconds=2)
    client.put_object(
        Bucket=locked.bucket,
        Key="r/data/00/old",
        Body=b"o",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=soon,
    )
    locked.save("data/00/young", b"y")
    locked.delete("data/00/old")
    locked.delete("data/00/young")
    first = locked.purge_versions(lambda name: True)
    assert first.versions_purged == 0 and first.versions_waiting == 2  # both still retained
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 1.1)
    second = locked.purge_versions(lambda name: name != "data/00/young")
    assert second.versions_purged == 1 and second.markers_purged == 1 and second.versions_waiting == 0
    assert "data/00/old" not in {v.name for v in locked.versions("")}
    assert "data/00/young" in {v.name for v in locked.versions("")}
    untouched = locked.purge_versions(lambda name: False)  # not vouched for by a deletion log: never purged
    assert untouched.versions_purged == 0


def test_capabilities_are_found_through_wrappers(locked: S3Storage) -> None:
    assert object_lock_storage(RetryingStorage(locked)) is locked
    assert object_lock_storage(object()) is None
