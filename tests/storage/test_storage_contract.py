"""The storage contract of :mod:`sauvegarde.storage.base`, run against every backend in ``conftest.BACKENDS``."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest

from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError
from sauvegarde.storage import ObjectInfo, Storage


def _names(storage: Storage, prefix: str = "") -> dict[str, int]:
    return {info.name: info.size for info in storage.list(prefix)}


# ---- save / load ------------------------------------------------------------------------------------------


def test_created_storage_exists(storage: Storage) -> None:
    assert storage.exists()
    assert _names(storage) == {}


@pytest.mark.parametrize(
    "payload",
    [b"", b"x", bytes(range(256)), random.Random(1).randbytes(3 * 1024 * 1024 + 7)],
    ids=["empty", "one-byte", "all-bytes", "3MiB"],
)
def test_save_then_load_round_trip(storage: Storage, payload: bytes) -> None:
    storage.save("data/ab/ab01", payload)
    assert storage.load("data/ab/ab01") == payload
    assert storage.stat("data/ab/ab01") == ObjectInfo("data/ab/ab01", len(payload))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_save_accepts_any_buffer(storage: Storage, wrap: type) -> None:
    storage.save("obj", wrap(b"some bytes"))
    assert storage.load("obj") == b"some bytes"


def test_save_copies_the_callers_buffer(storage: Storage) -> None:
    buf = bytearray(b"original")
    storage.save("obj", buf)
    buf[:] = b"mutated!"
    assert storage.load("obj") == b"original"


def test_load_returns_bytes(storage: Storage) -> None:
    storage.save("obj", bytearray(b"abc"))
    assert type(storage.load("obj")) is bytes
    assert type(storage.load("obj", 1, 1)) is bytes


def test_second_save_raises_object_exists_and_keeps_content(storage: Storage) -> None:
    storage.save("config", b"first")
    with pytest.raises(ObjectExists):
        storage.save("config", b"second, longer content")
    with pytest.raises(ObjectExists):
        storage.save("config", b"first")
    assert storage.load("config") == b"first"
    assert storage.stat("config").size == 5
    assert _names(storage) == {"config": 5}


def test_object_exists_is_a_storage_error() -> None:
    assert issubclass(ObjectExists, StorageError)
    assert issubclass(ObjectNotFound, StorageError)


def test_names_are_independent(storage: Storage) -> None:
    storage.save("a", b"1")
    storage.save("a.b", b"22")
    storage.save("keys/a", b"333")
    assert storage.load("a") == b"1"
    assert storage.load("a.b") == b"22"
    assert storage.load("keys/a") == b"333"


# ---- ranges -----------------------------------------------------------------------------------------------

_OBJ = bytes(range(17))


def test_load_every_valid_range(storage: Storage) -> None:
    storage.save("obj", _OBJ)
    n = len(_OBJ)
    for offset in range(n + 1):
        assert storage.load("obj", offset) == _OBJ[offset:], offset
        assert storage.load("obj", offset, None) == _OBJ[offset:], offset
        for length in range(n - offset + 1):
            assert storage.load("obj", offset, length) == _OBJ[offset : offset + length], (offset, length)


def test_zero_length_reads(storage: Storage) -> None:
    storage.save("obj", _OBJ)
    storage.save("empty", b"")
    assert storage.load("obj", 0, 0) == b""
    assert storage.load("obj", len(_OBJ), 0) == b""
    assert storage.load("empty") == b""
    assert storage.load("empty", 0, 0) == b""
    assert storage.load("empty", 0) == b""


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 18), (1, 17), (16, 2), (17, 1), (18, 0), (18, None), (100, None), (100, 5), (-1, None), (0, -1), (-1, 1)],
)
def test_ranges_past_the_end_or_negative_raise(storage: Storage, offset: int, length: int | None) -> None:
    storage.save("obj", _OBJ)
    with pytest.raises(StorageError) as info:
        storage.load("obj", offset, length)
    assert not isinstance(info.value, ObjectNotFound)


def test_large_object_ranged_read(storage: Storage) -> None:
    data = random.Random(2).randbytes(2 * 1024 * 1024)
    storage.save("data/00/big", data)
    assert storage.load("data/00/big", 1_000_003, 65_536) == data[1_000_003 : 1_000_003 + 65_536]
    assert storage.load("data/00/big", len(data) - 4) == data[-4:]


# ---- missing objects --------------------------------------------------------------------------------------


def test_missing_object_raises_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.load("config")
    with pytest.raises(ObjectNotFound):
        storage.load("config", 0, 0)
    with pytest.raises(ObjectNotFound):
        storage.stat("keys/nothing")
    with pytest.raises(ObjectNotFound):
        storage.delete("data/ab/nothing")


def test_directory_prefix_is_not_an_object(storage: Storage) -> None:
    storage.save("data/ab/ab01", b"x")
    for name in ("data", "data/ab"):
        with pytest.raises(ObjectNotFound):
            storage.stat(name)
        with pytest.raises(ObjectNotFound):
            storage.load(name)
        with pytest.raises(ObjectNotFound):
            storage.delete(name)
    assert storage.load("data/ab/ab01") == b"x"


# ---- list -------------------------------------------------------------------------------------------------

_LAYOUT = {
    "config": 6,
    "keys/k1": 10,
    "keys/k2": 11,
    "data/ab/ab01": 100,
    "data/ab/ab02": 0,
    "data/cd/cd01": 7,
    "index/i1": 3,
    "snapshots/s1": 4,
}


def _populate(storage: Storage) -> None:
    for name, size in _LAYOUT.items():
        storage.save(name, bytes([len(name)]) * size)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", set(_LAYOUT)),
        ("keys/", {"keys/k1", "keys/k2"}),
        ("data/", {"data/ab/ab01", "data/ab/ab02", "data/cd/cd01"}),
        ("data/ab/", {"data/ab/ab01", "data/ab/ab02"}),
        ("data/cd/", {"data/cd/cd01"}),
        ("index/", {"index/i1"}),
        ("snapshots/", {"snapshots/s1"}),
        ("locks/", set()),
        ("data/ef/", set()),
    ],
)
def test_list_by_prefix(storage: Storage, prefix: str, expected: set[str]) -> None:
    _populate(storage)
    listed = list(storage.list(prefix))
    assert len(listed) == len(expected), "no duplicates"
    assert {i.name for i in listed} == expected
    for info in listed:
        assert info.size == _LAYOUT[info.name]


def test_list_empty_storage(storage: Storage) -> None:
    assert list(storage.list("")) == []
    assert list(storage.list("data/")) == []


def test_list_follows_saves_and_deletes(storage: Storage) -> None:
    _populate(storage)
    storage.delete("keys/k1")
    storage.delete("data/ab/ab01")
    storage.save("data/ab/ab03", b"new")
    assert _names(storage, "keys/") == {"keys/k2": 11}
    assert _names(storage, "data/ab/") == {"data/ab/ab02": 0, "data/ab/ab03": 3}


# ---- delete -----------------------------------------------------------------------------------------------


def test_delete_removes_and_allows_saving_again(storage: Storage) -> None:
    storage.save("locks/l1", b"old")
    storage.delete("locks/l1")
    with pytest.raises(ObjectNotFound):
        storage.load("locks/l1")
    with pytest.raises(ObjectNotFound):
        storage.stat("locks/l1")
    with pytest.raises(ObjectNotFound):
        storage.delete("locks/l1")
    storage.save("locks/l1", b"new")
    assert storage.load("locks/l1") == b"new"


def test_delete_leaves_other_objects(storage: Storage) -> None:
    _populate(storage)
    storage.delete("data/ab/ab01")
    expected = {k: v for k, v in _LAYOUT.items() if k != "data/ab/ab01"}
    assert _names(storage) == expected


# ---- names ------------------------------------------------------------------------------------------------

_INVALID_NAMES = [
    "",
    "/",
    "/config",
    "/etc/passwd",
    "..",
    ".",
    "../config",
    "data/../config",
    "data/./x",
    "data/..",
    "a//b",
    "a/",
    "data/ab/",
    "a b",
    "a\\b",
    "a\x00b",
    "naïve",
    "a\nb",
    "~/x",
]


@pytest.mark.parametrize("name", _INVALID_NAMES, ids=repr)
def test_invalid_names_are_rejected(storage: Storage, name: str) -> None:
    with pytest.raises(StorageError):
        storage.save(name, b"x")
    with pytest.raises(StorageError):
        storage.load(name)
    with pytest.raises(StorageError):
        storage.stat(name)
    with pytest.raises(StorageError):
        storage.delete(name)
    assert _names(storage) == {}


@pytest.mark.parametrize("name", ["a", "A-Z_0.9", "..a", "a..", ".hidden", "a/b/c/d/e", "x" * 200], ids=repr)
def test_valid_names_are_accepted(storage: Storage, name: str) -> None:
    storage.save(name, b"ok")
    assert storage.load(name) == b"ok"
    assert _names(storage) == {name: 2}


# ---- concurrency ------------------------------------------------------------------------------------------


def _race(n_threads: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_saves_of_one_name_exactly_one_wins(storage: Storage, round_: int) -> None:
    n = 12
    barrier = threading.Barrier(n)
    winners: list[int] = []
    losers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    name = f"data/{round_:02d}/contended"

    def save(i: int) -> None:
        payload = bytes([i]) * (1000 + i)
        barrier.wait()
        try:
            storage.save(name, payload)
        except ObjectExists:
            with lock:
                losers.append(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                winners.append(i)

    _race(n, save)
    assert errors == []
    assert len(winners) == 1
    assert len(losers) == n - 1
    (w,) = winners
    assert storage.load(name) == bytes([w]) * (1000 + w)
    assert _names(storage) == {name: 1000 + w}


def test_concurrent_saves_of_distinct_names_all_succeed(storage: Storage) -> None:
    n = 16
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def save(i: int) -> None:
        barrier.wait()
        try:
            for j in range(10):
                storage.save(f"data/{j:02d}/obj-{i}-{j}", f"{i}/{j}".encode())
        except BaseException as exc:
            errors.append(exc)

    _race(n, save)
    assert errors == []
    names = _names(storage, "data/")
    assert len(names) == n * 10
    for i in range(n):
        for j in range(10):
            assert storage.load(f"data/{j:02d}/obj-{i}-{j}") == f"{i}/{j}".encode()
