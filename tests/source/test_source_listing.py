"""Reading a file only if the page cache holds it (source.listing.read_cached, starts_cached) and asking the disk
to fetch one ahead (fetch_file_ahead), against the real kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from page_cache import HAVE_FINCORE, evict, resident, wait_resident
from sauvegarde.source.listing import (
    RWF_NOWAIT,
    WILLNEED,
    fetch_file_ahead,
    largest_first,
    open_noatime,
    read_cached,
    starts_cached,
)

pytestmark = pytest.mark.skipif(not RWF_NOWAIT, reason="no RWF_NOWAIT on this platform")


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _read(path: Path, size: int) -> bytearray | None:
    fd = open_noatime(bytes(path))
    try:
        return read_cached(fd, size)
    finally:
        os.close(fd)


@pytest.mark.parametrize("size", [0, 1, 4096, 300_000])
def test_a_cached_file_is_read_whole(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = _written(tmp_path / "f", data)
    assert _read(path, size) == bytearray(data)


def test_a_file_not_in_the_page_cache_is_refused(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = _written(tmp_path / "f", data)
    evict(path)
    if _read(path, len(data)) is not None:  # the file system ignored the advice (tmpfs keeps its pages)
        pytest.skip("this file system keeps the file's pages")
    with path.open("rb") as f:
        assert f.read() == data  # read the usual way: now cached
    assert _read(path, len(data)) == bytearray(data)


@pytest.mark.parametrize("expected", [99_999, 100_001, 0], ids=["grew", "shrank", "emptied"])
def test_a_file_of_another_size_than_expected_is_refused(tmp_path: Path, expected: int) -> None:
    path = _written(tmp_path / "f", os.urandom(100_000))
    assert _read(path, expected) is None


def test_the_start_of_a_file_is_known_cached_or_not(tmp_path: Path) -> None:
    path = _written(tmp_path / "f", os.urandom(3 * 1024 * 1024))
    assert starts_cached(bytes(path))
    assert starts_cached(bytes(_written(tmp_path / "short", b"abc")))
    evict(path)
    cached = starts_cached(bytes(path))  # first: a refused read may start reading ahead
    if cached:
        pytest.skip("this file system keeps the file's pages")
    assert not cached
    assert not starts_cached(bytes(tmp_path / "missing"))


@pytest.mark.skipif(WILLNEED is None or not HAVE_FINCORE, reason="no fadvise or fincore here")
def test_a_file_fetched_ahead_comes_into_the_page_cache(tmp_path: Path) -> None:
    """The disk starts reading it, and the call does not wait for that; a file not asked for stays out."""
    size = 2 * 1024 * 1024
    asked, left = _written(tmp_path / "asked", os.urandom(size)), _written(tmp_path / "left", os.urandom(size))
    for path in (asked, left):
        evict(path)
        if resident(path) != 0:
            pytest.skip("this file system keeps the file's pages")
    fetch_file_ahead(bytes(asked), size)
    fetch_file_ahead(bytes(tmp_path / "missing"), size)  # nothing to fetch: no error either
    assert wait_resident(asked, size) == size
    assert resident(left) == 0


def test_subdirectories_to_share_come_most_entries_first(tmp_path: Path) -> None:
    """The order processes sharing a directory's subdirectories take them: most entries first, ties in the given
    order; one gone or replaced by a symlink counts as empty."""
    for name, count in (("a", 2), ("b", 5), ("c", 2), ("d", 0), ("e", 9)):
        (tmp_path / name).mkdir()
        for i in range(count):
            (tmp_path / name / f"f{i}").write_bytes(b"")
    (tmp_path / "e" / "sub").mkdir()  # a directory entry counts as one, what is below it not at all
    (tmp_path / "e" / "sub" / "deep").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "e")
    names = [b"a", b"b", b"c", b"d", b"e", b"gone", b"link"]
    assert largest_first(os.fsencode(tmp_path), names) == [b"e", b"b", b"a", b"c", b"d", b"gone", b"link"]
    assert largest_first(os.fsencode(tmp_path) + b"/", [b"c", b"a"]) == [b"c", b"a"]
