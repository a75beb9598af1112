"""Retry, connection limit, metrics and fault injection wrappers, over the in-memory storage (no real sleeping)."""

from __future__ import annotations

import threading
import time

import pytest

from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError, TransientStorageError, UsageError
from sauvegarde.storage import open_storage
from sauvegarde.storage.base import Buffer, ObjectInfo
from sauvegarde.storage.memory import MemoryStorage
from sauvegarde.storage.wrappers import (
    FaultInjectingStorage,
    LimitedStorage,
    MetricsStorage,
    RetryingStorage,
)


class Sleeps:
    """An injected sleep that records the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def retrying(
    attempts: int = 4, jitter: float = 1.0, max_delay: float = 15.0
) -> tuple[RetryingStorage, FaultInjectingStorage, Sleeps]:
    faults = FaultInjectingStorage(MemoryStorage())
    sleeps = Sleeps()
    st = RetryingStorage(
        faults, attempts=attempts, base_delay=0.5, max_delay=max_delay, sleep=sleeps, jitter=lambda: jitter
    )
    return st, faults, sleeps


# ---- retry ------------------------------------------------------------------------------------------------


def test_transient_errors_are_retried_until_success() -> None:
    st, faults, sleeps = retrying()
    faults.inner.save("obj", b"payload")
    faults.fail("load", nth=1, times=2)
    assert st.load("obj") == b"payload"
    assert faults.calls["load"] == 3
    assert sleeps.delays == [0.5, 1.0]
    assert st.retries == 2


@pytest.mark.parametrize(
    "error",
    [ObjectNotFound("x: not found"), ObjectExists("x: already exists"), StorageError("x: permission denied")],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_pass_through_at_once(error: StorageError) -> None:
    st, faults, sleeps = retrying()
    faults.fail("stat", error=error)
    with pytest.raises(type(error)):
        st.stat("x")
    assert faults.calls["stat"] == 1
    assert sleeps.delays == []


def test_invalid_name_is_not_retried() -> None:
    st, faults, sleeps = retrying()
    with pytest.raises(StorageError, match="invalid object name"):
        st.save("../escape", b"x")
    assert faults.calls["save"] == 1 and sleeps.delays == []


def test_gives_up_after_the_attempts_with_the_last_error() -> None:
    st, faults, sleeps = retrying(attempts=3)
    faults.fail("exists", error=TransientStorageError("cannot reach server"), times=10)
    with pytest.raises(TransientStorageError, match=r"^cannot reach server \(gave up after 3 attempts\)$"):
        st.exists()
    assert faults.calls["exists"] == 3
    assert len(sleeps.delays) == 2


def test_backoff_is_exponential_bounded_and_jittered() -> None:
    st, faults, sleeps = retrying(attempts=10, max_delay=4.0)
    faults.fail("list", times=9)
    assert list(st.list("")) == []
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    low, _, _ = retrying(jitter=0.0, max_delay=4.0)
    assert [low.delay(n) for n in (1, 2, 3, 4, 50, 10_000)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_list_is_retried_as_a_whole() -> None:
    st, faults, _ = retrying()
    for i in range(5):
        faults.inner.save(f"data/{i}", b"x")
    faults.fail("list")
    assert sorted(i.name for i in st.list("data/")) == [f"data/{i}" for i in range(5)]


def test_ambiguous_save_retried_into_identical_object_succeeds() -> None:
    st, faults, sleeps = retrying()
    faults.fail("save", after=True)  # stored, but the reply was lost
    st.save("data/ab/ab01", bytearray(b"content"))
    assert faults.inner.load("data/ab/ab01") == b"content"
    assert faults.calls["save"] == 2 and len(sleeps.delays) == 1


@pytest.mark.parametrize("other", [b"other!!", b"different size"], ids=["same-size", "other-size"])
def test_ambiguous_save_retried_into_different_object_raises(other: bytes) -> None:
    inner = MemoryStorage()
    faults = FaultInjectingStorage(inner)
    faults.fail("save")  # our first save fails; while we back off, another writer stores its own object
    st = RetryingStorage(faults, sleep=lambda _: inner.save("config", other))
    with pytest.raises(ObjectExists, match=r"^config: already exists with (another size|other content)"):
        st.save("config", b"content")
    assert inner.load("config") == other


def test_object_exists_on_first_attempt_is_a_conflict_even_with_same_content() -> None:
    st, faults, _ = retrying()
    faults.inner.save("config", b"content")
    with pytest.raises(ObjectExists):
        st.save("config", b"content")


def test_ambiguous_delete_retried_into_not_found_succeeds() -> None:
    st, faults, _ = retrying()
    faults.inner.save("locks/l1", b"x")
    faults.fail("delete", after=True)
    st.delete("locks/l1")
    with pytest.raises(ObjectNotFound):
        st.delete("locks/l1")


def test_transient_error_is_a_storage_error() -> None:
    assert issubclass(TransientStorageError, StorageError)
    assert TransientStorageError("x").exit_code == 1


# ---- limit ------------------------------------------------------------------------------------------------


class SlowStorage(MemoryStorage):
    """Records how many calls overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0
        self._count = threading.Lock()

    def save(self, name: str, data: Buffer) -> None:
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        try:
            super().save(name, data)
        finally:
            with self._count:
                self.active -= 1


def test_limiter_bounds_concurrency() -> None:
    inner = SlowStorage()
    st = LimitedStorage(inner, connections=3)
    barrier = threading.Barrier(12)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(5):
            st.save(f"obj-{i}-{j}", b"x")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inner.objects) == 60
    assert 1 <= inner.peak <= 3


def test_limiter_releases_its_slot_on_errors() -> None:
    st = LimitedStorage(MemoryStorage(), connections=1)
    for _ in range(3):
        with pytest.raises(ObjectNotFound):
            st.load("missing")
    st.save("a", b"1")
    assert list(st.list("")) == [ObjectInfo("a", 1)]


# ---- metrics ----------------------------------------------------------------------------------------------


def test_metrics_count_operations_bytes_and_errors() -> None:
    ticks = iter(range(1000))
    st = MetricsStorage(MemoryStorage(), clock=lambda: float(next(ticks)))
    st.create()
    st.save("a", b"12345")
    st.save("b", memoryview(b"123"))
    assert st.load("a", 1, 2) == b"23"
    with pytest.raises(ObjectNotFound):
        st.load("missing")
    with pytest.raises(ObjectExists):
        st.save("a", b"again")
    assert [i.name for i in st.list("")] == ["a", "b"]
    st.delete("b")
    m = st.snapshot()
    assert m.of("save").calls == 3 and m.of("save").errors == 1
    assert m.bytes_out == 8
    assert m.of("load").calls == 2 and m.of("load").errors == 1
    assert m.bytes_in == 2
    assert m.of("list").calls == 1 and m.of("delete").calls == 1 and m.of("create").calls == 1
    assert m.of("stat").calls == 0
    assert m.errors == 2
    assert m.of("save").seconds == 3.0  # one tick per call with this clock
    st.save("c", b"x")
    assert m.of("save").calls == 3, "a snapshot does not change afterwards"


# ---- fault injection --------------------------------------------------------------------------------------


def test_fault_injection_fails_exactly_the_chosen_calls() -> None:
    st = FaultInjectingStorage(MemoryStorage())
    st.fail("save", nth=2, error=StorageError("disk full"), times=2)
    st.save("a", b"1")
    for name in ("b", "c"):
        with pytest.raises(StorageError, match="disk full"):
            st.save(name, b"1")
    st.save("d", b"1")
    assert sorted(i.name for i in st.list("")) == ["a", "d"]
    with pytest.raises(ValueError):
        st.fail("rename")


# ---- registry ---------------------------------------------------------------------------------------------


def test_registry_wraps_remote_backends_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUVEGARDE_STORAGE_RETRIES", "2")
    remote = open_storage("sftp:backup@example.invalid:2222:/srv/repo")
    assert isinstance(remote, MetricsStorage)
    retry = remote.inner
    assert isinstance(retry, RetryingStorage) and retry.attempts == 3
    assert isinstance(retry.inner, LimitedStorage)
    assert remote.location == "sftp:backup@example.invalid:2222:/srv/repo"
    assert isinstance(open_storage("memory:wrapped-test"), MemoryStorage)
    monkeypatch.setenv("SAUVEGARDE_STORAGE_RETRIES", "many")
    with pytest.raises(UsageError, match="SAUVEGARDE_STORAGE_RETRIES"):
        open_storage("sftp:host:/srv/repo")
