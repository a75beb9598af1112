"""The blobs the snapshots refer to, for prune and retention upkeep: walked once, kept compact.

:func:`referenced_blobs` walks every snapshot's trees into a :class:`BlobSet`: the IDs sorted in one NumPy buffer
(32 bytes per blob, against about 100 for a Python set of bytes), with the IDs added since the last merge waiting
in one bytearray. Prune then asks, for every entry of the index at once, which are referred to
(:meth:`BlobSet.positions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Repository, Tree
from sauvegarde.repository.index import id_keys
from sauvegarde.repository.packed_index import ROW
from sauvegarde.repository.tree import DIR, FILE
from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")

_ID = 32
_MERGE_AT = 1 << 18  # IDs waiting (8 MiB) before they are merged into the sorted buffer (a linear merge)


class PruneRefused(SauvegardeError):
    """The repository is damaged in a way that makes pruning unsafe (a tree unreadable, a blob in no index or in
    no pack left)."""


class BlobSet:
    """A set of 32-byte blob IDs: sorted and unique in one buffer once :meth:`merge` has run."""

    def __init__(self) -> None:
        self._sorted: npt.NDArray[np.void] = np.empty(0, f"V{_ID}")
        self._keys: npt.NDArray[np.uint64] | None = None  # the sorted IDs' first 8 bytes, searched in their place
        self._waiting = bytearray()  # IDs added since the last merge, concatenated

    @classmethod
    def of(cls, ids: list[bytes]) -> BlobSet:
        s = cls()
        s.add(b"".join(ids))
        return s

    def add(self, joined: bytes) -> None:
        """Add the 32-byte IDs concatenated in ``joined``."""
        if len(joined) % _ID:
            raise ValueError("blob IDs are 32 bytes")
        self._waiting += joined
        if len(self._waiting) >= _MERGE_AT * _ID:
            self.merge()

    def merge(self) -> None:
        """Sort the waiting IDs into the buffer, once each.

        The waiting IDs are sorted on their own, then appended and merged with a stable sort (which finds the two
        sorted runs: linear time), and the repeats squeezed out in place; the set never needs much more than twice
        its size.
        """
        if not self._waiting:
            return
        new = np.frombuffer(self._waiting, f"V{_ID}")  # sorted in place: the buffer is this array's from now on
        self._waiting = bytearray()
        new.sort()
        new = _squeeze(new)
        if len(self._sorted):
            both = np.concatenate([self._sorted, new])
            del new
            self._sorted = np.empty(0, f"V{_ID}")  # the two parts are freed before the sort
            both.sort(kind="stable")
            new = _squeeze(both)
        self._sorted, self._keys = new, None

    @property
    def sorted(self) -> npt.NDArray[np.void]:
        """Every ID, sorted, each once."""
        self.merge()
        return self._sorted

    def __len__(self) -> int:
        return len(self.sorted)

    def positions(self, ids: npt.NDArray[np.void]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """For each ID (a ``V32`` array): its position in :attr:`sorted` and whether it is there (the position is
        meaningless where it is not)."""
        s = self.sorted
        if not len(s):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        # searched by 8-byte key: comparing whole IDs (a generic 32-byte compare) made the search 10x slower
        if self._keys is None:
            self._keys = _keys(s)
        keys, wanted = self._keys, _keys(ids)
        pos = np.minimum(keys.searchsorted(wanted), len(s) - 1)
        hit = s[pos] == ids
        for i in np.flatnonzero(~hit & (keys[pos] == wanted)).tolist():  # a key several IDs share (rare)
            j = int(pos[i]) + 1
            while j < len(s) and keys[j] == wanted[i]:
                if s[j] == ids[i]:
                    pos[i], hit[i] = j, True
                    break
                j += 1
        return pos, hit

    def __contains__(self, blob_id: object) -> bool:
        if not isinstance(blob_id, bytes) or len(blob_id) != _ID:
            return False
        return bool(self.positions(np.frombuffer(blob_id, f"V{_ID}"))[1][0])

    def __iter__(self) -> Iterator[bytes]:
        return (v.tobytes() for v in self.sorted)

    def holds_any(self, packed: bytes) -> bool:
        """Whether any of a pack's entries (packed, see repository.packed_index) is in the set."""
        return bool(self.positions(np.frombuffer(packed, ROW)["id"])[1].any())


_SQUEEZE_ROWS = 1 << 20


def _keys(ids: npt.NDArray[np.void]) -> npt.NDArray[np.uint64]:
    """:func:`~sauvegarde.repository.index.id_keys` of ``V32`` IDs."""
    return id_keys(np.ascontiguousarray(ids).view(np.uint8).reshape(len(ids), _ID))


def _squeeze(ids: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """The sorted ``ids`` with each repeat dropped, moved down in place a block at a time (a view of ``ids``,
    copied when a quarter or more of it went)."""
    if len(ids) < 2:
        return ids
    first = np.empty(len(ids), bool)
    first[0] = True
    first[1:] = ids[1:] != ids[:-1]
    if first.all():
        return ids
    w = 0
    for i in range(0, len(ids), _SQUEEZE_ROWS):
        block = ids[i : i + _SQUEEZE_ROWS][first[i : i + _SQUEEZE_ROWS]]  # a copy: writing below reads nothing left
        ids[w : w + len(block)] = block
        w += len(block)
    return ids[:w].copy() if w < len(ids) * 3 // 4 else ids[:w]


def referenced_blobs(repo: Repository) -> BlobSet:
    """IDs of every tree and data blob reachable from a snapshot; raises :class:`PruneRefused` if a tree is
    unreadable or a blob is in no index (prune must not run then)."""
    used = BlobSet()
    trees: set[bytes] = set()  # walked already (unchanged directories are shared between snapshots)
    for snap in repo.snapshots():
        stack = [bytes.fromhex(snap.tree)]
        while stack:
            tree_id = stack.pop()
            if tree_id in trees:
                continue
            try:
                links = Tree.links(repo.load_blob(tree_id), f"tree {tree_id.hex()}")
            except SauvegardeError as exc:
                raise PruneRefused(
                    f"snapshot {snap.short_id}: {exc}; run `check` and `repair` before pruning"
                ) from None
            trees.add(tree_id)
            content = [ids for kind, ids, _sub in links if kind == FILE and ids]
            missing = _not_indexed(repo, content)
            if missing is not None:
                raise PruneRefused(
                    f"snapshot {snap.short_id} refers to blob {missing.hex()} which is in no index; "
                    "run `check` and `repair` before pruning"
                )
            used.add(b"".join(content))
            stack.extend(sub for kind, _ids, sub in links if kind == DIR and sub is not None)
    used.add(b"".join(trees))
    used.merge()
    return used


def _not_indexed(repo: Repository, content: list[bytes]) -> bytes | None:
    """A blob of ``content`` (files' concatenated IDs) in no index, if any: one search for them all first."""
    if not content or all(repo.index.known(content)):
        return None
    for ids in content:
        for i in range(0, len(ids), _ID):
            if ids[i : i + _ID] not in repo.index:
                return ids[i : i + _ID]
    return None
