"""Index objects and the in-memory MasterIndex (sorted columns plus pending dict)."""

from __future__ import annotations

import os
import random
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.errors import FormatError
from sauvegarde.repository import index as index_module
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.index import IndexFile, MasterIndex

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True, database=None)

ids = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
entries_st = st.builds(BlobEntry, st.integers(0, 1), ids, u32, u32, u32)
index_files = st.builds(
    IndexFile,
    packs=st.dictionaries(ids, st.lists(entries_st, max_size=8), max_size=6),
    supersedes=st.lists(ids, max_size=3),
)


def _entry(blob_id: bytes, n: int = 0) -> BlobEntry:
    return BlobEntry(n % 2, blob_id, n * 100, 40 + n, n * 3)


def _rand_ids(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(n)]


# ---- IndexFile --------------------------------------------------------------------------------------------


@PROPERTY
@given(f=index_files)
def test_index_file_round_trip(f: IndexFile) -> None:
    decoded = IndexFile.decode(f.encode(), "index/x")
    assert decoded == f
    assert decoded.blob_count() == sum(len(v) for v in f.packs.values())


def test_index_file_wire_format() -> None:
    f = IndexFile(packs={b"p" * 32: [_entry(b"i" * 32, 1)]})
    assert msgpack.unpackb(f.encode()) == {
        "v": 1,
        "packs": [[b"p" * 32, [[1, b"i" * 32, 100, 41, 3]]]],
        "supersedes": [],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "packs": []},
        {"packs": []},
        {"v": 1},
        {"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 32, 0, 1]]]]},
        {"v": 1, "packs": [[b"p" * 32]]},
        {"v": 1, "packs": [5]},
        {"v": 1, "packs": [[b"p" * 32, [["t", b"i" * 32, 0, 1, 0]]]]},
        [1, 2, 3],
        "a string",
        None,
    ],
    ids=repr,
)
def test_malformed_index_is_a_format_error(body: object) -> None:
    with pytest.raises(FormatError, match="index/abc"):
        IndexFile.decode(msgpack.packb(body), "index/abc")


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x92\x01", b"garbage that is not msgpack"])
def test_garbage_index_is_a_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        IndexFile.decode(raw, "index/abc")


# ---- MasterIndex ------------------------------------------------------------------------------------------


def _assert_all_found(mi: MasterIndex, expected: dict[bytes, tuple[bytes, BlobEntry]]) -> None:
    for blob_id, hit in expected.items():
        assert blob_id in mi
        assert mi.lookup(blob_id) == hit
    assert len(mi) == len(expected)


def test_empty_master_index() -> None:
    mi = MasterIndex()
    assert len(mi) == 0
    assert mi.lookup(b"x" * 32) is None
    assert b"x" * 32 not in mi
    assert list(mi.entries()) == []
    assert not mi.has_pack(b"p" * 32)


def test_lookup_after_add_files() -> None:
    blob_ids = _rand_ids(500, 1)
    files, expected = [], {}
    for f in range(5):
        packs = {}
        for p in range(4):
            pid = os.urandom(32)
            chunk = blob_ids[(f * 4 + p) * 25 : (f * 4 + p + 1) * 25]
            packs[pid] = [_entry(b, n) for n, b in enumerate(chunk)]
            expected.update({e.id: (pid, e) for e in packs[pid]})
        files.append(IndexFile(packs=packs))
    mi = MasterIndex()
    mi.add_files(files[:2])
    mi.add_files(files[2:])
    _assert_all_found(mi, expected)
    assert all(mi.has_pack(pid) for pid, _e in expected.values())
    for missing in _rand_ids(50, 2):
        assert mi.lookup(missing) is None
        assert missing not in mi


def test_lookup_after_add_pack_without_merge() -> None:
    mi = MasterIndex()
    expected = {}
    for p, chunk in enumerate(_chunks(_rand_ids(100, 3), 10)):
        pid = bytes([p]) * 32
        entries = [_entry(b, n) for n, b in enumerate(chunk)]
        mi.add_pack(pid, entries)
        expected.update({e.id: (pid, e) for e in entries})
    _assert_all_found(mi, expected)
    assert mi.table_bytes() == 0  # still pending


def test_merge_moves_pending_into_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_MERGE_AT", 16)
    mi = MasterIndex()
    expected = {}
    for p, chunk in enumerate(_chunks(_rand_ids(203, 4), 7)):
        pid = bytes([p]) * 32
        entries = [_entry(b, n) for n, b in enumerate(chunk)]
        mi.add_pack(pid, entries)
        expected.update({e.id: (pid, e) for e in entries})
        _assert_all_found(mi, expected)
    assert mi.table_bytes() > 0
    assert mi.table_bytes() <= 49 * len(expected)
    # add_files after merges keeps everything
    pid = b"z" * 32
    extra = [_entry(b, 3) for b in _rand_ids(20, 5)]
    mi.add_files([IndexFile(packs={pid: extra})])
    expected.update({e.id: (pid, e) for e in extra})
    _assert_all_found(mi, expected)


def test_entries_yields_everything_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_MERGE_AT", 10)
    mi = MasterIndex()
    expected = {}
    for p, chunk in enumerate(_chunks(_rand_ids(45, 6), 4)):
        pid = bytes([p]) * 32
        mi.add_pack(pid, [_entry(b, n) for n, b in enumerate(chunk)])
        expected.update({b: (pid, _entry(b, n)) for n, b in enumerate(chunk)})
    listed = list(mi.entries())
    assert len(listed) == len(expected)
    assert {e.id: (pid, e) for pid, e in listed} == expected
    _assert_all_found(mi, expected)  # entries() merged the pending dict; lookups still work


def test_keys_sharing_the_first_eight_bytes() -> None:
    prefix = b"\x00\x11\x22\x33\x44\x55\x66\x77"
    same_prefix = [prefix + bytes([i]) * 24 for i in range(1, 40)]
    neighbours = [prefix[:7] + b"\x76" + b"\xff" * 24, prefix[:7] + b"\x78" + b"\x00" * 24]
    absent = [prefix + b"\x00" * 24, prefix + b"\xff" * 24, prefix + bytes([5]) * 23 + b"\x06"]

    half = len(same_prefix) // 2
    expected = {}
    files = []
    for p, chunk in enumerate([same_prefix[:half], neighbours]):
        pid = bytes([p + 1]) * 32
        files.append(IndexFile(packs={pid: [_entry(b, n) for n, b in enumerate(chunk)]}))
        expected.update({b: (pid, _entry(b, n)) for n, b in enumerate(chunk)})
    with mock.patch.object(index_module, "_MERGE_AT", 8):
        mi = MasterIndex()
        mi.add_files(files)
        for n, b in enumerate(same_prefix[half:]):
            pid = bytes([100 + n]) * 32
            mi.add_pack(pid, [_entry(b, n)])
            expected[b] = (pid, _entry(b, n))
        _assert_all_found(mi, expected)
        for b in absent:
            assert mi.lookup(b) is None
            assert b not in mi


def test_blob_in_two_packs_is_found_in_either() -> None:
    blob = b"d" * 32
    mi = MasterIndex()
    mi.add_files([IndexFile(packs={b"1" * 32: [_entry(blob, 1)], b"2" * 32: [_entry(blob, 2)]})])
    assert mi.lookup(blob) in [(b"1" * 32, _entry(blob, 1)), (b"2" * 32, _entry(blob, 2))]
    mi.add_pack(b"3" * 32, [_entry(blob, 3)])
    assert mi.lookup(blob) in [(bytes([c]) * 32, _entry(blob, c - 48)) for c in b"123"]


def test_copies_of_a_blob_in_three_packs_start_with_the_one_looked_up() -> None:
    blob, other = b"d" * 32, b"e" * 32
    mi = MasterIndex()
    mi.add_files([IndexFile(packs={b"1" * 32: [_entry(blob, 1), _entry(other, 4)]})])
    mi.add_files([IndexFile(packs={b"2" * 32: [_entry(blob, 2)]})])
    mi.add_pack(b"3" * 32, [_entry(blob, 3)])
    copies = mi.copies(blob)
    assert copies[0] == mi.lookup(blob)
    assert sorted(copies) == [(bytes([c]) * 32, _entry(blob, c - 48)) for c in b"123"]
    assert mi.copies(other) == [(b"1" * 32, _entry(other, 4))]
    assert mi.copies(b"f" * 32) == []


def test_pack_numbers_are_shared_between_files_and_pending() -> None:
    mi = MasterIndex()
    pid = b"p" * 32
    a, b = b"a" * 32, b"b" * 32
    mi.add_files([IndexFile(packs={pid: [_entry(a, 1)]})])
    mi.add_pack(pid, [_entry(b, 2)])
    assert mi.packs == [pid]
    assert mi.lookup(a) == (pid, _entry(a, 1))
    assert mi.lookup(b) == (pid, _entry(b, 2))


@PROPERTY
@given(
    batches=st.lists(
        st.tuples(st.booleans(), st.lists(st.tuples(ids, st.lists(entries_st, max_size=6)), max_size=4)),
        max_size=8,
    ),
    merge_at=st.integers(1, 20),
    probes=st.lists(ids, max_size=10),
)
def test_master_index_agrees_with_a_dict(
    batches: list[tuple[bool, list[tuple[bytes, list[BlobEntry]]]]], merge_at: int, probes: list[bytes]
) -> None:
    # a model: each blob ID maps to the set of (pack, entry) locations it was added with
    model: dict[bytes, set[tuple[bytes, BlobEntry]]] = {}
    with mock.patch.object(index_module, "_MERGE_AT", merge_at):
        mi = MasterIndex()
        for as_file, packs in batches:
            if as_file:
                mi.add_files([IndexFile(packs=dict(packs))])
                packs = list(dict(packs).items())
            else:
                for pid, entries in packs:
                    mi.add_pack(pid, entries)
            for pid, entries in packs:
                for e in entries:
                    model.setdefault(e.id, set()).add((pid, e))
        for blob_id, locations in model.items():
            assert blob_id in mi
            assert mi.lookup(blob_id) in locations
            copies = mi.copies(blob_id)
            assert copies[0] == mi.lookup(blob_id) and set(copies) <= locations
        for p in probes:
            if p not in model:
                assert mi.lookup(p) is None
                assert p not in mi
        everything = list(model) + probes  # the vectorized check agrees with one lookup at a time
        assert mi.known(everything) == [i in mi for i in everything]
        assert {e.id for _pid, e in mi.entries()} == set(model)


def _chunks(items: list[bytes], n: int) -> list[list[bytes]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


@pytest.mark.parametrize("newer_first", [False, True])
def test_add_files_skips_superseded_index_objects(newer_first: bool) -> None:
    old_blob, kept_blob, new_blob = b"o" * 32, b"k" * 32, b"n" * 32
    old = IndexFile(packs={b"p" * 32: [_entry(old_blob)]}, index_id=b"\x01" * 32)
    kept = IndexFile(packs={b"q" * 32: [_entry(kept_blob)]}, index_id=b"\x02" * 32)
    new = IndexFile(packs={b"r" * 32: [_entry(new_blob)]}, supersedes=[b"\x01" * 32], index_id=b"\x03" * 32)
    mi = MasterIndex()
    mi.add_files([new, kept, old] if newer_first else [old, kept, new])
    assert mi.lookup(old_blob) is None
    assert mi.lookup(kept_blob) == (b"q" * 32, _entry(kept_blob))
    assert mi.lookup(new_blob) == (b"r" * 32, _entry(new_blob))
    assert len(mi) == 2
