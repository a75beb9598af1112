"""The browsable view behind ``mount``: virtual layout, path resolution, and ranged reads across blob boundaries."""

from __future__ import annotations

import errno
import os
import random
from datetime import datetime
from pathlib import Path

import pytest

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.browse import BlobCache, Browser, VirtualDir, build_layout, snapshot_names
from sauvegarde.repository import Node, Repository, Snapshot
from sauvegarde.repository.testing import PASSWORD, memory_repository


def backup(repo: Repository, path: Path, host: str = "box", tags: list[str] | None = None) -> Snapshot:
    return Backup(repo, BackupOptions(paths=[str(path)], hostname=host, tags=tags or [], workers=2)).run()


def snap(time: str, sid: str, host: str = "h", tags: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(time=time, tree="00" * 32, paths=["/x"], hostname=host, tags=list(tags), id=sid)


def vdir(parent: VirtualDir, name: bytes) -> VirtualDir:
    child = parent.children[name]
    assert isinstance(child, VirtualDir)
    return child


def local_name(time: str) -> str:
    return datetime.fromisoformat(time).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, bytes]:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    big = random.Random(7).randbytes(200_000)  # ~50 blobs with the test chunker (2-16 KiB)
    (root / "big.bin").write_bytes(big)
    (root / "sub" / "small.txt").write_bytes(b"hello\n")
    (root / "empty").write_bytes(b"")
    os.symlink("sub/small.txt", root / "link")
    os.link(root / "sub" / "small.txt", root / "hard.txt")
    os.chmod(root / "big.bin", 0o640)
    return root, big


def prefix(snapshot: Snapshot, root: Path) -> bytes:
    return b"ids/" + snapshot.short_id.encode() + os.fsencode(str(root))


# ---- layout --------------------------------------------------------------------------------------------------


def test_layout_names_groups_and_latest_links() -> None:
    snaps = [
        snap("2026-11-25T10:16:03.5+00:00", "aa" * 32, host="alpha", tags=("daily",)),
        snap("2026-11-25T10:16:03.7+00:00", "bb" * 32, host="beta"),
        snap("2026-11-26T08:00:00+00:00", "cc" * 32, host="alpha", tags=("daily", "weekly")),
    ]
    first = local_name("2026-11-25T10:16:03+00:00").encode()
    last = local_name("2026-11-26T08:00:00+00:00").encode()
    assert snapshot_names(snaps) == [first, first + b"-1", last]
    root = build_layout(snaps, uid=1234, gid=99)
    assert sorted(root.children) == [b"hosts", b"ids", b"snapshots", b"tags"]
    by_time = vdir(root, b"snapshots")
    assert sorted(by_time.children) == [first, first + b"-1", last, b"latest"]
    latest = by_time.children[b"latest"]
    assert isinstance(latest, Node) and latest.type == "symlink" and latest.target == last
    assert sorted(vdir(root, b"ids").children) == [b"aaaaaaaa", b"bbbbbbbb", b"cccccccc"]
    alpha = vdir(vdir(root, b"hosts"), b"alpha")
    assert sorted(alpha.children) == [first, last, b"latest"]
    assert sorted(vdir(vdir(root, b"hosts"), b"beta").children) == [first + b"-1", b"latest"]
    weekly = vdir(vdir(root, b"tags"), b"weekly")
    assert sorted(weekly.children) == [last, b"latest"]
    assert sorted(vdir(root, b"tags").children) == [b"daily", b"weekly"]
    assert root.node.uid == 1234 and alpha.node.gid == 99 and alpha.node.mode == 0o555


def test_odd_hosts_and_tags_make_valid_names() -> None:
    root = build_layout([snap("2026-11-25T10:16:03+00:00", "aa" * 32, host="", tags=("a/b", ".."))])
    assert sorted(vdir(root, b"hosts").children) == [b"_"]
    assert sorted(vdir(root, b"tags").children) == [b"_..", b"a_b"]


def test_empty_repository_has_empty_top_directories() -> None:
    repo = memory_repository()
    browser = Browser(repo)
    assert [n.name for n in browser.listdir(b"")] == [b"hosts", b"ids", b"snapshots", b"tags"]
    assert browser.listdir(b"snapshots") == []
    with pytest.raises(FileNotFoundError):
        browser.lookup(b"snapshots/latest")


# ---- resolution ----------------------------------------------------------------------------------------------


def test_lookup_listdir_readlink_and_metadata(tree: tuple[Path, bytes]) -> None:
    root, big = tree
    repo = memory_repository()
    s = backup(repo, root, tags=["t1"])
    browser = Browser(repo)
    top = prefix(s, root)
    names = [n.name for n in browser.listdir(top)]
    assert names == [b"big.bin", b"empty", b"hard.txt", b"link", b"sub"]
    node = browser.lookup(top + b"/big.bin")
    assert node.type == "file" and node.size == len(big) and node.mode == 0o640
    assert node.mtime_ns == os.stat(root / "big.bin").st_mtime_ns
    assert browser.lookup(top + b"/hard.txt").nlink == 2
    assert browser.readlink(top + b"/link") == b"sub/small.txt"
    assert browser.lookup(top + b"//sub/./small.txt").size == 6
    # the same snapshot under its time, host and tag
    name = snapshot_names([s])[0]
    for alias in (b"snapshots/" + name, b"hosts/box/" + name, b"tags/t1/" + name):
        assert browser.lookup(alias + os.fsencode(str(root)) + b"/sub/small.txt").size == 6
    assert browser.readlink(b"snapshots/latest") == name
    root_node = browser.lookup(b"ids/" + s.short_id.encode())
    assert root_node.type == "dir" and root_node.mtime_ns // 10**9 == int(s.datetime.timestamp())


def test_lookup_errors_carry_errno(tree: tuple[Path, bytes]) -> None:
    root, _ = tree
    repo = memory_repository()
    s = backup(repo, root)
    browser = Browser(repo)
    top = prefix(s, root)
    with pytest.raises(FileNotFoundError) as missing:
        browser.lookup(top + b"/nope")
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(NotADirectoryError) as notdir:
        browser.lookup(top + b"/big.bin/x")
    assert notdir.value.errno == errno.ENOTDIR
    with pytest.raises(NotADirectoryError):
        browser.listdir(top + b"/big.bin")
    with pytest.raises(OSError) as notlink:
        browser.readlink(top + b"/big.bin")
    assert notlink.value.errno == errno.EINVAL
    with pytest.raises(IsADirectoryError):
        browser.open(browser.lookup(top + b"/sub"))


# ---- reading ---------------------------------------------------------------------------------------------


def test_ranged_reads_across_blob_boundaries(tree: tuple[Path, bytes]) -> None:
    root, big = tree
    repo = memory_repository()
    s = backup(repo, root)
    browser = Browser(repo)
    content = browser.open(browser.lookup(prefix(s, root) + b"/big.bin"))
    assert len(content.node.content) > 10 and content.size == len(big)
    starts = content._starts
    ranges = [(0, len(big)), (0, 1), (len(big) - 1, 10), (len(big), 10), (len(big) + 5, 10), (12345, 0)]
    for b in starts[1:6]:  # exactly at, just before and straddling blob boundaries
        ranges += [(b, 100), (b - 1, 2), (b - 50, 100), (b - 1, 1), (b, starts[-1])]
    ranges += [(starts[2] - 3, starts[5] - starts[2] + 6)]  # spans several whole blobs
    for offset, size in ranges:
        assert content.read(offset, size) == big[offset : offset + size], (offset, size)
    rng = random.Random(3)
    for _ in range(200):
        offset = rng.randrange(len(big))
        size = rng.randrange(1, 40_000)
        assert content.read(offset, size) == big[offset : offset + size]


def test_read_fetches_only_covering_blobs(tree: tuple[Path, bytes]) -> None:
    root, big = tree
    repo = memory_repository()
    s = backup(repo, root)
    browser = Browser(repo)
    content = browser.open(browser.lookup(prefix(s, root) + b"/big.bin"))
    starts = content._starts
    assert browser.blobs.loads == 0
    assert content.read(starts[3] + 10, 20) == big[starts[3] + 10 : starts[3] + 30]
    assert browser.blobs.loads == 1
    assert content.read(starts[3] + 100, 20) == big[starts[3] + 100 : starts[3] + 120]  # cached
    assert browser.blobs.loads == 1
    assert content.read(starts[5] - 5, 10) == big[starts[5] - 5 : starts[5] + 5]  # two blobs
    assert browser.blobs.loads == 3


def test_blob_cache_is_bounded(tree: tuple[Path, bytes]) -> None:
    root, big = tree
    repo = memory_repository()
    s = backup(repo, root)
    browser = Browser(repo, blob_cache_bytes=40_000)
    content = browser.open(browser.lookup(prefix(s, root) + b"/big.bin"))
    assert content.read(0, len(big)) == big
    cache = browser.blobs
    assert isinstance(cache, BlobCache) and 0 < cache._bytes <= 40_000
    loads = cache.loads
    assert content.read(0, 10) == big[:10]  # evicted long ago: fetched again
    assert cache.loads == loads + 1


def test_empty_file_reads_nothing(tree: tuple[Path, bytes]) -> None:
    root, _ = tree
    repo = memory_repository()
    s = backup(repo, root)
    browser = Browser(repo)
    assert browser.read(prefix(s, root) + b"/empty", 0, 4096) == b""
    assert browser.read(prefix(s, root) + b"/sub/small.txt", 2, 100) == b"llo\n"


def test_refresh_finds_new_snapshots_and_their_index(tree: tuple[Path, bytes], tmp_path: Path) -> None:
    root, _ = tree
    writer = memory_repository()
    first = backup(writer, root)
    reader = Repository.open(writer.storage, PASSWORD)
    now = [0.0]
    browser = Browser(reader, refresh_interval=30, clock=lambda: now[0])
    assert [s.id for s in browser.snapshots] == [first.id]
    extra = tmp_path / "more"
    extra.mkdir()
    data = random.Random(9).randbytes(50_000)
    (extra / "new.bin").write_bytes(data)
    second = backup(writer, extra, host="other")
    assert [s.id for s in browser.snapshots] == [first.id]  # not due yet
    now[0] = 31.0
    assert b"other" in [n.name for n in browser.listdir(b"hosts")]
    assert browser.read(b"ids/" + second.short_id.encode() + os.fsencode(str(extra)) + b"/new.bin", 0, 10**6) == data
