"""Where ``check`` finds each blob (the packs the index places it in) and which blobs the snapshots refer to.

Built once the packs are checked, from their packed index entries (which it frees as it goes), and used by the
snapshot walk. Two forms with one interface:

- :class:`DictPlaces` for small repositories: a dict from blob ID to its pack (a list when several packs hold
  it), about 105 bytes per blob with the ID object; no NumPy import (60 ms and 16 MiB of RSS, which the 60 bytes
  per blob the arrays save make up for from about :data:`ARRAY_FROM` blobs).
- :class:`ArrayPlaces` from :data:`ARRAY_FROM` blobs: the IDs sorted in one NumPy buffer with a pack number and
  a "referred to" flag each, 45 bytes per blob (32 for the ID, 4 for the pack, 8 for the ID's first word kept
  for searching, 1), built in place (its peak is about its size), and the walk looks a tree's content IDs up
  together (one search per tree, not per blob). Blobs held by several packs (an interrupted prune or backup
  leaves some) keep their packs in a small dict beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sauvegarde.repository.index import id_keys
from sauvegarde.repository.packed_index import ENTRY, ID_AT
from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")  # imported by ArrayPlaces only (see the module)

ARRAY_FROM = 300_000  # blobs from which ArrayPlaces is used (16 MiB / 60 B per blob: about 280,000)
_ID = 32


class DictPlaces:
    """Blob -> pack (or packs), and which blobs were referred to; for small repositories."""

    def __init__(self, packs: dict[bytes, bytes]) -> None:
        self._unseen: dict[bytes, bytes | list[bytes]] = {}
        self._seen: dict[bytes, bytes | list[bytes]] = {}
        self.missing: set[bytes] = set()  # referred to, in no index
        unseen = self._unseen
        size = ENTRY.size
        for pid in list(packs):
            packed = packs.pop(pid)
            for k in range(0, len(packed), size):
                blob_id = packed[k + ID_AT : k + ID_AT + _ID]
                held = unseen.setdefault(blob_id, pid)
                if held is not pid:  # another copy (in another pack: one listed twice in a pack is one copy)
                    if not isinstance(held, list):
                        unseen[blob_id] = [held, pid]
                    elif pid not in held:
                        held.append(pid)
        self.duplicates = sum(isinstance(p, list) for p in unseen.values())

    def packs(self, blob_id: bytes) -> list[bytes]:
        """The packs the index places the blob in (none: in no index)."""
        packs = self._seen.get(blob_id)
        if packs is None:
            packs = self._unseen.get(blob_id)
        return [] if packs is None else [packs] if isinstance(packs, bytes) else packs

    def use(self, blob_id: bytes) -> bool:
        """Record that a snapshot refers to the blob; whether it is the first time."""
        if blob_id in self._seen or blob_id in self.missing:
            return False
        packs = self._unseen.pop(blob_id, None)
        if packs is None:
            self.missing.add(blob_id)
        else:
            self._seen[blob_id] = packs
        return True

    def use_all(self, joined: bytes) -> tuple[list[bytes], bool]:
        """:meth:`use` for each 32-byte ID in ``joined``: the IDs referred to for the first time (in order, each
        once), and whether every one of them is in some index."""
        use, first = self.use, []
        for i in range(0, len(joined), _ID):
            blob_id = joined[i : i + _ID]
            if use(blob_id):
                first.append(blob_id)
        indexed = not self.missing or all(joined[i : i + _ID] not in self.missing for i in range(0, len(joined), _ID))
        return first, indexed

    @property
    def referenced(self) -> int:
        return len(self._seen) + len(self.missing)

    @property
    def unused(self) -> int:
        return len(self._unseen)


class ArrayPlaces:
    """The same as :class:`DictPlaces`, in sorted NumPy arrays; for large repositories."""

    def __init__(self, packs: dict[bytes, bytes]) -> None:
        self.missing: set[bytes] = set()
        total = sum(len(p) for p in packs.values()) // ENTRY.size
        self._pack_ids: list[bytes] = []
        # one row per entry: the ID, then its pack's number (big-endian), sorted in place as 36-byte strings (the
        # order of the IDs' bytes, and of the packs among a blob's copies); pages are touched as rows are filled
        # while the packed entries are freed, so the map never needs much more than its own size
        rec = np.empty((total, _ID + 4), np.uint8)
        row_type = np.dtype([("t", f"V{ID_AT}"), ("id", "u1", (_ID,)), ("rest", f"V{ENTRY.size - ID_AT - _ID}")])
        at = 0
        for pid in list(packs):
            rows = np.frombuffer(packs.pop(pid), row_type)
            rec[at : at + len(rows), :_ID] = rows["id"]
            rec[at : at + len(rows), _ID:] = np.array([len(self._pack_ids)], ">u4").view(np.uint8)
            self._pack_ids.append(pid)
            at += len(rows)
            del rows
        rec.view(f"V{_ID + 4}").reshape(-1).sort()
        keys = id_keys(rec)
        # a blob in several packs: the first row of its run stays, the packs of every row go to a small dict
        self._more: dict[bytes, list[bytes]] = {}
        same = np.zeros(total, bool)
        for i in np.flatnonzero(keys[1:] == keys[:-1]) + 1:  # rows whose first word repeats (rare): compare all
            same[i] = bool((rec[i, :_ID] == rec[i - 1, :_ID]).all())
        if same.any():
            for i in np.flatnonzero(same):
                first = int(i) - 1
                while same[first]:
                    first -= 1
                blob_id = rec[first, :_ID].tobytes()
                packs_of = self._more.setdefault(blob_id, [self._pack_ids[self._num(rec[first])]])
                pid = self._pack_ids[self._num(rec[i])]
                if pid not in packs_of:  # listed twice in one pack: one copy
                    packs_of.append(pid)
            self._more = {blob_id: p for blob_id, p in self._more.items() if len(p) > 1}
            keep = ~same
            rec, keys = rec[keep], keys[keep]
        self.duplicates = len(self._more)
        self._rec = rec  # the ID in the first 32 bytes of each row, the pack number in the last 4
        self._keys = keys
        self._seen = np.zeros(len(rec), bool)

    @staticmethod
    def _num(row: npt.NDArray[np.uint8]) -> int:
        return int.from_bytes(row[_ID:].tobytes(), "big")

    def _find(self, joined: bytes) -> npt.NDArray[np.int64]:
        """Row of each 32-byte ID in ``joined``, or -1."""
        q = np.frombuffer(joined, np.uint8).reshape(-1, _ID)
        out: npt.NDArray[np.int64] = np.full(len(q), -1, np.int64)
        n = len(self._rec)
        if not n or not len(q):
            return out
        qk = id_keys(q)
        pos = self._keys.searchsorted(qk)
        at = np.minimum(pos, n - 1)
        hit = (pos < n) & (self._rec[at, :_ID] == q).all(axis=1)
        out[hit] = at[hit]
        # an ID whose first word another one shares and that sorts after it (rare): look on along the run
        for j in np.flatnonzero(~hit & (pos < n) & (self._keys[at] == qk)):
            i = int(pos[j]) + 1
            while i < n and self._keys[i] == qk[j]:
                if (self._rec[i, :_ID] == q[j]).all():
                    out[j] = i
                    break
                i += 1
        return out

    def packs(self, blob_id: bytes) -> list[bytes]:
        more = self._more.get(blob_id)
        if more is not None:
            return list(more)
        row = int(self._find(blob_id)[0])
        return [] if row < 0 else [self._pack_ids[self._num(self._rec[row])]]

    def use(self, blob_id: bytes) -> bool:
        return bool(self.use_all(blob_id)[0])

    def use_all(self, joined: bytes) -> tuple[list[bytes], bool]:
        rows = self._find(joined)
        found = rows >= 0
        first: list[bytes] = []
        if found.any():
            r = rows[found]
            new = ~self._seen[r]
            if new.any():
                # each row once, at its first place in ``joined`` (a tree may list a blob twice)
                cand = np.flatnonzero(found)[new]
                _, at = np.unique(rows[cand], return_index=True)
                cand = np.sort(cand[at])
                self._seen[rows[cand]] = True
                first = [joined[i * _ID : (i + 1) * _ID] for i in cand.tolist()]
        indexed = bool(found.all())
        if not indexed:
            for i in np.flatnonzero(~found).tolist():
                blob_id = joined[i * _ID : (i + 1) * _ID]
                if blob_id not in self.missing:
                    self.missing.add(blob_id)
                    first.append(blob_id)
            if len(first) > 1:
                # in the order of ``joined``, as DictPlaces gives them
                where: dict[bytes, int] = {}
                for i in range(len(joined) // _ID):
                    where.setdefault(joined[i * _ID : (i + 1) * _ID], i)
                first.sort(key=where.__getitem__)
        return first, indexed

    @property
    def referenced(self) -> int:
        return int(self._seen.sum()) + len(self.missing)

    @property
    def unused(self) -> int:
        return len(self._seen) - int(self._seen.sum())


def build_places(packs: dict[bytes, bytes]) -> DictPlaces | ArrayPlaces:
    """The blob map of a check, from each pack's packed entries (``packs`` is emptied as it is read)."""
    total = sum(len(p) for p in packs.values()) // ENTRY.size
    return ArrayPlaces(packs) if total >= ARRAY_FROM else DictPlaces(packs)
