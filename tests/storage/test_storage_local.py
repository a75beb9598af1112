"""What is specific to the local directory backend and the memory backend, and the location registry."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from page_cache import HAVE_FINCORE, evict, resident, wait_resident
from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError, UsageError
from sauvegarde.storage import open_storage
from sauvegarde.storage.local import LocalStorage
from sauvegarde.storage.memory import MemoryStorage


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    st = LocalStorage(str(tmp_path / "repo"))
    st.create()
    return st


# ---- local ------------------------------------------------------------------------------------------------


def test_local_exists_only_after_create(tmp_path: Path) -> None:
    st = LocalStorage(str(tmp_path / "a" / "b" / "repo"))
    assert not st.exists()
    st.create()
    assert st.exists()
    assert (tmp_path / "a" / "b" / "repo").is_dir()
    st.create()  # idempotent


def test_local_create_failure_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    st = LocalStorage(str(tmp_path / "file" / "repo"))
    with pytest.raises(StorageError):
        st.create()


def test_local_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    st = LocalStorage("rel/repo")
    assert st.root == str(tmp_path / "rel" / "repo")
    assert st.location == st.root


def test_local_objects_are_files_at_their_names(local: LocalStorage) -> None:
    local.save("config", b"c")
    local.save("data/ab/ab01", b"packdata")
    root = Path(local.root)
    assert (root / "config").read_bytes() == b"c"
    assert (root / "data" / "ab" / "ab01").read_bytes() == b"packdata"
    assert _all_files(root) == ["config", "data/ab/ab01"]


def test_local_files_are_private(local: LocalStorage) -> None:
    old = os.umask(0)
    try:
        local.save("keys/k1", b"secret")
        local.save("data/ab/ab01", b"x")
    finally:
        os.umask(old)
    root = Path(local.root)
    for f in ("keys/k1", "data/ab/ab01"):
        assert stat.S_IMODE((root / f).stat().st_mode) == 0o600, f
    for d in ("keys", "data", "data/ab"):
        assert stat.S_IMODE((root / d).stat().st_mode) == 0o700, d


def test_local_leaves_no_temporary_files(local: LocalStorage) -> None:
    for i in range(5):
        local.save(f"data/0{i}/obj", b"x" * i)
    with pytest.raises(ObjectExists):
        local.save("data/00/obj", b"other")
    assert _all_files(Path(local.root)) == [f"data/0{i}/obj" for i in range(5)]


def test_local_failed_write_leaves_no_temporary_file(local: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    local.save("data/ab/first", b"ok")  # the directory exists already

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError) as info:
        local.save("data/ab/second", b"will not fit")
    assert not isinstance(info.value, ObjectExists)
    monkeypatch.undo()
    assert _all_files(Path(local.root)) == ["data/ab/first"]
    local.save("data/ab/second", b"fits now")
    assert local.load("data/ab/second") == b"fits now"


def test_local_list_ignores_leftover_temporary_files(local: LocalStorage) -> None:
    local.save("data/ab/ab01", b"x")
    (Path(local.root) / "data" / "ab" / ".tmp-999999-1-ab02").write_bytes(b"half written")
    assert [i.name for i in local.list("data/")] == ["data/ab/ab01"]


def test_local_list_of_missing_directory_is_empty(tmp_path: Path) -> None:
    st = LocalStorage(str(tmp_path / "never-created"))
    assert list(st.list("")) == []
    assert list(st.list("keys/")) == []


@pytest.mark.skipif(not hasattr(os, "posix_fadvise") or not HAVE_FINCORE, reason="no fadvise or fincore here")
def test_local_fetch_ahead_brings_an_object_into_the_page_cache(local: LocalStorage) -> None:
    """A hint that returns at once: the disk reads the object meanwhile; one not asked for stays out; a missing
    object is no error (it is only a hint), a name outside the naming scheme is refused as everywhere."""
    size = 3 * 1024 * 1024
    local.save("data/ab/asked", os.urandom(size))
    local.save("data/ab/left", os.urandom(size))
    asked, left = Path(local._path("data/ab/asked")), Path(local._path("data/ab/left"))
    for path in (asked, left):
        evict(path)
        if resident(path) != 0:
            pytest.skip("this file system keeps the file's pages")
    local.fetch_ahead("data/ab/asked")
    local.fetch_ahead("data/ab/missing")
    with pytest.raises(StorageError, match="invalid object name"):
        local.fetch_ahead("../outside")
    assert wait_resident(asked, size) == size
    assert resident(left) == 0
    assert local.load("data/ab/asked")[:16] == asked.read_bytes()[:16]


@pytest.mark.skipif(not hasattr(os, "posix_fadvise") or not HAVE_FINCORE, reason="no fadvise or fincore here")
def test_local_saved_objects_leave_the_page_cache_once_durable(local: LocalStorage, tmp_path: Path) -> None:
    """Both ways of saving (bytes, and a file spooled by the caller) end with the object on disk and none of its
    pages cached; a file written the same way without the storage stays cached (what the check measures)."""
    size = 3 * 1024 * 1024
    data = os.urandom(size)
    plain = tmp_path / "plain"
    plain.write_bytes(data)
    if resident(plain) != size:
        pytest.skip("this file system does not cache written files")
    local.save("data/ab/saved", data)
    spool = Path(local.spool_dir) / ".tmp-spool-test"
    spool.write_bytes(data)
    local.save_file("data/ab/spooled", str(spool))
    spool.unlink()
    for name in ("data/ab/saved", "data/ab/spooled"):
        assert resident(Path(local._path(name))) == 0, name
        assert local.load(name) == data


def test_local_names_cannot_escape_root(tmp_path: Path) -> None:
    st = LocalStorage(str(tmp_path / "repo"))
    st.create()
    (tmp_path / "outside").write_bytes(b"secret")
    for name in ("../outside", "/" + str(tmp_path / "outside").lstrip("/"), "data/../../outside"):
        with pytest.raises(StorageError):
            st.load(name)
        with pytest.raises(StorageError):
            st.delete(name)
    assert (tmp_path / "outside").read_bytes() == b"secret"


def test_local_two_instances_share_objects(tmp_path: Path) -> None:
    a = LocalStorage(str(tmp_path / "repo"))
    a.create()
    b = LocalStorage(str(tmp_path / "repo"))
    a.save("snapshots/s1", b"snap")
    assert b.load("snapshots/s1") == b"snap"
    with pytest.raises(ObjectExists):
        b.save("snapshots/s1", b"other")


# ---- memory -----------------------------------------------------------------------------------------------


def test_memory_exists_only_after_create() -> None:
    st = MemoryStorage("memory:x")
    assert not st.exists()
    st.create()
    assert st.exists()
    assert st.location == "memory:x"


# ---- registry ---------------------------------------------------------------------------------------------


def test_registry_paths_are_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = open_storage(str(tmp_path / "repo"))
    assert isinstance(st, LocalStorage)
    assert st.root == str(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    rel = open_storage("relative/repo")
    assert isinstance(rel, LocalStorage)
    assert rel.root == str(tmp_path / "relative" / "repo")
    colon = open_storage("dir:with:colons")
    assert isinstance(colon, LocalStorage)
    assert colon.root == str(tmp_path / "dir:with:colons")


def test_registry_local_scheme(tmp_path: Path) -> None:
    st = open_storage(f"local:{tmp_path / 'repo'}")
    assert isinstance(st, LocalStorage)
    assert st.root == str(tmp_path / "repo")


def test_registry_memory_names_share_objects() -> None:
    a = open_storage("memory:registry-test-shared")
    b = open_storage("memory:registry-test-shared")
    other = open_storage("memory:registry-test-other")
    assert isinstance(a, MemoryStorage)
    assert a.location == "memory:registry-test-shared"
    a.create()
    a.save("config", b"c")
    assert b.load("config") == b"c"
    assert b.exists()
    assert not other.exists()
    assert list(other.list("")) == []


@pytest.mark.parametrize("location", ["", "nosuchscheme://host/path", "gopher://x"])
def test_registry_rejects_empty_and_unknown_url_schemes(location: str) -> None:
    with pytest.raises(UsageError):
        open_storage(location)


# ---- local: reads of packs through files kept open --------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_load_unchanging_reads_ranges_like_load(local: LocalStorage) -> None:
    data = bytes(range(256)) * 40
    local.save("data/ab/ab01", data)
    for offset, length in [(0, 0), (0, len(data)), (1000, 24), (len(data) - 1, 1)]:
        assert local.load_unchanging("data/ab/ab01", offset, length) == local.load("data/ab/ab01", offset, length)
    with pytest.raises(StorageError, match="past end"):
        local.load_unchanging("data/ab/ab01", len(data) - 4, 8)


def test_load_unchanging_refuses_what_load_refuses(local: LocalStorage) -> None:
    local.save("data/ab/ab01", b"x" * 10)
    with pytest.raises(ObjectNotFound):
        local.load_unchanging("data/ab/missing", 0, 1)
    with pytest.raises(ObjectNotFound):
        local.load_unchanging("data/ab", 0, 1)  # a directory opens, but is no object
    with pytest.raises(StorageError):
        local.load_unchanging("../escape", 0, 1)


def test_load_unchanging_keeps_a_few_files_open_per_thread_until_closed(local: LocalStorage) -> None:
    names = [f"data/0{i}/pack{i}" for i in range(12)]
    for i, name in enumerate(names):
        local.save(name, bytes([i]) * 100)
    before = _open_fds()
    for i, name in enumerate(names):
        assert local.load_unchanging(name, 10, 5) == bytes([i]) * 5
    assert _open_fds() - before == 8  # the last eight read
    local.save("data/00/extra", b"e" * 10)
    os.unlink(os.path.join(local.root, names[-1]))
    assert local.load_unchanging(names[-1], 0, 3) == bytes([11]) * 3  # still open: a pack's name fixes its bytes

    seen: list[bytes] = []
    other = threading.Thread(target=lambda: seen.append(local.load_unchanging(names[5], 0, 2)))
    other.start()
    other.join()
    assert seen == [bytes([5]) * 2]
    assert _open_fds() - before == 9  # the other thread's file is its own
    local.close()
    assert _open_fds() == before
