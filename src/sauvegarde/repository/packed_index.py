"""Index objects in a compact form, for ``check``: each pack's blob entries packed in one bytes object.

``check`` keeps every pack's entries while it compares headers and reads packs. As :class:`BlobEntry` tuples they
cost about 170 bytes per blob (the tuple, its three numbers, a list slot), beside the 65-byte ID object the blob
map needs anyway; packed, 45 bytes. The plaintext is read one pack at a time (:func:`read_packs`), so no more than
one pack's rows exist as Python objects at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from sauvegarde.errors import FormatError
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.index import MALFORMED, IndexFile, read_packs

# type, ID, offset, length, raw length: the ranges the in-memory index takes (decode_columns refuses the rest too)
ENTRY = struct.Struct("<B32sIII")
ID_AT = 1  # where an entry's ID starts (after its type byte)
# ENTRY as a NumPy record type (``np.frombuffer(packed, ROW)``), for code that works on many entries at once
ROW = [("t", "u1"), ("id", "V32"), ("offset", "<u4"), ("length", "<u4"), ("raw", "<u4")]


@dataclass
class PackedIndex:
    """One index object: pack ID -> its blob entries packed (:data:`ENTRY`, in the object's order)."""

    packs: dict[bytes, bytes] = field(default_factory=dict)
    supersedes: list[bytes] = field(default_factory=list)
    index_id: bytes = b""

    def to_index_file(self) -> IndexFile:
        return IndexFile({pid: entries(packed) for pid, packed in self.packs.items()}, self.supersedes, self.index_id)


def decode_packed(plain: bytes, what: str) -> PackedIndex:
    """An index object's plaintext, packed; FormatError if it is malformed, an ID is not 32 bytes or a number is
    out of range."""
    packs: dict[bytes, bytes] = {}

    def add(pid: bytes, rows: list[Any]) -> None:
        if len(pid) != 32:
            raise ValueError("pack IDs must be 32 bytes")
        packs[pid] = pack_rows(rows)  # a pack listed twice in one object: the last listing, as IndexFile.decode

    try:
        supersedes = read_packs(plain, add)
    except (*MALFORMED, struct.error) as exc:
        raise FormatError(f"{what}: malformed index ({exc})") from None
    return PackedIndex(packs, supersedes)


def pack_rows(rows: list[Any]) -> bytes:
    """``[type, id, offset, length, raw]`` rows packed; ValueError or struct.error if one is malformed."""
    out = bytearray(ENTRY.size * len(rows))
    pack_into, size = ENTRY.pack_into, ENTRY.size
    for k, (t, blob_id, offset, length, raw) in enumerate(rows):
        if not isinstance(blob_id, bytes) or len(blob_id) != 32:
            raise ValueError("blob IDs must be 32 bytes")
        pack_into(out, k * size, t, blob_id, offset, length, raw)
    return bytes(out)


def entries(packed: bytes) -> list[BlobEntry]:
    """The blob entries of one pack, unpacked."""
    return [BlobEntry._make(row) for row in ENTRY.iter_unpack(packed)]


def of_type(packed: bytes, blob_type: int) -> list[BlobEntry]:
    """The entries of one type (a pack's trees, say), the others left packed."""
    size = ENTRY.size
    return [
        BlobEntry._make(ENTRY.unpack_from(packed, k)) for k in range(0, len(packed), size) if packed[k] == blob_type
    ]


def count(packed: bytes) -> int:
    """How many blob entries ``packed`` holds."""
    return len(packed) // ENTRY.size
