"""Pack files: many encrypted blobs followed by an encrypted header listing them.

Layout: ``blob_0 || ... || blob_n || sealed(header) || u32le(len(sealed(header)))``, where the header is the
msgpack list of ``[type, id, offset, length, raw_length]`` per blob. The header alone lets an index be rebuilt
from packs. A pack's ID is the BLAKE3 hash of all its bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import blake3
import msgpack

from sauvegarde.crypto import Cipher
from sauvegarde.errors import FormatError
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.storage.base import Buffer

_TRAILER = struct.Struct("<I")
TRAILER_SIZE = _TRAILER.size
HEADER_AAD = b"sauvegarde pack header v1"
MAX_HEADER = 64 * 1024 * 1024


class PackWriter:
    """Accumulates sealed blobs in one growing buffer until :meth:`finish`. Not thread-safe: callers serialize.

    One buffer rather than a list of parts joined at the end: a pack is never held twice in memory.
    """

    def __init__(self, blob_type: int) -> None:
        self.blob_type = blob_type
        self.buf = bytearray()
        self.entries: list[BlobEntry] = []

    @property
    def size(self) -> int:
        return len(self.buf)

    def add(self, blob_id: bytes, sealed: Buffer, raw_length: int) -> None:
        self.entries.append(BlobEntry(self.blob_type, blob_id, len(self.buf), len(sealed), raw_length))
        self.buf += sealed

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self, cipher: Cipher) -> tuple[bytes, bytearray, list[BlobEntry]]:
        """Returns ``(pack_id, pack_bytes, entries)``; the writer must not be used afterwards."""
        header = cipher.seal(encode_header(self.entries), aad=HEADER_AAD)
        data, self.buf = self.buf, bytearray()
        data += header
        data += _TRAILER.pack(len(header))
        return blake3.blake3(data).digest(), data, self.entries


def encode_header(entries: Sequence[BlobEntry]) -> bytes:
    return bytes(msgpack.packb(entries))  # BlobEntry is a tuple: packed as an array


def header_length(trailer: bytes, pack_size: int, what: str) -> int:
    """Length of the sealed header from the pack's last four bytes."""
    if len(trailer) != TRAILER_SIZE:
        raise FormatError(f"{what}: truncated pack")
    (n,) = _TRAILER.unpack(trailer)
    if n > MAX_HEADER or n + TRAILER_SIZE > pack_size:
        raise FormatError(f"{what}: invalid header length {n}")
    return int(n)


def decode_header(sealed: bytes, cipher: Cipher, what: str) -> list[BlobEntry]:
    plain = cipher.open(sealed, aad=HEADER_AAD, what=f"{what} header")
    try:
        return [BlobEntry(int(t), bytes(i), int(o), int(n), int(r)) for t, i, o, n, r in msgpack.unpackb(plain)]
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{what}: malformed header ({exc})") from None


def parse_pack(data: bytes, cipher: Cipher, what: str) -> list[BlobEntry]:
    """Entries of a whole pack held in memory, with bounds checked against the pack's blob area."""
    n = header_length(data[-TRAILER_SIZE:], len(data), what)
    start = len(data) - TRAILER_SIZE - n
    return check_bounds(decode_header(data[start : start + n], cipher, what), start, what)


def check_bounds(entries: list[BlobEntry], area_end: int, what: str) -> list[BlobEntry]:
    """``entries``, once each is known to lie within the blob area (which ends where the header starts)."""
    for e in entries:
        if e.offset + e.length > area_end:
            raise FormatError(f"{what}: blob {e.id.hex()} extends past the blob area")
    return entries
