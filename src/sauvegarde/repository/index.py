"""The blob index: which pack holds each blob, where, and how big.

On storage an index object is sealed msgpack ``{"v": 1, "packs": [[pack_id, [[type, id, offset, length, raw],
...]], ...], "supersedes": [index_id, ...]}``. In memory, :class:`MasterIndex` keeps every known blob in sorted
NumPy columns (49 bytes per blob: an 8-byte key prefix, the other 24 ID bytes, pack number, offset, lengths and
type) plus a small dict for blobs added since the last merge.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from sauvegarde.errors import FormatError
from sauvegarde.repository.blobs import BlobEntry

_MERGE_AT = 1 << 18
_U32 = np.uint32


@dataclass
class IndexFile:
    """One index object's content: packs and their blobs."""

    packs: dict[bytes, list[BlobEntry]] = field(default_factory=dict)
    supersedes: list[bytes] = field(default_factory=list)
    index_id: bytes = b""  # the storage ID once saved or loaded; not part of the encoding

    def encode(self) -> bytes:
        body = {
            "v": 1,
            "packs": [[pid, entries] for pid, entries in self.packs.items()],  # BlobEntry tuples pack as arrays
            "supersedes": self.supersedes,
        }
        return bytes(msgpack.packb(body))

    @classmethod
    def decode(cls, plain: bytes, what: str) -> IndexFile:
        try:
            body = msgpack.unpackb(plain)
            if body.get("v") != 1:
                raise ValueError(f"unknown index version {body.get('v')}")
            packs = {
                bytes(pid): [BlobEntry(int(t), bytes(i), int(o), int(n), int(r)) for t, i, o, n, r in entries]
                for pid, entries in body["packs"]
            }
            return cls(packs=packs, supersedes=[bytes(s) for s in body.get("supersedes", [])])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise FormatError(f"{what}: malformed index ({exc})") from None

    def blob_count(self) -> int:
        return sum(len(v) for v in self.packs.values())


class _Table:
    """Immutable sorted columns of blob locations."""

    def __init__(
        self,
        keys: npt.NDArray[np.uint64],
        rest: npt.NDArray[np.uint8],
        pack: npt.NDArray[np.uint32],
        offset: npt.NDArray[np.uint32],
        length: npt.NDArray[np.uint32],
        raw: npt.NDArray[np.uint32],
        btype: npt.NDArray[np.uint8],
    ) -> None:
        self.keys, self.rest, self.pack, self.offset = keys, rest, pack, offset
        self.length, self.raw, self.btype = length, raw, btype

    @classmethod
    def empty(cls) -> _Table:
        z32 = np.zeros(0, _U32)
        return cls(np.zeros(0, np.uint64), np.zeros((0, 24), np.uint8), z32, z32, z32, z32, np.zeros(0, np.uint8))

    @staticmethod
    def columns(rows: list[tuple[bytes, int, int, int, int, int]]) -> list[npt.NDArray[Any]]:
        """Unsorted columns for ``rows`` of (id, pack, offset, length, raw, type)."""
        n = len(rows)
        ids = np.frombuffer(b"".join(r[0] for r in rows), np.uint8).reshape(n, 32) if n else np.zeros((0, 32), np.uint8)
        keys = np.ascontiguousarray(ids[:, :8]).view(">u8").ravel().astype(np.uint64)
        cols = [np.fromiter((r[k] for r in rows), _U32, n) for k in (1, 2, 3, 4)]
        return [keys, np.ascontiguousarray(ids[:, 8:]), *cols, np.fromiter((r[5] for r in rows), np.uint8, n)]

    @classmethod
    def build(cls, chunks: list[list[npt.NDArray[Any]]], base: _Table | None = None) -> _Table:
        """One sorted table from column chunks (see :meth:`columns`) and an existing table."""
        if base is not None and len(base.keys):
            chunks = [[base.keys, base.rest, base.pack, base.offset, base.length, base.raw, base.btype], *chunks]
        if not chunks:
            return cls.empty()
        parts = [np.concatenate([c[i] for c in chunks]) for i in range(7)]
        chunks.clear()
        order = np.argsort(parts[0], kind="stable")
        k, rest, pack, off, ln, raw, bt = (p[order] for p in parts)
        return cls(k, rest, pack, off, ln, raw, bt)

    def find(self, blob_id: bytes) -> int:
        n = len(self.keys)
        if not n:
            return -1
        key = np.uint64(int.from_bytes(blob_id[:8], "big"))
        i = int(self.keys.searchsorted(key))
        tail = blob_id[8:]
        while i < n and self.keys[i] == key:
            if self.rest[i].tobytes() == tail:
                return i
            i += 1
        return -1

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.rest, self.pack, self.offset, self.length, self.raw, self.btype))


class MasterIndex:
    """Every blob known to the repository session; thread-safe."""

    def __init__(self) -> None:
        self.packs: list[bytes] = []
        self._pack_pos: dict[bytes, int] = {}
        self._table = _Table.empty()
        self._pending: dict[bytes, tuple[int, int, int, int, int]] = {}
        self._lock = threading.Lock()

    def _pack_number(self, pack_id: bytes) -> int:
        pos = self._pack_pos.get(pack_id)
        if pos is None:
            pos = self._pack_pos[pack_id] = len(self.packs)
            self.packs.append(pack_id)
        return pos

    def add_files(self, files: Iterable[IndexFile]) -> None:
        """Bulk-add loaded index objects, skipping those another one supersedes.

        Each object is converted to compact columns as it arrives, so peak memory stays near the final size.
        """
        chunks: dict[bytes, list[npt.NDArray[Any]]] = {}
        superseded: set[bytes] = set()
        with self._lock:
            for n, f in enumerate(files):
                index_id = f.index_id or n.to_bytes(8, "big")
                superseded.update(f.supersedes)
                rows: list[tuple[bytes, int, int, int, int, int]] = []
                for pid, entries in f.packs.items():
                    p = self._pack_number(pid)
                    rows.extend((e.id, p, e.offset, e.length, e.raw_length, e.type) for e in entries)
                chunks[index_id] = _Table.columns(rows)
            live = [c for i, c in chunks.items() if i not in superseded]
            chunks.clear()
            self._table = _Table.build(live, self._table)

    def add_pack(self, pack_id: bytes, entries: Iterable[BlobEntry]) -> None:
        with self._lock:
            p = self._pack_number(pack_id)
            for e in entries:
                self._pending[e.id] = (p, e.offset, e.length, e.raw_length, e.type)
            if len(self._pending) >= _MERGE_AT:
                self._merge()

    def _merge(self) -> None:
        rows = [(i, *v) for i, v in self._pending.items()]
        self._table = _Table.build([_Table.columns(rows)], self._table)
        self._pending = {}

    def lookup(self, blob_id: bytes) -> tuple[bytes, BlobEntry] | None:
        """``(pack_id, entry)`` for a blob, or ``None``."""
        with self._lock:
            hit = self._pending.get(blob_id)
            if hit is not None:
                p, off, ln, raw, bt = hit
                return self.packs[p], BlobEntry(bt, blob_id, off, ln, raw)
            t = self._table
            i = t.find(blob_id)
            if i < 0:
                return None
            return self.packs[int(t.pack[i])], BlobEntry(
                int(t.btype[i]), blob_id, int(t.offset[i]), int(t.length[i]), int(t.raw[i])
            )

    def __contains__(self, blob_id: bytes) -> bool:
        with self._lock:
            return blob_id in self._pending or self._table.find(blob_id) >= 0

    def known(self, ids: list[bytes]) -> list[bool]:
        """For each item (concatenated 32-byte IDs), whether every ID is in the index: one vectorized search."""
        joined = b"".join(ids)
        n = len(joined) // 32
        with self._lock:
            t = self._table
            pending = self._pending
            if n == 0 or not len(t.keys):
                found = np.zeros(n, bool)
            else:
                arr = np.frombuffer(joined, np.uint8).reshape(n, 32)
                keys = np.ascontiguousarray(arr[:, :8]).view(">u8").ravel().astype(np.uint64)
                pos = np.minimum(t.keys.searchsorted(keys), len(t.keys) - 1)
                found = (t.keys[pos] == keys) & (t.rest[pos] == arr[:, 8:]).all(axis=1)
            out: list[bool] = []
            k = 0
            for item in ids:
                m = len(item) // 32
                ok = True
                for j in range(k, k + m):
                    if not found[j]:
                        bid = joined[32 * j : 32 * j + 32]
                        if bid not in pending and t.find(bid) < 0:  # same 8-byte prefix twice: search fully
                            ok = False
                            break
                out.append(ok)
                k += m
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._table.keys) + len(self._pending)

    def has_pack(self, pack_id: bytes) -> bool:
        with self._lock:
            return pack_id in self._pack_pos

    def entries(self) -> Iterator[tuple[bytes, BlobEntry]]:
        """Every ``(pack_id, entry)``, for check and stats."""
        with self._lock:
            self._merge()
            t = self._table
        for i in range(len(t.keys)):
            blob_id = int(t.keys[i]).to_bytes(8, "big") + t.rest[i].tobytes()
            yield (
                self.packs[int(t.pack[i])],
                BlobEntry(int(t.btype[i]), blob_id, int(t.offset[i]), int(t.length[i]), int(t.raw[i])),
            )

    def table_bytes(self) -> int:
        """Memory held by the sorted columns (excludes pending entries and the pack list)."""
        return self._table.nbytes()
