"""Copy: transfer snapshots from one repository into another that has its own keys.

Blob IDs are keyed with each repository's own ``id_key``, so the same content has different IDs in the two
repositories. A copy therefore reads every data blob of a snapshot from the source, saves it in the destination
(which computes its ID and skips it when already stored), and rewrites every tree bottom-up with the new IDs of its
file contents and subtrees. Memo tables map source IDs to destination IDs, so content shared between files, trees
or snapshots is read and sent once per run.

Snapshots are copied one at a time, oldest first; trees are walked depth first with an explicit stack (only the
trees on the current path are held in memory). Before each snapshot is saved the destination is flushed, so no
snapshot ever refers to unindexed data. The new snapshot records its source in ``original`` (the source's own
``original`` when it was itself a copy), which is how a later run recognises snapshots already copied.

Trees are rewritten at the wire level: only the content lists (``c``) and subtree IDs (``st``) change, so node
fields this version does not know are carried over untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from sauvegarde.engine.events import Counters
from sauvegarde.errors import FormatError
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.repository.blobs import BlobType

_ID_LEN = 32


@dataclass
class CopyResult:
    """What happened to one source snapshot."""

    source_id: str
    time: str
    status: str  # "copied" or "skipped"
    dest_id: str  # the new snapshot, or the one already in the destination
    blobs_added: int = 0  # blobs (data and tree) newly stored in the destination
    bytes_added: int = 0  # bytes of new pack files written to the destination

    @property
    def copied(self) -> bool:
        return self.status == "copied"

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass
class _Frame:
    """A tree being rewritten: its source ID, its decoded wire form, and the next node to look at."""

    src_id: bytes
    body: dict[str, Any]
    pos: int = 0
    nodes: list[dict[str, Any]] = field(default_factory=list)


class Copier:
    """Copies snapshots from ``src`` to ``dst``; one instance shares its ID memo across all its snapshots."""

    def __init__(self, src: Repository, dst: Repository) -> None:
        self.src = src
        self.dst = dst
        self.counters = Counters()  # files and plaintext bytes of data blobs read from the source
        self._blobs: dict[bytes, bytes] = {}  # source data blob ID -> destination ID
        self._trees: dict[bytes, bytes] = {}  # source tree ID -> destination ID
        self._added = 0
        self._known: dict[str, str] | None = None  # source-side snapshot ID -> destination snapshot ID
        self._prepared = False

    # ---- snapshots ------------------------------------------------------------------------------------

    def run(
        self, snapshots: Sequence[Snapshot], on_result: Callable[[CopyResult], None] | None = None
    ) -> list[CopyResult]:
        """Copy ``snapshots`` (oldest first), calling ``on_result`` as each one is done."""
        results = []
        for snap in oldest_first(snapshots):
            result = self.copy_snapshot(snap)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def known(self) -> dict[str, str]:
        """Which snapshot IDs the destination already holds: its own IDs and the ``original`` of its copies."""
        if self._known is None:
            self._known = {}
            for d in self.dst.snapshots():
                self._known[d.id] = d.id
                if d.original:
                    self._known.setdefault(d.original, d.id)
        return self._known

    def copy_snapshot(self, snap: Snapshot) -> CopyResult:
        """Copy one snapshot unless the destination already has it (or the snapshot it is a copy of)."""
        known = self.known()
        for sid in (snap.original, snap.id):
            if sid and sid in known:
                return CopyResult(snap.id, snap.time, "skipped", known[sid])
        if not self._prepared:
            self.dst.index_orphan_packs()  # reuse what an interrupted copy or backup already uploaded
            self._prepared = True
        self._added = 0
        stored_before = self.dst.stored_bytes
        root = self.copy_tree(bytes.fromhex(snap.tree))
        self.dst.flush()
        new = dataclasses.replace(
            snap,
            tree=root.hex(),
            parent=known.get(snap.parent) if snap.parent else None,  # the parent only if it is in the destination
            original=snap.original or snap.id,
            tags=list(snap.tags),
            paths=list(snap.paths),
            summary=dict(snap.summary),
            extra=dict(snap.extra),
            id="",
        )
        dest_id = self.dst.save_snapshot(new)
        known[snap.id] = dest_id
        if snap.original:
            known.setdefault(snap.original, dest_id)
        return CopyResult(snap.id, snap.time, "copied", dest_id, self._added, self.dst.stored_bytes - stored_before)

    # ---- trees and blobs ------------------------------------------------------------------------------

    def copy_tree(self, root: bytes) -> bytes:
        """Copy the tree ``root`` and everything below it; returns its ID in the destination."""
        done = self._trees.get(root)
        if done is not None:
            return done
        stack = [self._open(root)]
        on_stack = {root}
        while stack:
            frame = stack[-1]
            child = self._advance(frame)
            if child is not None:
                if child in on_stack:
                    raise FormatError(f"tree {frame.src_id.hex()}: contains itself (damaged)")
                stack.append(self._open(child))
                on_stack.add(child)
                continue
            new_id = self._save_tree(frame.body)
            self._trees[frame.src_id] = new_id
            stack.pop()
            on_stack.discard(frame.src_id)
            if stack:
                parent = stack[-1]
                parent.nodes[parent.pos]["st"] = new_id
                parent.pos += 1
        return self._trees[root]

    def _open(self, tree_id: bytes) -> _Frame:
        what = f"tree {tree_id.hex()}"
        try:
            body = msgpack.unpackb(self.src.load_blob(tree_id))
            if not isinstance(body, dict) or body.get("v") != 1:
                raise ValueError("unknown tree version")
            nodes = body["n"]
            if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
                raise ValueError("nodes are not a list of maps")
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise FormatError(f"{what}: malformed tree ({exc})") from None
        return _Frame(tree_id, body, 0, nodes)

    def _advance(self, frame: _Frame) -> bytes | None:
        """Rewrite the frame's nodes from ``pos`` on; stop at the first subtree not copied yet and return its ID.

        The node naming that subtree stays at ``pos``: :meth:`copy_tree` fills in its new ID and moves past it.
        """
        what = f"tree {frame.src_id.hex()}"
        while frame.pos < len(frame.nodes):
            node = frame.nodes[frame.pos]
            content = node.get("c")
            if content:
                if not isinstance(content, bytes) or len(content) % _ID_LEN:
                    raise FormatError(f"{what}: malformed content list")
                node["c"] = b"".join(self._copy_data(content[i : i + _ID_LEN]) for i in range(0, len(content), _ID_LEN))
                self.counters.add(files=1)
            sub = node.get("st")
            if sub is not None:
                if not isinstance(sub, bytes) or len(sub) != _ID_LEN:
                    raise FormatError(f"{what}: malformed subtree ID")
                new = self._trees.get(sub)
                if new is None:
                    return sub
                node["st"] = new
            frame.pos += 1
        return None

    def _save_tree(self, body: dict[str, Any]) -> bytes:
        new_id, added = self.dst.save_blob(BlobType.TREE, bytes(msgpack.packb(body)))
        self._added += added
        return new_id

    def _copy_data(self, blob_id: bytes) -> bytes:
        new = self._blobs.get(blob_id)
        if new is None:
            data = self.src.load_blob(blob_id)
            new, added = self.dst.save_blob(BlobType.DATA, data)
            self._added += added
            self._blobs[blob_id] = new
            self.counters.add(nbytes=len(data))
        return new


def oldest_first(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The order in which to copy: a parent before its children, so their ``parent`` links can be kept."""
    return sorted(snapshots, key=lambda s: (s.datetime, s.id))


def copy_snapshots(
    src: Repository,
    dst: Repository,
    snapshots: Sequence[Snapshot],
    on_result: Callable[[CopyResult], None] | None = None,
) -> list[CopyResult]:
    """Copy ``snapshots`` of ``src`` into ``dst``; see :class:`Copier`."""
    return Copier(src, dst).run(snapshots, on_result)
