"""The MasterIndex keeping a 16-byte ID prefix (as a repository does): blobs sharing a prefix are told apart by
their full IDs, from the rows added together or from the pack header (the resolver); columnar decoding."""

from __future__ import annotations

import os
import random
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.errors import FormatError, ObjectNotFound
from sauvegarde.repository import index as index_module
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.index import ID_PREFIX, IndexColumns, IndexFile, MasterIndex, decode_columns
from sauvegarde.repository.packed_index import ENTRY, decode_packed, entries
from sauvegarde.repository.testing import memory_repository

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)
P = b"\x5a" * ID_PREFIX  # a shared prefix


class Headers:
    """Pack headers as a resolver: pack ID -> its entries; counts the reads."""

    def __init__(self) -> None:
        self.packs: dict[bytes, list[BlobEntry]] = {}
        self.reads = 0

    def add(self, pack_id: bytes, entries: list[BlobEntry]) -> None:
        self.packs.setdefault(pack_id, []).extend(entries)

    def __call__(self, pack_id: bytes) -> list[BlobEntry]:
        self.reads += 1
        if pack_id not in self.packs:
            raise ObjectNotFound(f"pack {pack_id.hex()}")
        return self.packs[pack_id]


def _e(blob_id: bytes, n: int, btype: int = 0) -> BlobEntry:
    return BlobEntry(btype, blob_id, n * 100, 40 + n, n * 3)


def _pid(n: int) -> bytes:
    return n.to_bytes(4, "big") * 8


def test_repository_index_keeps_a_prefix() -> None:
    repo = memory_repository()
    assert repo.index.id_bytes == ID_PREFIX
    blob_id, _ = repo.save_blob(0, b"some content" * 100)
    repo.flush()
    assert repo.index.table_bytes() == 0  # pending until merged
    reopened = type(repo).open(repo.storage, b"test password")
    assert reopened.index.table_bytes() == 33 * len(reopened.index)
    assert reopened.load_blob(blob_id) == b"some content" * 100
    [(pid, entry)] = list(reopened.index.entries())  # full IDs come back from the pack header
    assert entry.id == blob_id and reopened.index.has_pack(pid)


def test_collision_among_rows_added_together() -> None:
    a, b, c = P + b"a" * 16, P + b"b" * 16, P + b"c" * 16
    mi = MasterIndex(ID_PREFIX)
    mi.add_files([IndexFile(packs={_pid(1): [_e(a, 1)], _pid(2): [_e(b, 2), _e(os.urandom(32), 3)]})])
    assert mi.lookup(a) == (_pid(1), _e(a, 1))
    assert mi.lookup(b) == (_pid(2), _e(b, 2))
    assert mi.lookup(c) is None and c not in mi
    assert mi.known([a + b, a, c, a + c]) == [True, True, False, False]
    assert len(mi) == 3
    assert mi.table_bytes() == 33  # only the blob with a prefix of its own stays in the table


def test_collision_with_a_table_row_is_resolved_from_its_pack_header() -> None:
    a, b, c = P + b"a" * 16, P + b"b" * 16, P + b"c" * 16
    headers = Headers()
    headers.add(_pid(1), [_e(a, 1), _e(os.urandom(32), 2)])
    with mock.patch.object(index_module, "_MERGE_AT", 2):
        mi = MasterIndex(ID_PREFIX, resolver=headers)
        mi.add_files([IndexFile(packs={_pid(1): headers.packs[_pid(1)]})])
        assert headers.reads == 0
        headers.add(_pid(2), [_e(b, 5), _e(os.urandom(32), 6)])
        mi.add_pack(_pid(2), headers.packs[_pid(2)])  # merged: B shares A's prefix
    assert headers.reads == 1
    assert mi.lookup(a) == (_pid(1), _e(a, 1))
    assert mi.lookup(b) == (_pid(2), _e(b, 5))
    assert mi.lookup(c) is None and c not in mi
    assert mi.known([a, b, c]) == [True, True, False]
    assert {e.id for _p, e in mi.entries()} == {e.id for es in headers.packs.values() for e in es}
    assert len(mi) == 4


def test_collision_with_an_unreadable_table_row_keeps_both_blobs() -> None:
    a, b = P + b"a" * 16, P + b"b" * 16
    headers = Headers()  # knows no pack: every read fails
    with mock.patch.object(index_module, "_MERGE_AT", 1):
        mi = MasterIndex(ID_PREFIX, resolver=headers)
        mi.add_files([IndexFile(packs={_pid(1): [_e(a, 1)]})])
        mi.add_pack(_pid(2), [_e(b, 2)])
    assert headers.reads == 1
    # B is kept by its full ID and found first; A stays in the table and is found by its prefix
    assert mi.lookup(b) == (_pid(2), _e(b, 2))
    assert mi.lookup(a) == (_pid(1), _e(a, 1))
    assert mi.known([a + b]) == [True]


def test_same_blob_added_again_stays_in_the_table() -> None:
    a = P + b"a" * 16
    headers = Headers()
    headers.add(_pid(1), [_e(a, 1)])
    with mock.patch.object(index_module, "_MERGE_AT", 1):
        mi = MasterIndex(ID_PREFIX, resolver=headers)
        mi.add_files([IndexFile(packs={_pid(1): [_e(a, 1)]})])
        mi.add_pack(_pid(2), [_e(a, 4)])  # repacked: a second copy
    assert headers.reads == 1
    assert mi.lookup(a) in [(_pid(1), _e(a, 1)), (_pid(2), _e(a, 4))]
    assert mi.table_bytes() == 2 * 33
    assert mi.lookup(P + b"z" * 16) is not None  # a prefix match stands for the blob (documented limit)


def test_pack_named_by_two_index_objects_has_one_number() -> None:
    a, b = os.urandom(32), os.urandom(32)
    mi = MasterIndex(ID_PREFIX)
    mi.add_pack(_pid(7), [_e(os.urandom(32), 0)])
    mi.add_files([IndexFile(packs={_pid(1): [_e(a, 1)]}), IndexFile(packs={_pid(2): [], _pid(1): [_e(a, 1)]})])
    mi.add_files([IndexFile(packs={_pid(1): [_e(b, 2)], _pid(7): []})])
    assert mi.packs == [_pid(7), _pid(1), _pid(2)]
    assert mi.lookup(a) == (_pid(1), _e(a, 1))
    assert mi.lookup(b) == (_pid(1), _e(b, 2))
    assert all(mi.has_pack(_pid(n)) for n in (1, 2, 7)) and not mi.has_pack(_pid(3))
    assert mi.pack_bytes() == 3 * 44


# ---- property: agrees with a dict, with many shared prefixes ------------------------------------------------

prefixes = st.sampled_from([P, b"\x00" * 16, b"\x00" * 8 + b"\x01" * 8, b"\xff" * 16])
blob_ids = st.one_of(
    st.binary(min_size=32, max_size=32), st.builds(lambda p, t: p + t, prefixes, st.binary(min_size=16, max_size=16))
)


@PROPERTY
@given(
    batches=st.lists(st.tuples(st.booleans(), st.lists(st.lists(blob_ids, max_size=5), max_size=3)), max_size=6),
    merge_at=st.integers(1, 12),
    probes=st.lists(blob_ids, max_size=8),
    readable=st.booleans(),
)
def test_prefix_index_agrees_with_a_dict(
    batches: list[tuple[bool, list[list[bytes]]]], merge_at: int, probes: list[bytes], readable: bool
) -> None:
    headers = Headers()
    model: dict[bytes, set[tuple[bytes, BlobEntry]]] = {}
    serial = 0
    with mock.patch.object(index_module, "_MERGE_AT", merge_at):
        mi = MasterIndex(ID_PREFIX, resolver=headers)
        for as_file, packs in batches:
            new: dict[bytes, list[BlobEntry]] = {}
            for blobs in packs:
                serial += 1
                new[_pid(serial)] = [_e(b, n, serial % 2) for n, b in enumerate(blobs)]
            if readable:
                for pid, entries in new.items():
                    headers.add(pid, entries)
            if as_file:
                mi.add_files([IndexFile(packs=new)])
            else:
                for pid, entries in new.items():
                    mi.add_pack(pid, entries)
            for pid, entries in new.items():
                for e in entries:
                    model.setdefault(e.id, set()).add((pid, e))
        for blob_id, locations in model.items():
            assert blob_id in mi
            assert mi.lookup(blob_id) in locations
            copies = mi.copies(blob_id)
            assert copies[0] == mi.lookup(blob_id) and len(set(copies)) == len(copies)
            if readable:  # (an unreadable header leaves rows of another blob with the same prefix: documented)
                assert set(copies) <= locations
        assert mi.known(list(model)) == [True] * len(model)
        everything = list(model) + list(probes)  # found, shared prefixes, absent: the same as one by one
        assert mi.known(everything) == [i in mi for i in everything]
        many = mi.lookup_many(everything)
        assert many == [mi.lookup(i) for i in everything]
        assert all(hit is None or type(hit[1]) is BlobEntry for hit in many)  # == compares tuples only
        present = {i[:ID_PREFIX] for i in model}
        for p in probes:
            if p not in model and p[:ID_PREFIX] not in present:
                assert mi.lookup(p) is None and p not in mi
        if readable:
            assert {e.id for _pid, e in mi.entries()} == set(model)


# ---- columnar decoding --------------------------------------------------------------------------------------


def test_decode_columns_matches_index_file() -> None:
    f = IndexFile(
        packs={_pid(1): [_e(os.urandom(32), n, 1) for n in range(3)], _pid(2): [], _pid(3): [_e(b"x" * 32, 9)]},
        supersedes=[b"s" * 32],
    )
    c = decode_columns(f.encode(), "index/x")
    ref = IndexColumns.from_file(f)
    assert c.pack_ids == ref.pack_ids == _pid(1) + _pid(2) + _pid(3)
    assert c.counts.tolist() == [3, 0, 1] and c.supersedes == [b"s" * 32]
    for name in ("ids", "offset", "length", "raw", "btype"):
        assert getattr(c, name).tolist() == getattr(ref, name).tolist()
    assert c.ids[3].tobytes() == b"x" * 32 and c.btype.tolist() == [1, 1, 1, 0]


def _as_decoded(c: IndexColumns) -> dict[bytes, list[BlobEntry]]:
    """COLUMNS back to packs of entries, to compare with :meth:`IndexFile.decode`."""
    packs: dict[bytes, list[BlobEntry]] = {}
    row = 0
    for n, count in enumerate(c.counts.tolist()):
        entries = packs.setdefault(c.pack_ids[32 * n : 32 * n + 32], [])
        for r in range(row, row + count):
            entries.append(
                BlobEntry(int(c.btype[r]), c.ids[r].tobytes(), int(c.offset[r]), int(c.length[r]), int(c.raw[r]))
            )
        row += count
    return packs


@PROPERTY
@given(
    counts=st.lists(st.integers(0, 9), max_size=12),
    batch=st.integers(1, 8),
    order=st.permutations(["v", "packs", "supersedes"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_decode_columns_agrees_with_index_file_across_batches(
    counts: list[int], batch: int, order: list[str], seed: int
) -> None:
    """Rows are turned into columns a batch at a time while packs are read one by one; keys in any order."""
    rng = random.Random(seed)
    packs = {
        rng.randbytes(32): [
            BlobEntry(
                rng.randrange(2), rng.randbytes(32), rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**32)
            )
            for _ in range(count)
        ]
        for count in counts
    }
    body = {"v": 1, "packs": [[pid, entries] for pid, entries in packs.items()], "supersedes": [b"s" * 32]}
    plain = msgpack.packb({key: body[key] for key in order})
    with mock.patch.object(index_module._ColumnBuilder, "BATCH", batch):
        c = decode_columns(plain, "index/x")
    assert c.supersedes == IndexFile.decode(plain, "index/x").supersedes == [b"s" * 32]
    assert _as_decoded(c) == IndexFile.decode(plain, "index/x").packs == packs
    assert len(c) == sum(counts)
    packed = decode_packed(plain, "index/x")  # check's form: the same entries, 45 bytes each
    assert {pid: entries(p) for pid, p in packed.packs.items()} == packs
    assert sum(len(p) for p in packed.packs.values()) == ENTRY.size * sum(counts)
    assert packed.supersedes == [b"s" * 32]
    assert packed.to_index_file().packs == packs


@pytest.mark.parametrize(
    "plain",
    [
        msgpack.packb({"v": 1, "packs": []}) + msgpack.packb(1),
        msgpack.packb({"v": 1, "packs": []})[:-1],
        msgpack.packb({"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 32, 0, 1, 0]]]]})[:-3],
        b"\x83\xa1v\x01\xa5packs\x90\xa5packs\x90",  # "packs" twice
        msgpack.packb({"v": 1, "packs": 5}),
        msgpack.packb({"v": 1, "packs": [[b"p" * 32, 7]]}),
        msgpack.packb({1: 1, "v": 1, "packs": []}),
    ],
    ids=[
        "trailing data",
        "cut in the map",
        "cut in a row",
        "key twice",
        "packs not a list",
        "rows not a list",
        "int key",
    ],
)
def test_streamed_index_decoding_refuses_what_a_whole_decode_refuses(plain: bytes) -> None:
    with pytest.raises(FormatError, match="index/abc: malformed index"):
        decode_columns(plain, "index/abc")
    with pytest.raises(FormatError, match="index/abc: malformed index"):
        decode_packed(plain, "index/abc")
    if plain != b"\x83\xa1v\x01\xa5packs\x90\xa5packs\x90":
        with pytest.raises(FormatError):
            IndexFile.decode(plain, "index/abc")


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
        {"v": 1, "packs": [[b"p" * 31, [[0, b"i" * 32, 0, 1, 0]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 31, 0, 1, 0], [0, b"i" * 33, 0, 1, 0]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[0, "a string id, 32 characters long!", 0, 1, 0]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 32, -1, 1, 0]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 32, 0, 2**32, 0]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[0, b"i" * 32, 0, 1, 2**64 - 1]]]]},
        {"v": 1, "packs": [[b"p" * 32, [[256, b"i" * 32, 0, 1, 0]]]]},
        [1, 2, 3],
        "a string",
        None,
    ],
    ids=repr,
)
def test_malformed_index_is_a_format_error_in_columns(body: object) -> None:
    with pytest.raises(FormatError, match="index/abc"):
        decode_columns(msgpack.packb(body), "index/abc")
    with pytest.raises(FormatError, match="index/abc"):
        decode_packed(msgpack.packb(body), "index/abc")


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x92\x01", b"garbage that is not msgpack"])
def test_garbage_index_is_a_format_error_in_columns(raw: bytes) -> None:
    with pytest.raises(FormatError):
        decode_columns(raw, "index/abc")
    with pytest.raises(FormatError):
        decode_packed(raw, "index/abc")


def test_id_bytes_must_be_whole_words() -> None:
    for bad in (0, 12, 40):
        with pytest.raises(ValueError):
            MasterIndex(bad)
