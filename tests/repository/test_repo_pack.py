"""Pack files: writing, parsing whole packs, and reading headers from storage by range."""

from __future__ import annotations

import struct

import blake3
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.crypto import OVERHEAD, Cipher, MasterKey
from sauvegarde.errors import FormatError, IntegrityError
from sauvegarde.repository import layout
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.pack import HEADER_AAD, TRAILER_SIZE, PackWriter, encode_header, parse_pack
from sauvegarde.repository.testing import memory_repository

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)

MASTER = MasterKey(enc_key=b"E" * 32, id_key=b"I" * 32)
CIPHER = MASTER.cipher()


def _pack(blobs: list[bytes], btype: BlobType = BlobType.DATA) -> tuple[bytes, bytes, list[BlobEntry]]:
    w = PackWriter(btype)
    for i, blob in enumerate(blobs):
        w.add(MASTER.content_id(blob), CIPHER.seal(blob), raw_length=i % 2 and len(blob))
    assert len(w) == len(blobs)
    return w.finish(CIPHER)


def _pack_from_entries(blob_area: bytes, entries: list[BlobEntry]) -> bytes:
    header = CIPHER.seal(encode_header(entries), aad=HEADER_AAD)
    return blob_area + header + struct.pack("<I", len(header))


blob_lists = st.lists(st.binary(max_size=2000), max_size=30)


@PROPERTY
@given(blobs=blob_lists, btype=st.sampled_from(list(BlobType)))
def test_pack_round_trip(blobs: list[bytes], btype: BlobType) -> None:
    pack_id, data, entries = _pack(blobs, btype)
    assert pack_id == blake3.blake3(data).digest()
    assert parse_pack(data, CIPHER, "pack") == entries
    assert len(entries) == len(blobs)
    offset = 0
    for blob, e in zip(blobs, entries, strict=True):
        assert e.type == btype
        assert e.id == MASTER.content_id(blob)
        assert e.offset == offset
        assert e.length == len(blob) + OVERHEAD
        assert CIPHER.open(data[e.offset : e.offset + e.length]) == blob
        offset += e.length
    (header_len,) = struct.unpack("<I", data[-TRAILER_SIZE:])
    assert offset + header_len + TRAILER_SIZE == len(data)


@PROPERTY
@given(blobs=blob_lists)
def test_header_read_through_repository(blobs: list[bytes]) -> None:
    repo = memory_repository()
    repo.cipher = CIPHER  # packs in this test are sealed under CIPHER
    pack_id, data, entries = _pack(blobs)
    repo.storage.save(layout.pack_name(pack_id), data)
    assert repo.read_pack_header(pack_id) == entries
    assert repo.read_pack_header(pack_id, len(data)) == entries


def test_writer_tracks_offsets_and_size() -> None:
    w = PackWriter(BlobType.TREE)
    w.add(b"a" * 32, b"x" * 50, 0)
    w.add(b"b" * 32, b"y" * 70, 1234)
    assert w.size == 120
    assert w.entries == [
        BlobEntry(BlobType.TREE, b"a" * 32, 0, 50, 0),
        BlobEntry(BlobType.TREE, b"b" * 32, 50, 70, 1234),
    ]
    _pid, data, _entries = w.finish(CIPHER)
    assert data[:120] == b"x" * 50 + b"y" * 70


def test_header_is_msgpack_of_entry_lists() -> None:
    _pid, data, entries = _pack([b"one", b"two"])
    (n,) = struct.unpack("<I", data[-4:])
    plain = CIPHER.open(data[-4 - n : -4], aad=HEADER_AAD)
    assert msgpack.unpackb(plain) == [list(e) for e in entries]


def test_plain_length() -> None:
    assert BlobEntry(0, b"i" * 32, 0, 100 + OVERHEAD, 0).plain_length == 100
    assert BlobEntry(0, b"i" * 32, 0, 100 + OVERHEAD, 5000).plain_length == 5000


def test_empty_pack_round_trip() -> None:
    _pid, data, entries = _pack([])
    assert entries == []
    assert parse_pack(data, CIPHER, "pack") == []


# ---- damage -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3])
def test_truncated_pack_is_a_format_error(size: int) -> None:
    _pid, data, _entries = _pack([b"blob"])
    with pytest.raises(FormatError):
        parse_pack(data[:size], CIPHER, "pack")


def test_header_length_larger_than_pack_is_a_format_error() -> None:
    _pid, data, _entries = _pack([b"blob"])
    bad = data[:-4] + struct.pack("<I", len(data))
    with pytest.raises(FormatError, match="invalid header length"):
        parse_pack(bad, CIPHER, "pack")
    huge = data[:-4] + struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises(FormatError):
        parse_pack(huge, CIPHER, "pack")


def test_tampered_header_is_an_integrity_error() -> None:
    _pid, data, _entries = _pack([b"blob one", b"blob two"])
    damaged = bytearray(data)
    damaged[-10] ^= 1
    with pytest.raises(IntegrityError, match="pack-x header"):
        parse_pack(bytes(damaged), CIPHER, "pack-x")


def test_header_under_another_key_is_an_integrity_error() -> None:
    _pid, data, _entries = _pack([b"blob"])
    with pytest.raises(IntegrityError):
        parse_pack(data, Cipher(b"k" * 32), "pack")


def test_header_sealed_without_pack_aad_is_rejected() -> None:
    entries = [BlobEntry(0, b"i" * 32, 0, 10, 0)]
    header = CIPHER.seal(encode_header(entries))
    with pytest.raises(IntegrityError):
        parse_pack(b"\x00" * 10 + header + struct.pack("<I", len(header)), CIPHER, "pack")


def test_entry_past_the_blob_area_is_a_format_error() -> None:
    entries = [BlobEntry(0, b"i" * 32, 0, 10, 0), BlobEntry(0, b"j" * 32, 10, 11, 0)]
    with pytest.raises(FormatError, match="past the blob area"):
        parse_pack(_pack_from_entries(b"\x00" * 20, entries), CIPHER, "pack")
    assert parse_pack(_pack_from_entries(b"\x00" * 21, entries), CIPHER, "pack") == entries


def test_read_pack_header_checks_the_blob_area_too() -> None:
    entries = [BlobEntry(0, b"i" * 32, 0, 10, 0), BlobEntry(0, b"j" * 32, 10, 11, 0)]
    repo = memory_repository()
    repo.cipher = CIPHER
    for area, ok in ((20, False), (21, True)):
        data = _pack_from_entries(b"\x00" * area, entries)
        pack_id = blake3.blake3(data).digest()
        repo.storage.save(layout.pack_name(pack_id), data)
        if ok:
            assert repo.read_pack_header(pack_id) == entries
        else:
            with pytest.raises(FormatError, match="past the blob area"):
                repo.read_pack_header(pack_id)


@pytest.mark.parametrize(
    "header",
    [
        msgpack.packb({"not": "a list"}),
        msgpack.packb([[0, b"i" * 32, 0, 10]]),
        msgpack.packb([[0, b"i" * 32, 0, 10, 0, 99]]),
        msgpack.packb([["x", b"i" * 32, 0, 10, 0]]),
        msgpack.packb([5]),
        b"\xc1",
    ],
)
def test_malformed_header_is_a_format_error(header: bytes) -> None:
    sealed = CIPHER.seal(header, aad=HEADER_AAD)
    with pytest.raises(FormatError):
        parse_pack(b"\x00" * 8 + sealed + struct.pack("<I", len(sealed)), CIPHER, "pack")


def test_read_pack_header_of_damaged_packs() -> None:
    repo = memory_repository()
    repo.cipher = CIPHER
    pack_id, data, _entries = _pack([b"blob"])
    name = layout.pack_name(pack_id)
    repo.storage.save(name, data[:-4] + struct.pack("<I", len(data) + 1))
    with pytest.raises(FormatError):
        repo.read_pack_header(pack_id)
    short_id = b"\x01" * 32
    repo.storage.save(layout.pack_name(short_id), b"ab")
    with pytest.raises(FormatError):
        repo.read_pack_header(short_id)
