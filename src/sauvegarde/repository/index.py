"""The blob index: which pack holds each blob, where, and how big.

On storage an index object is sealed msgpack ``{"v": 1, "packs": [[pack_id, [[type, id, offset, length, raw],
...]], ...], "supersedes": [index_id, ...]}``.

In memory, :class:`MasterIndex` keeps every known blob in sorted NumPy columns: the first ``id_bytes`` bytes of
its ID (an 8-byte sort key and the rest), pack number, offset, length, raw length (4 bytes each) and type (1 byte).
A repository keeps 16 ID bytes (:data:`ID_PREFIX`): 33 bytes per blob, plus 44 bytes per pack (its 32-byte ID,
and an 8-byte key and 4-byte number to find it). Blobs added since the last merge sit in a dict by full ID.

With a prefix, two different blobs can share it. Whenever both full IDs are known (blobs added together, or an
older one whose full ID the resolver reads back from its pack header), such blobs leave the table for a small
dict keyed by their full IDs, so each is found exactly and a third ID with the same prefix is not found. Otherwise
a prefix match stands for the blob: an ID absent from the repository is taken as present only if its first 16
bytes equal a stored blob's, about N / 2**128 per lookup for N blobs (IDs are keyed BLAKE3, so nobody without the
key can aim at one); reading that blob then fails its content check instead of returning other data.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack

from sauvegarde.errors import FormatError, SauvegardeError
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.util.malloc import release_free_memory

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from sauvegarde.util.lazy import lazy_module

    np = lazy_module("numpy")  # imported when the first index is built, after the key derivation (see the module)

ID_PREFIX = 16  # ID bytes a repository's index keeps in memory
_MERGE_AT = 1 << 16  # pending blobs (about 300 bytes each in the dict) merged into the table at a time
_U32_LIMIT = 1 << 32

Resolver = Callable[[bytes], list[BlobEntry]]  # pack ID -> its blobs with full IDs (the pack header)
Location = tuple[int, int, int, int, int]  # pack number, offset, length, raw length, type


def id_keys(ids: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The first 8 bytes of each ID (a row of at least 8 bytes) as one number, ordered as the IDs are: the key the
    sorted ID tables (this index, check's blob map, prune's referenced set) search by."""
    return np.ascontiguousarray(ids[:, :8]).view(">u8").ravel().astype(np.uint64)


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


@dataclass
class IndexColumns:
    """One index object as columns, the form :meth:`MasterIndex.add_files` works on (see :func:`decode_columns`)."""

    pack_ids: bytes  # the packs' 32-byte IDs, concatenated
    counts: npt.NDArray[np.int64]  # blobs per pack
    ids: npt.NDArray[np.uint8]  # (n, 32) blob IDs, pack by pack
    offset: npt.NDArray[np.uint32]
    length: npt.NDArray[np.uint32]
    raw: npt.NDArray[np.uint32]
    btype: npt.NDArray[np.uint8]
    supersedes: list[bytes] = field(default_factory=list)
    index_id: bytes = b""

    @classmethod
    def from_file(cls, f: IndexFile) -> IndexColumns:
        builder = _ColumnBuilder()
        for entries in f.packs.values():
            builder.add(entries)
        return builder.build(b"".join(f.packs), list(f.supersedes), f.index_id)

    def __len__(self) -> int:
        return len(self.ids)


# what reading a malformed index object raises (read_packs, and the rows' checks of its callers)
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, OverflowError, msgpack.UnpackException)


def decode_columns(plain: bytes, what: str) -> IndexColumns:
    """An index object's plaintext straight to columns; same checks as :meth:`IndexFile.decode`, and also that IDs
    are 32 bytes and numbers fit their columns.

    The msgpack is read one pack at a time (:func:`read_packs`), and its rows turned into columns a batch at a
    time, so no more than a batch of rows exists as Python objects at once: decoding a whole object of 200,000
    blobs (what a backup of small files writes) made about 250 bytes of objects per blob, the peak of loading an
    index.
    """
    builder = _ColumnBuilder()
    pids: list[bytes] = []

    def add(pid: bytes, entries: list[Any]) -> None:
        pids.append(pid)
        builder.add(entries)

    try:
        supersedes = read_packs(plain, add)
        return builder.build(b"".join(pids), supersedes, b"")
    except MALFORMED as exc:
        raise FormatError(f"{what}: malformed index ({exc})") from None


def read_packs(plain: bytes, add: Callable[[bytes, list[Any]], None]) -> list[bytes]:
    """Read an index object's plaintext one pack at a time: ``add(pack_id, rows)`` for each pack, its rows as
    msgpack gives them (``[type, id, offset, length, raw]``, unchecked); returns the objects it supersedes. One of
    :data:`MALFORMED` if it is malformed."""
    reader = msgpack.Unpacker(io.BytesIO(plain), read_size=1 << 20, max_buffer_size=max(len(plain), 1 << 20))
    fields: dict[str | bytes, Any] = {}
    for _ in range(reader.read_map_header()):
        key = reader.unpack()
        if not isinstance(key, str | bytes):
            raise ValueError(f"{type(key).__name__} is not allowed for map key")
        if key in fields:
            raise ValueError(f"{key!r} twice")
        if key != "packs":
            fields[key] = reader.unpack()
            continue
        fields[key] = True
        for _ in range(reader.read_array_header()):
            pid, entries = reader.unpack()
            add(bytes(pid), entries)
    with contextlib.suppress(msgpack.OutOfData):
        reader.unpack()
        raise ValueError("data after the index")
    if fields.get("v") != 1:
        raise ValueError(f"unknown index version {fields.get('v')}")
    if "packs" not in fields:
        raise KeyError("packs")
    return [bytes(s) for s in fields.get("supersedes", [])]


class _ColumnBuilder:
    """Columns from ``[type, id, offset, length, raw]`` rows given pack by pack, converted a batch at a time;
    ValueError (or TypeError, OverflowError) if a row is malformed."""

    BATCH = 1 << 14

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.rows: list[Any] = []
        self.ids: list[bytes] = []
        self.nums: list[npt.NDArray[np.int64]] = []  # (4, n) type, offset, length, raw, as uint32

    def add(self, entries: list[Any]) -> None:
        self.counts.append(len(entries))
        self.rows.extend(entries)
        if len(self.rows) >= self.BATCH:
            self._convert()

    def _convert(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        n = len(rows)
        if any(len(e) != 5 for e in rows):
            raise ValueError("an entry is not [type, id, offset, length, raw_length]")
        t, i, o, ln, r = zip(*rows, strict=True)
        del rows
        joined = b"".join(i)
        if len(joined) != 32 * n or any(len(x) != 32 for x in i):
            raise ValueError("blob IDs must be 32 bytes")
        nums = np.array([t, o, ln, r], np.int64)
        if nums.min() < 0 or nums[1:].max() >= _U32_LIMIT or nums[0].max() > 255:
            raise ValueError("a number is out of range")
        self.ids.append(joined)
        self.nums.append(nums.astype(np.uint32))

    def build(self, pack_ids: bytes, supersedes: list[bytes], index_id: bytes) -> IndexColumns:
        self._convert()
        counts = np.array(self.counts, np.int64)
        if len(pack_ids) != 32 * len(counts):
            raise ValueError("pack IDs must be 32 bytes")
        nums = np.concatenate(self.nums, axis=1) if self.nums else np.zeros((4, 0), np.uint32)
        ids = np.frombuffer(b"".join(self.ids), np.uint8).reshape(-1, 32)
        self.ids, self.nums = [], []
        return IndexColumns(
            pack_ids, counts, ids, nums[1], nums[2], nums[3], nums[0].astype(np.uint8), supersedes, index_id
        )


class _Rows:
    """Blob rows as columns: ``keys`` (the ID's first 8 bytes, big-endian), ``rest`` (the next ``id_bytes - 8``),
    pack number, offset, length, raw length, type; new rows also carry ``tail``, the ID's remaining bytes."""

    NAMES = ("keys", "rest", "pack", "offset", "length", "raw", "btype")

    def __init__(self, cols: list[npt.NDArray[Any]], tail: npt.NDArray[np.uint8] | None = None) -> None:
        self.keys, self.rest, self.pack, self.offset, self.length, self.raw, self.btype = cols
        self.tail = tail

    @classmethod
    def empty(cls, id_bytes: int) -> _Rows:
        z = np.zeros(0, np.uint32)
        return cls([np.zeros(0, np.uint64), np.zeros((0, id_bytes - 8), np.uint8), z, z, z, z, np.zeros(0, np.uint8)])

    @classmethod
    def from_ids(
        cls,
        ids: npt.NDArray[np.uint8],
        id_bytes: int,
        pack: npt.NDArray[np.uint32],
        offset: npt.NDArray[np.uint32],
        length: npt.NDArray[np.uint32],
        raw: npt.NDArray[np.uint32],
        btype: npt.NDArray[np.uint8],
    ) -> _Rows:
        keys = id_keys(ids)
        rest = np.ascontiguousarray(ids[:, 8:id_bytes])
        return cls([keys, rest, pack, offset, length, raw, btype], np.ascontiguousarray(ids[:, id_bytes:]))

    def cols(self) -> list[npt.NDArray[Any]]:
        return [self.keys, self.rest, self.pack, self.offset, self.length, self.raw, self.btype]

    def __len__(self) -> int:
        return len(self.keys)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.cols())

    def take(self, sel: npt.NDArray[Any]) -> _Rows:
        """These rows selected or reordered by SEL, in place, one column at a time (keeps the peak low)."""
        for name in self.NAMES:
            setattr(self, name, getattr(self, name)[sel])
        if self.tail is not None:
            self.tail = self.tail[sel]
        return self

    def prefix(self, i: int) -> bytes:
        return int(self.keys[i]).to_bytes(8, "big") + bytes(self.rest[i].tobytes())

    def location(self, i: int) -> Location:
        return int(self.pack[i]), int(self.offset[i]), int(self.length[i]), int(self.raw[i]), int(self.btype[i])

    def search(self, joined: bytes, id_bytes: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """For each of the 32-byte IDs concatenated in JOINED (the table not empty): the first row with its 8-byte
        key, and whether that row holds its prefix (False also when a later row with the same key might: see
        :meth:`find`)."""
        arr = np.frombuffer(joined, np.uint8).reshape(len(joined) // 32, 32)
        keys = id_keys(arr)
        pos = np.minimum(self.keys.searchsorted(keys), len(self.keys) - 1)
        return pos, (self.keys[pos] == keys) & (self.rest[pos] == arr[:, 8:id_bytes]).all(axis=1)

    def find(self, blob_id: bytes, id_bytes: int) -> int:
        """Row of the first blob with BLOB_ID's prefix, or -1."""
        n = len(self.keys)
        if not n:
            return -1
        key = np.uint64(int.from_bytes(blob_id[:8], "big"))
        i = int(self.keys.searchsorted(key))
        rest = blob_id[8:id_bytes]
        while i < n and self.keys[i] == key:
            if self.rest[i].tobytes() == rest:
                return i
            i += 1
        return -1


def _concat(parts: list[_Rows], id_bytes: int) -> _Rows:
    """One _Rows from PARTS, column by column, releasing each part's column as it goes (keeps the peak low)."""
    if not parts:
        return _Rows.empty(id_bytes)
    cols: list[npt.NDArray[Any]] = []
    for name in _Rows.NAMES:
        cols.append(np.concatenate([getattr(p, name) for p in parts]))
        for p in parts:
            setattr(p, name, None)
        if len(parts) > 1:
            release_free_memory()  # the parts' small columns sit in the C heap once freed
    tails = [p.tail for p in parts if p.tail is not None]
    tail = np.concatenate(tails) if len(tails) == len(parts) else None
    parts.clear()
    return _Rows(cols, tail)


class _Packs:
    """Pack IDs by number: one buffer of 32-byte IDs, found through a sorted array of their first 8 bytes (for the
    packs up to the last :meth:`settle`) or a dict (for those added one by one since)."""

    def __init__(self) -> None:
        self._ids = bytearray()
        self._keys = np.zeros(0, np.uint64)
        self._nums = np.zeros(0, np.uint32)
        self._recent: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._ids) // 32

    def id(self, n: int) -> bytes:
        return bytes(self._ids[32 * n : 32 * n + 32])

    def find(self, pack_id: bytes) -> int | None:
        n = self._recent.get(pack_id)
        if n is not None:
            return n
        key = np.uint64(int.from_bytes(pack_id[:8], "big"))
        i = int(self._keys.searchsorted(key))
        while i < len(self._keys) and self._keys[i] == key:
            num = int(self._nums[i])
            if self._ids[32 * num : 32 * num + 32] == pack_id:
                return num
            i += 1
        return None

    def number(self, pack_id: bytes) -> int:
        n = self.find(pack_id)
        if n is None:
            n = self._recent[pack_id] = len(self)
            self._ids += pack_id
        return n

    def append(self, joined: bytes) -> int:
        """Append packs without looking for them (call :meth:`settle` before any lookup); their first number."""
        first = len(self)
        self._ids += joined
        return first

    def settle(self) -> npt.NDArray[np.int64] | None:
        """Sort every pack for lookups and drop repeated ones; returns the renumbering (old number -> new) if any
        pack was dropped. A repeat is always a later number, so numbers below the first repeat do not change."""
        n = len(self)
        if n == len(self._keys) and not self._recent:
            return None
        words = np.frombuffer(bytes(self._ids), ">u8").reshape(n, 4)
        order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))  # stable: lower numbers first
        sw = words[order]
        repeat = np.zeros(n, bool)
        if n > 1:
            repeat[1:] = (sw[1:] == sw[:-1]).all(axis=1)
        remap: npt.NDArray[np.int64] | None = None
        if repeat.any():
            starts = np.where(repeat, 0, np.arange(n))
            first = order[np.maximum.accumulate(starts)]  # per sorted row: number of the first of its run
            keep = np.ones(n, bool)
            keep[order[repeat]] = False
            new_num = np.cumsum(keep) - 1
            remap = np.empty(n, np.int64)
            remap[order] = new_num[first]
            self._ids = bytearray(np.frombuffer(bytes(self._ids), np.uint8).reshape(n, 32)[keep].tobytes())
            order = new_num[order[~repeat]]
            sw = sw[~repeat]
        self._keys = np.ascontiguousarray(sw[:, 0]).astype(np.uint64)
        self._nums = order.astype(np.uint32)
        self._recent = {}
        return remap

    def all(self) -> list[bytes]:
        return [self.id(n) for n in range(len(self))]


class MasterIndex:
    """Every blob known to the repository session; thread-safe.

    ``id_bytes``: how many bytes of each blob ID the table keeps (8 to 32, a multiple of 8; 32 keeps whole IDs and
    needs no resolver). ``resolver``: reads a pack's header (its blobs with full IDs), to tell a blob already in
    the table from a new one sharing its prefix, and for :meth:`entries`.
    """

    def __init__(self, id_bytes: int = 32, resolver: Resolver | None = None) -> None:
        if id_bytes % 8 or not 8 <= id_bytes <= 32:
            raise ValueError("id_bytes must be 8, 16, 24 or 32")
        self.id_bytes = id_bytes
        self.resolver = resolver
        self._packs = _Packs()
        self._table = _Rows.empty(id_bytes)
        self._pending: dict[bytes, Location] = {}
        self._exact: dict[bytes, Location] = {}  # blobs whose prefix another blob shares, by full ID
        self._lock = threading.Lock()
        # pack headers read by copies() (a pack's content never changes under its ID): a damaged or missing pack
        # sends every one of its blobs there, and their other copies are mostly in the same few packs
        self._copy_headers: OrderedDict[bytes, dict[tuple[int, int], bytes]] = OrderedDict()

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (a thread the child does not have may have held the old one)."""
        self._lock = threading.Lock()

    @property
    def packs(self) -> list[bytes]:
        """Every pack ID, by number."""
        with self._lock:
            return self._packs.all()

    def add_files(self, files: Iterable[IndexFile | IndexColumns]) -> None:
        """Bulk-add loaded index objects, skipping those another one supersedes.

        Each object is converted to compact columns as it arrives, so peak memory stays near the final size.
        """
        parts: dict[bytes, _Rows] = {}
        superseded: set[bytes] = set()
        with self._lock:
            for n, f in enumerate(files):
                c = f if isinstance(f, IndexColumns) else IndexColumns.from_file(f)
                index_id = c.index_id or n.to_bytes(8, "big")
                superseded.update(c.supersedes)
                first = self._packs.append(c.pack_ids)
                pack = np.repeat(np.arange(first, first + len(c.counts), dtype=np.uint32), c.counts)
                parts[index_id] = _Rows.from_ids(c.ids, self.id_bytes, pack, c.offset, c.length, c.raw, c.btype)
                del c, f
            live = [c for i, c in parts.items() if i not in superseded]
            parts.clear()
            rows = _concat(live, self.id_bytes)
            remap = self._packs.settle()
            if remap is not None:
                rows.pack = remap[rows.pack].astype(np.uint32)
            self._insert(rows)

    def add_pack(self, pack_id: bytes, entries: Iterable[BlobEntry]) -> None:
        with self._lock:
            p = self._packs.number(pack_id)
            for e in entries:
                self._pending[e.id] = (p, e.offset, e.length, e.raw_length, e.type)
            if len(self._pending) >= _MERGE_AT:
                self._merge()

    def _merge(self) -> None:
        self._packs.settle()
        if not self._pending:
            return
        items = list(self._pending.items())
        self._pending = {}
        n = len(items)
        ids = np.frombuffer(b"".join(i for i, _ in items), np.uint8).reshape(n, 32)
        loc = np.array([v for _, v in items], np.int64).reshape(n, 5)
        del items
        self._insert(
            _Rows.from_ids(
                ids,
                self.id_bytes,
                loc[:, 0].astype(np.uint32),
                loc[:, 1].astype(np.uint32),
                loc[:, 2].astype(np.uint32),
                loc[:, 3].astype(np.uint32),
                loc[:, 4].astype(np.uint8),
            )
        )

    # ---- building the table ---------------------------------------------------------------------------

    def _insert(self, new: _Rows) -> None:
        """Merge NEW rows (with their ID tails) into the sorted table."""
        if not len(new):
            return
        base = self._table
        order = np.argsort(new.keys, kind="stable")
        keys = new.keys[order]
        # rows that share their first 8 bytes with another new row or a table row: rare, handled one by one
        shared = np.zeros(len(keys), bool)
        shared[1:] = keys[1:] == keys[:-1]
        shared[:-1] |= shared[1:]
        if len(base):
            pos = np.minimum(base.keys.searchsorted(keys), len(base) - 1)
            shared |= base.keys[pos] == keys
        suspects = order[shared]
        drop_base: list[int] = []
        drop_new: set[int] = set()
        if len(suspects) and self.id_bytes < 32:
            drop_base, drop_new = self._split_collisions(new, suspects)
        del keys, shared
        new.tail = None
        if drop_new:
            order = order[~np.isin(order, np.fromiter(drop_new, np.int64, len(drop_new)))]
        new = new.take(order)
        del order
        if drop_base:
            keep = np.ones(len(base), bool)
            keep[drop_base] = False
            base = _Rows(base.cols()).take(keep)
        if not len(base):
            self._table = new
            return
        # insert the sorted new rows after the table rows with the same key: one copy of each column, no sort
        pos = base.keys.searchsorted(new.keys, side="right")
        for name in _Rows.NAMES:
            setattr(base, name, np.insert(getattr(base, name), pos, getattr(new, name), axis=0))
            setattr(new, name, None)
        self._table = base

    def _split_collisions(self, new: _Rows, suspects: npt.NDArray[np.int64]) -> tuple[list[int], set[int]]:
        """Among new rows sharing a prefix with other rows, find different blobs with the same prefix; move them
        (and the table rows concerned) to the exact dict. Returns (table rows to drop, new rows to drop)."""
        base = self._table
        groups: dict[bytes, list[tuple[str, int]]] = {}
        for i in suspects.tolist():
            groups.setdefault(new.prefix(i), []).append(("new", i))
        for prefix in groups:
            key = np.uint64(int.from_bytes(prefix[:8], "big"))
            j = int(base.keys.searchsorted(key))
            while j < len(base) and base.keys[j] == key:  # rows with this key, in any order of their rest
                if base.prefix(j) == prefix:
                    groups[prefix].append(("base", j))
                j += 1
        headers: dict[int, dict[tuple[int, int], bytes] | None] = {}
        drop_base: list[int] = []
        drop_new: set[int] = set()
        assert new.tail is not None
        for prefix, rows in groups.items():
            full: list[tuple[str, int, bytes | None]] = []
            for src, i in rows:
                if src == "new":
                    full.append((src, i, prefix + bytes(new.tail[i].tobytes())))
                else:
                    full.append((src, i, self._resolve(base, i, headers)))
            known = {f for _s, _i, f in full if f is not None}
            unresolved = any(f is None for _s, _i, f in full)
            if len(known) <= 1 and not unresolved:
                continue  # one blob, possibly in several packs: rows stay in the table
            for src, i, f in sorted(full, key=lambda x: x[0] != "base"):  # table rows first: they came first
                if f is None:
                    continue  # a table row we cannot identify stays; the new blobs are found exactly first
                table = base if src == "base" else new
                self._exact.setdefault(f, table.location(i))
                (drop_base.append(i) if src == "base" else drop_new.add(i))
        return drop_base, drop_new

    def _resolve(self, base: _Rows, i: int, headers: dict[int, dict[tuple[int, int], bytes] | None]) -> bytes | None:
        """The full ID of table row I, from its pack header (cached in HEADERS), or None."""
        p = int(base.pack[i])
        if p not in headers:
            headers[p] = None
            if self.resolver is not None:
                with contextlib.suppress(SauvegardeError):  # unreadable: the row stays unidentified
                    headers[p] = {(e.offset, e.type): e.id for e in self.resolver(self._packs.id(p))}
        found = headers[p]
        if found is None:
            return None
        blob_id = found.get((int(base.offset[i]), int(base.btype[i])))
        return blob_id if blob_id is not None and blob_id[: self.id_bytes] == base.prefix(i) else None

    # ---- lookups --------------------------------------------------------------------------------------

    def _get(self, blob_id: bytes) -> Location | None:
        hit = self._pending.get(blob_id)
        if hit is None and self._exact:
            hit = self._exact.get(blob_id)
        if hit is None:
            t = self._table
            i = t.find(blob_id, self.id_bytes)
            if i >= 0:
                hit = t.location(i)
        return hit

    def lookup(self, blob_id: bytes) -> tuple[bytes, BlobEntry] | None:
        """``(pack_id, entry)`` for a blob, or ``None``."""
        with self._lock:
            hit = self._get(blob_id)
            if hit is None:
                return None
            p, off, ln, raw, bt = hit
            return self._packs.id(p), BlobEntry(bt, blob_id, off, ln, raw)

    def copies(self, blob_id: bytes) -> list[tuple[bytes, BlobEntry]]:
        """Every known ``(pack_id, entry)`` of a blob, the one :meth:`lookup` gives first: a blob stored twice (by
        two sessions, or written again by ``repair``) has a table row per copy. For reading after a copy failed:
        with an ID prefix, a table row is checked against its pack header (through the resolver) and left out if
        it holds another blob; a row whose header cannot be read is kept (reading it fails the ID check)."""
        with self._lock:
            found: list[tuple[Location, bool]] = []  # (location, whether it is a table row to check)
            for hit in (self._pending.get(blob_id), self._exact.get(blob_id) if self._exact else None):
                if hit is not None:
                    found.append((hit, False))
            t = self._table
            i = t.find(blob_id, self.id_bytes)
            if i >= 0:
                key, rest = t.keys[i], blob_id[8 : self.id_bytes]
                while i < len(t) and t.keys[i] == key:  # rows of one key, in any order of the rest of the ID
                    if t.rest[i].tobytes() == rest:
                        found.append((t.location(i), self.id_bytes < 32))
                    i += 1
            located: list[tuple[bytes, Location, bool]] = []
            seen: set[Location] = set()
            for loc, check in found:
                if loc not in seen:
                    seen.add(loc)
                    located.append((self._packs.id(loc[0]), loc, check))
        out: list[tuple[bytes, BlobEntry]] = []
        for pack_id, (_p, off, ln, raw, bt), check in located:
            # the first is the one lookup gives, taken as it is; a row the header does not name stays (it fails
            # the ID check when read)
            if check and self.resolver and out and self._copy_header(pack_id).get((off, bt), blob_id) != blob_id:
                continue
            out.append((pack_id, BlobEntry(bt, blob_id, off, ln, raw)))
        return out

    def _copy_header(self, pack_id: bytes) -> dict[tuple[int, int], bytes]:
        """A pack's blobs by (offset, type), through the resolver, the last 16 kept; empty if unreadable (not
        kept: it may read next time)."""
        with self._lock:
            header = self._copy_headers.get(pack_id)
            if header is not None:
                self._copy_headers.move_to_end(pack_id)
                return header
        assert self.resolver is not None
        try:
            header = {(e.offset, e.type): e.id for e in self.resolver(pack_id)}
        except SauvegardeError:
            return {}
        with self._lock:
            self._copy_headers[pack_id] = header
            while len(self._copy_headers) > 16:
                self._copy_headers.popitem(last=False)
        return header

    def lookup_many(self, ids: list[bytes]) -> list[tuple[bytes, BlobEntry] | None]:
        """:meth:`lookup` of each ID, the table searched once for all (a restore plans a directory at a time)."""
        if not ids:
            return []
        with self._lock:
            t = self._table
            rows: list[int] = [-1] * len(ids)
            columns: list[list[int]] = [[], [], [], [], []]
            if len(t):
                pos, ok = t.search(b"".join(ids), self.id_bytes)
                rows = np.where(ok, pos, -1).tolist()
                columns = [c[pos].tolist() for c in (t.pack, t.offset, t.length, t.raw, t.btype)]
            out: list[tuple[bytes, BlobEntry] | None] = []
            pending, exact = self._pending, self._exact
            pack_ids: dict[int, bytes] = {}  # a directory's blobs are mostly in a few packs
            new_entry = tuple.__new__  # BlobEntry(...) goes through a generated __new__: twice the cost
            for j, blob_id in enumerate(ids):
                hit = pending.get(blob_id)
                if hit is None and exact:
                    hit = exact.get(blob_id)
                if hit is None:
                    if rows[j] >= 0:
                        hit = (columns[0][j], columns[1][j], columns[2][j], columns[3][j], columns[4][j])
                    else:  # not at the first row of its 8-byte key: another blob may share the key
                        i = t.find(blob_id, self.id_bytes)
                        hit = t.location(i) if i >= 0 else None
                if hit is None:
                    out.append(None)
                    continue
                p, off, ln, raw, bt = hit
                pack_id = pack_ids.get(p)
                if pack_id is None:
                    pack_id = pack_ids[p] = self._packs.id(p)
                out.append((pack_id, new_entry(BlobEntry, (bt, blob_id, off, ln, raw))))
            return out

    def _has(self, blob_id: bytes) -> bool:
        return (
            blob_id in self._pending
            or (bool(self._exact) and blob_id in self._exact)
            or self._table.find(blob_id, self.id_bytes) >= 0
        )

    def __contains__(self, blob_id: bytes) -> bool:
        with self._lock:
            return self._has(blob_id)

    def known(self, ids: list[bytes]) -> list[bool]:
        """For each item (concatenated 32-byte IDs), whether every ID is in the index: one vectorized search."""
        joined = b"".join(ids)
        n = len(joined) // 32
        if n == 0:
            return [True] * len(ids)  # nothing to look up: empty files
        with self._lock:
            t = self._table
            if not len(t):
                found: list[bool] = [False] * n
                keyed: list[bool] = found
            else:
                pos, hit = t.search(joined, self.id_bytes)
                found = hit.tolist()
                if all(found):
                    return [True] * len(ids)  # the common case (an unchanged re-backup): no loop over IDs
                arr = np.frombuffer(joined, np.uint8).reshape(n, 32)
                keyed = (t.keys[pos] == id_keys(arr)).tolist()
            pending, exact = self._pending, self._exact
            out: list[bool] = []
            k = 0
            for item in ids:
                m = len(item) // 32
                ok = True
                for j in range(k, k + m):
                    if found[j]:
                        continue
                    blob_id = joined[32 * j : 32 * j + 32]
                    # the search sees one row per 8-byte key (maybe another blob's): then the full path; no row
                    # with its key at all: only the dicts can hold it
                    ok = self._has(blob_id) if keyed[j] else blob_id in pending or (bool(exact) and blob_id in exact)
                    if not ok:
                        break
                out.append(ok)
                k += m
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._table) + len(self._pending) + len(self._exact)

    def has_pack(self, pack_id: bytes) -> bool:
        with self._lock:
            return self._packs.find(pack_id) is not None

    def entries(self) -> Iterator[tuple[bytes, BlobEntry]]:
        """Every ``(pack_id, entry)``, for check, stats and tests. With an ID prefix, full IDs are read back from
        the pack headers (through the resolver); a table row whose pack header cannot be read raises
        :class:`FormatError`."""
        with self._lock:
            self._merge()
            t = self._table
            exact = list(self._exact.items())
        for blob_id, (p, off, ln, raw, bt) in exact:
            yield self._packs.id(p), BlobEntry(bt, blob_id, off, ln, raw)
        if self.id_bytes == 32:
            for i in range(len(t)):
                p, off, ln, raw, bt = t.location(i)
                yield self._packs.id(p), BlobEntry(bt, t.prefix(i), off, ln, raw)
            return
        by_pack = np.argsort(t.pack, kind="stable")
        bounds = np.flatnonzero(np.diff(t.pack[by_pack])) + 1
        for rows in np.split(by_pack, bounds) if len(by_pack) else []:
            pack_id = self._packs.id(int(t.pack[rows[0]]))
            header = {(e.offset, e.type): e.id for e in self.resolver(pack_id)} if self.resolver else {}
            for i in rows.tolist():
                _p, off, ln, raw, bt = t.location(i)
                full_id = header.get((off, bt))
                if full_id is None or full_id[: self.id_bytes] != t.prefix(i):
                    raise FormatError(f"pack {pack_id.hex()}: no blob at offset {off} matches the index")
                yield pack_id, BlobEntry(bt, full_id, off, ln, raw)

    def table_bytes(self) -> int:
        """Memory held by the sorted columns (excludes pending entries and the pack list)."""
        return self._table.nbytes()

    def pack_bytes(self) -> int:
        """Memory held by the pack IDs and their lookup arrays."""
        p = self._packs
        return len(p._ids) + p._keys.nbytes + p._nums.nbytes
