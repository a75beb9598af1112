"""check: a healthy repository passes; missing, damaged and unindexed objects are found and traced to files."""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path
from typing import Any

import blake3
import pytest

from sauvegarde.engine import check as check_module
from sauvegarde.engine import check_places
from sauvegarde.engine.check import Checker, ReadSubset, check_repository
from sauvegarde.engine.events import Counters, SentCounters
from sauvegarde.errors import UsageError
from sauvegarde.repository import Repository, layout
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.index import IndexFile
from sauvegarde.repository.pack import HEADER_AAD, encode_header
from sauvegarde.util import forked

from .repo_helpers import backup, make_files, memory_objects, memory_repository, pack_names, reopen


@pytest.fixture(autouse=True, params=["dict", "array"])
def places(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here with both forms of check's blob map (check_places): ArrayPlaces from the first blob, or
    DictPlaces whatever the size."""
    monkeypatch.setattr(check_places, "ARRAY_FROM", 0 if request.param == "array" else 1 << 62)
    return str(request.param)


@pytest.fixture
def repo_and_tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    repo = memory_repository()
    make_files(tmp_path / "data", seed=1, count=8)
    snap = backup(repo, tmp_path / "data")
    return repo, snap, tmp_path / "data"


def kinds(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.kind for p in report.problems}


@pytest.mark.parametrize("kept", [0, 16 << 20])  # trees walked from what the pack reads kept, or read again
@pytest.mark.parametrize("window", [1, 4099, 1 << 22])
def test_healthy_repository_has_no_problems(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, window: int, kept: int
) -> None:
    repo, _, _ = repo_and_tree
    monkeypatch.setattr(check_module, "_WINDOW", window)
    monkeypatch.setattr(check_module, "_REFS_KEPT_BYTES", kept)
    opened = reopen(repo, load_index=False)
    report = check_repository(opened, ReadSubset())
    assert opened._index is None  # check reads its index objects itself: no in-memory index, no NumPy
    assert report.problems == []
    assert report.snapshots == 1
    assert report.packs == len(pack_names(repo))
    assert report.packs_read == report.packs
    assert report.bytes_read == sum(len(memory_objects(repo)[n]) for n in pack_names(repo))
    assert report.blobs_referenced > 8  # every file has several chunks, plus the trees


def data_pack_with_file_content(repo) -> str:  # type: ignore[no-untyped-def]
    """The name of a data pack (not a tree pack): one holding blobs of type 0."""
    r = reopen(repo)
    for pid, entry in r.index.entries():
        if entry.type == 0:
            return layout.pack_name(pid)
    raise AssertionError("no data pack")


def test_missing_pack_is_an_error_naming_files(repo_and_tree) -> None:  # type: ignore[no-untyped-def]
    repo, snap, data = repo_and_tree
    name = data_pack_with_file_content(repo)
    del memory_objects(repo)[name]
    report = check_repository(reopen(repo, load_index=False))
    assert "pack_missing" in kinds(report)
    missing = next(p for p in report.problems if p.kind == "pack_missing")
    assert name.rsplit("/", 1)[-1] in missing.subject
    hit = next(p for p in report.problems if p.kind == "snapshot_incomplete")
    assert hit.snapshots == [snap.id]
    assert hit.paths and all(p.startswith(f"{snap.short_id}:{data}") for p in hit.paths)


@pytest.mark.parametrize("window", [4099, 1 << 22])  # blobs spanning many reads, and whole packs in one
@pytest.mark.parametrize("where", [0.0, 0.5])  # the first blob, one in the middle of the pack
def test_flipped_byte_is_found_only_by_read_data(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, window: int, where: float
) -> None:
    repo, _snap, _ = repo_and_tree
    monkeypatch.setattr(check_module, "_WINDOW", window)
    name = data_pack_with_file_content(repo)
    objects = memory_objects(repo)
    raw = bytearray(objects[name])
    at = max(100, int(len(raw) * where) // 2)  # inside a blob, away from the header at the end
    raw[at] ^= 0x01
    objects[name] = bytes(raw)
    structural = check_repository(reopen(repo, load_index=False))
    assert structural.errors == []
    report = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert {"pack_damaged", "blob_damaged", "snapshot_incomplete"} <= kinds(report)
    damaged = [p for p in report.problems if p.kind == "blob_damaged"]
    assert len(damaged) == 1  # the other blobs of the pack still authenticate
    hit = next(p for p in report.problems if p.kind == "snapshot_incomplete")
    assert len(hit.paths) == 1


def test_unindexed_pack_is_a_warning(repo_and_tree, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _, _ = repo_and_tree
    objects = memory_objects(repo)
    before = set(objects)
    make_files(tmp_path / "more", seed=2)
    r = reopen(repo)
    backup(r, tmp_path / "more")
    for n in set(objects) - before:  # forget the new index and snapshot: only packs stay, as after a kill -9
        if n.startswith((layout.INDEX, layout.SNAPSHOTS)):
            del objects[n]
    report = check_repository(reopen(repo, load_index=False))
    assert report.errors == []
    assert "pack_unindexed" in kinds(report)


def test_damaged_index_is_an_error(repo_and_tree) -> None:  # type: ignore[no-untyped-def]
    repo, _, _ = repo_and_tree
    objects = memory_objects(repo)
    name = next(n for n in objects if n.startswith(layout.INDEX))
    objects[name] = objects[name][:-1] + bytes([objects[name][-1] ^ 1])
    report = check_repository(reopen(repo, load_index=False))
    assert "index_damaged" in kinds(report)
    assert report.errors


@pytest.mark.parametrize("read", [None, ReadSubset()], ids=["headers", "read-data"])
@pytest.mark.parametrize("processes", [0, 2])
def test_header_disagreeing_with_index_is_found(  # type: ignore[no-untyped-def]
    repo_and_tree, read: ReadSubset | None, processes: int
) -> None:
    repo, _, _ = repo_and_tree
    objects = memory_objects(repo)
    name = data_pack_with_file_content(repo)
    other = next(n for n in pack_names(repo) if n != name)
    # swap the contents of two packs under their names: headers no longer match what the index says
    objects[name], objects[other] = objects[other], objects[name]
    report = Checker(reopen(repo, load_index=False), read, processes=processes).run()
    assert "header_mismatch" in kinds(report)
    assert "snapshot_incomplete" in kinds(report)


def test_entries_digest_is_of_the_entries_not_their_order() -> None:
    entries = [BlobEntry(0, bytes([i]) * 32, 100 * i, 90, 200) for i in range(5)]
    digest = check_module._entries_digest(entries)
    assert check_module._entries_digest(entries[::-1]) == digest
    for changed in (
        entries[1]._replace(type=1),
        entries[1]._replace(id=b"x" * 32),
        entries[1]._replace(offset=101),
        entries[1]._replace(length=91),
        entries[1]._replace(raw_length=0),
    ):
        assert check_module._entries_digest([entries[0], changed, *entries[2:]]) != digest
    assert check_module._entries_digest(entries[:4]) != digest


def test_subset_buckets_partition_the_packs() -> None:
    ids = [bytes([i]) * 32 for i in range(50)]
    seen: list[bytes] = []
    for n in range(1, 5):
        chosen, _ = ReadSubset.parse(f"{n}/4").select(ids)
        seen.extend(chosen)
    assert sorted(seen) == sorted(ids)


def test_rotating_percentage_covers_everything() -> None:
    ids = [bytes([i]) * 32 for i in range(37)]
    cursor = ""
    seen: set[bytes] = set()
    for _ in range(4):  # 25% a run: four runs cover all
        chosen, cursor = ReadSubset.parse("25%", cursor).select(ids)
        assert len(chosen) == 10  # ceil(37 * 25%)
        seen.update(chosen)
    assert seen == set(ids)


@pytest.mark.parametrize("text", ["0%", "101%", "0/3", "4/3", "x", "1/0", "-5%"])
def test_invalid_subsets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        ReadSubset.parse(text)


@pytest.mark.parametrize("window", [64, 4099, 1 << 22])
@pytest.mark.parametrize("overlap", [False, True])
def test_bytes_between_blobs_do_not_misplace_the_next(
    monkeypatch: pytest.MonkeyPatch, window: int, overlap: bool
) -> None:
    """A pack whose blobs are not back to back (not what we write, but valid) reads clean with any window; so does
    one whose header names the same bytes twice (the second copy starts before the first ends)."""
    monkeypatch.setattr(check_module, "_WINDOW", window)
    repo = memory_repository()
    blobs = [b"first blob " * 40, b"second blob " * 40, b"third " * 10]
    area, entries = b"", []
    for n, plain in enumerate(blobs):
        area += b"\x00" * (0 if n == 0 else 5000)  # a gap longer than the smaller window
        sealed = repo.cipher.seal(plain)
        entries.append(BlobEntry(0, repo.master.content_id(plain), len(area), len(sealed), 0))
        area += sealed
    if overlap:
        entries.insert(1, entries[0])
    header = repo.cipher.seal(encode_header(entries), aad=HEADER_AAD)
    data = area + header + struct.pack("<I", len(header))
    pid = blake3.blake3(data).digest()
    repo.storage.save(layout.pack_name(pid), data)
    repo.save_index_file(IndexFile(packs={pid: entries}))
    report = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert report.errors == [], report.problems
    assert report.packs_read == 1 and report.bytes_read == len(data)


def test_trees_read_with_the_packs_are_still_checked_against_the_index(  # type: ignore[no-untyped-def]
    repo_and_tree, tmp_path: Path
) -> None:
    """--read-data keeps what the trees it reads refer to, for the walk after; a tree read from a pack whose header
    disagrees with the index is still unreadable for restore, and the walk must say so."""
    repo, _, _ = repo_and_tree
    make_files(tmp_path / "more", seed=2, count=4)
    backup(reopen(repo), tmp_path / "more")
    r = reopen(repo)
    tree_packs = sorted({layout.pack_name(pid) for pid, entry in r.index.entries() if entry.type == 1})
    assert len(tree_packs) == 2
    healthy = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert healthy.problems == [] and healthy.trees > 2
    objects = memory_objects(repo)
    a, b = tree_packs
    # each tree pack still reads and authenticates, under the wrong name
    objects[a], objects[b] = objects[b], objects[a]
    report = check_repository(reopen(repo, load_index=False), ReadSubset())
    assert {"header_mismatch", "snapshot_incomplete"} <= kinds(report)
    assert sum(p.kind == "snapshot_incomplete" for p in report.problems) == 2


def test_a_short_read_splitting_a_blob_is_read_again(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads end on blob boundaries; when one returns fewer bytes than asked, the blob it cut is read on its own."""
    repo, _, _ = repo_and_tree
    r = reopen(repo, load_index=False)
    real = r.load_pack_range
    calls: list[tuple[int, int]] = []

    def short_once(pid: bytes, offset: int, length: int) -> bytes:
        calls.append((offset, length))
        data = real(pid, offset, length)
        return data[: length // 2] if len(calls) == 1 else data

    monkeypatch.setattr(r, "load_pack_range", short_once)
    report = Checker(r, ReadSubset(), processes=0).run()  # the calls are counted in this process
    assert report.problems == []
    first_offset, first_length = calls[0]
    assert first_offset == 0
    assert any(offset < first_length // 2 for offset, _n in calls[1:])  # the cut blob, read again from its start


@pytest.mark.parametrize("read", [None, ReadSubset()], ids=["headers", "read-data"])
def test_a_damaged_tree_copy_is_reported_and_the_other_copy_read(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, read: ReadSubset | None
) -> None:
    """Every tree stored twice (a second session that did not load the index wrote them again), then the first
    tree pack damaged: the walk reads each tree from its good copy, and the damage is an error, reported once."""
    repo, _, _ = repo_and_tree
    monkeypatch.setattr(check_module, "_REFS_KEPT_BYTES", 0)  # the walk reads every tree again
    r = reopen(repo)
    trees = {entry.id: layout.pack_name(pid) for pid, entry in r.index.entries() if entry.type == BlobType.TREE}
    (first_pack,) = set(trees.values())
    again = reopen(repo, load_index=False)
    for tree_id in trees:
        again.save_blob(BlobType.TREE, r.load_blob(tree_id))
    again.flush()
    objects = memory_objects(repo)
    damaged = bytearray(objects[first_pack])
    damaged[20] ^= 1  # inside the first blob: its authentication fails
    objects[first_pack] = bytes(damaged)
    report = check_repository(reopen(repo, load_index=False), read)
    assert report.duplicate_blobs == len(trees)
    assert "snapshot_incomplete" not in kinds(report)
    assert sum(p.kind == "blob_damaged" for p in report.problems) == 1
    assert report.errors


def test_referenced_and_unused_blobs_add_up_to_the_index(tmp_path: Path) -> None:
    """Every indexed blob is counted once: referenced by a snapshot, or unused (after a snapshot is forgotten)."""
    repo = memory_repository()
    make_files(tmp_path / "a", seed=1, count=5)
    make_files(tmp_path / "b", seed=2, count=5)
    first = backup(repo, tmp_path / "a")
    backup(reopen(repo), tmp_path / "b")
    total = len({entry.id for _pid, entry in reopen(repo).index.entries()})
    both = check_repository(reopen(repo, load_index=False))
    assert both.problems == [] and both.unused_blobs == 0 and both.blobs_referenced == total
    reopen(repo).delete_snapshot(first.id)
    one = check_repository(reopen(repo, load_index=False))
    assert one.problems == [] and one.unused_blobs > 5
    assert one.blobs_referenced + one.unused_blobs == total


def _problems(report) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return sorted((p.kind, p.subject, p.message) for p in report.problems)


def test_packs_shared_among_processes_find_what_one_process_finds(repo_and_tree) -> None:  # type: ignore[no-untyped-def]
    """Damage in two data packs and a tree pack: the forked processes report the same problems, read the same
    packs and bytes, and leave the same trees for the walk as a check done in this process alone."""
    repo, _, _ = repo_and_tree
    objects = memory_objects(repo)
    names = pack_names(repo)
    processes = 2
    assert len(names) >= 2 * processes  # enough packs to share
    for name in names[:3]:
        raw = bytearray(objects[name])
        raw[len(raw) // 3] ^= 0x10
        objects[name] = bytes(raw)
    alone = Checker(reopen(repo, load_index=False), ReadSubset(), processes=0)
    shared = Checker(reopen(repo, load_index=False), ReadSubset(), processes=processes)
    one, many = alone.run(), shared.run()
    assert {"pack_damaged", "blob_damaged"} <= kinds(many)
    assert _problems(many) == _problems(one)
    assert (many.packs_read, many.bytes_read) == (one.packs_read, one.bytes_read) == (len(names), many.bytes_read)
    assert shared.bad_copies == alone.bad_copies and shared.bad_packs == alone.bad_packs


@pytest.mark.parametrize("subset", ["all", "40%"])  # 40%: fewer packs than all (2 of 5), whatever their IDs
def test_check_processes_ask_for_the_next_pack_before_reading_one(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, subset: str
) -> None:
    """Each process takes the next pack before it reads the one in hand and has it fetched ahead: every pack it
    reads but its first, and none it only checks the header of (not chosen by --read-data-subset)."""
    repo, _, _ = repo_and_tree
    log = tmp_path / "log"

    def logged(what: str, real: Any) -> Any:
        def call(self: Any, pid: bytes, *args: Any) -> Any:
            with log.open("a") as f:  # one short append per line: the processes' lines do not mix
                f.write(f"{os.getpid()} {what} {pid.hex()}\n")
            return real(self, pid, *args)

        return call

    monkeypatch.setattr(Repository, "fetch_pack_ahead", logged("fetch", Repository.fetch_pack_ahead))
    monkeypatch.setattr(Checker, "_read_pack", logged("read", Checker._read_pack))
    monkeypatch.setattr(Checker, "_check_header", logged("header", Checker._check_header))
    read = ReadSubset() if subset == "all" else ReadSubset.parse(subset)
    report = Checker(reopen(repo, load_index=False), read, processes=2).run()
    assert report.problems == []
    events: dict[str, list[tuple[str, str]]] = {}
    for line in log.read_text().splitlines():
        pid, what, pack = line.split()
        events.setdefault(pid, []).append((what, pack))
    assert str(os.getpid()) not in events and 1 <= len(events) <= 2  # all in the worker processes
    read_packs: set[str] = set()
    fetched_all = 0
    for seq in events.values():
        visited = [pack for what, pack in seq if what != "fetch"]
        reads = {pack for what, pack in seq if what == "read"}
        fetched = [pack for what, pack in seq if what == "fetch"]
        assert len(fetched) == len(set(fetched)) and set(fetched) == reads - {visited[0]}
        for k, (what, pack) in enumerate(seq):
            if what == "fetch":  # asked for before the pack in hand was read
                assert seq[k + 1][0] in ("read", "header") and seq[k + 1][1] != pack
        read_packs |= reads
        fetched_all += len(fetched)
    assert len(read_packs) == report.packs_read
    if subset == "all":
        assert report.packs_read == len(pack_names(repo)) and fetched_all == report.packs_read - len(events) > 0
    else:
        assert report.packs_read < len(pack_names(repo)) and fetched_all <= report.packs_read


def test_a_check_process_that_dies_has_its_packs_checked_again(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo, _, _ = repo_and_tree
    objects = memory_objects(repo)
    name = data_pack_with_file_content(repo)
    raw = bytearray(objects[name])
    raw[len(raw) // 3] ^= 0x10
    objects[name] = bytes(raw)
    real_work = Checker._child_work
    died = tmp_path / "died"

    def dies_once(self, packs, turns, one, send):  # type: ignore[no-untyped-def]
        try:  # the first process to start (the file made atomically) takes packs, then is killed
            os.close(os.open(died, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return real_work(self, packs, turns, one, send)
        turns.take()
        turns.take()
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(Checker, "_child_work", dies_once)
    report = Checker(reopen(repo, load_index=False), ReadSubset(), processes=2).run()
    alone = Checker(reopen(repo, load_index=False), ReadSubset(), processes=0).run()
    assert died.exists()
    failed = [p for p in report.problems if p.kind == "worker_failed"]
    assert len(failed) == 1 and "killed by signal 9" in failed[0].message
    assert _problems(alone) == [x for x in _problems(report) if x[0] != "worker_failed"]
    assert report.packs_read == alone.packs_read == len(pack_names(repo))


def test_the_progress_of_a_check_process_that_dies_is_taken_back(  # type: ignore[no-untyped-def]
    repo_and_tree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its packs are read again here: what it had reported is not counted twice (done never passes the total)."""
    repo, _, _ = repo_and_tree
    real_work = Checker._child_work
    died = tmp_path / "died"

    def reports_then_dies(self, packs, turns, one, send):  # type: ignore[no-untyped-def]
        try:
            os.close(os.open(died, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return real_work(self, packs, turns, one, send)
        self.counters = SentCounters(send)
        i = turns.take()
        assert i is not None
        one(packs[i])  # a pack read, its progress sent to the parent
        self.counters.send_now()
        os.kill(os.getpid(), signal.SIGKILL)

    clean = Counters()
    Checker(reopen(repo, load_index=False), ReadSubset(), clean, processes=2).run()
    assert clean.total_files > 0 and (clean.files_done, clean.bytes_done) == (clean.total_files, clean.total_bytes)
    monkeypatch.setattr(Checker, "_child_work", reports_then_dies)
    counters = Counters()
    report = Checker(reopen(repo, load_index=False), ReadSubset(), counters, processes=2).run()
    assert died.exists() and [p.kind for p in report.problems] == ["worker_failed"]
    assert (counters.files_done, counters.bytes_done) == (counters.total_files, counters.total_bytes)


def test_an_interrupted_check_stops_its_workers(repo_and_tree, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    repo, _, _ = repo_and_tree
    made: list[forked.Child] = []

    class Interrupted(forked.Child):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

        def wait(self) -> Any:
            raise KeyboardInterrupt  # Ctrl-C while the workers run

    monkeypatch.setattr(forked, "Child", Interrupted)  # as events.child_reporting finds it
    with pytest.raises(KeyboardInterrupt):
        Checker(reopen(repo, load_index=False), ReadSubset(), processes=2).run()
    assert len(made) == 2
    for child in made:
        with pytest.raises(ProcessLookupError):  # killed and reaped
            os.kill(child.pid, 0)
