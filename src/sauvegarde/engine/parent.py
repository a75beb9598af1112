"""The parent snapshot during a backup: directory listings kept as raw tree entries, and the unchanged-file test.

Building a :class:`Node` for every entry of every parent directory costs more than the rest of an unchanged backup,
so parent listings stay as the decoded msgpack maps of the tree format (see docs/format.md, "Trees"). An unchanged
file's entry is carried into the new tree as such a map, with only its access time and device number refreshed.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import msgpack

from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node, Repository, Tree
from sauvegarde.repository.tree import DIR, FILE, LARGE_TREE

Wire = dict[str, Any]


class ParentTrees:
    """Loads parent directory listings; a damaged or unreadable listing counts as empty (its files are re-read)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def listing(self, tree_id: bytes | None) -> dict[bytes, Wire]:
        if tree_id is None:
            return {}
        try:
            blob = self.repo.load_blob(tree_id)
            if len(blob) >= LARGE_TREE:  # decoded entry by entry, repeated values shared (see Tree.wires)
                wires = Tree.wires(blob)
            else:  # in one call: faster for the many small listings
                body = msgpack.unpackb(blob)
                if body.get("v") != 1:
                    return {}
                wires = body["n"]
            return {w["n"]: w for w in wires if isinstance(w, dict) and isinstance(w.get("n"), bytes)}
        except (SauvegardeError, ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException):
            return {}

    def subtree(self, w: Wire | None) -> dict[bytes, Wire]:
        if w is None or w.get("t") != DIR:
            return {}
        sub = w.get("st")
        return self.listing(sub) if isinstance(sub, bytes) else {}


def content_ids(w: Wire) -> bytes:
    """The concatenated 32-byte blob IDs of a file entry (empty if none or malformed)."""
    c = w.get("c", b"")
    return c if isinstance(c, bytes) and len(c) % 32 == 0 else b""


def stat_unchanged(st: os.stat_result, w: Wire) -> bool:
    """Whether a regular file's stat matches its parent entry: same size, mtime, ctime and inode, and content known.

    ctime moves with every change of mode, owner, link count or xattrs, so the entry's metadata still holds.
    """
    size = w.get("s", 0)
    return (
        w.get("t") == FILE
        and w.get("mt", 0) == st.st_mtime_ns
        and w.get("ct", 0) == st.st_ctime_ns
        and size == st.st_size
        and w.get("i", 0) == st.st_ino
        and stat.S_ISREG(st.st_mode)
        and (bool(content_ids(w)) or size == 0)
    )


def node_unchanged(node: Node, w: Wire) -> bool:
    """The same test for a node already built from stat."""
    return (
        w.get("t") == FILE
        and w.get("mt", 0) == node.mtime_ns
        and w.get("ct", 0) == node.ctime_ns
        and w.get("s", 0) == node.size
        and w.get("i", 0) == node.inode
        and (bool(content_ids(w)) or node.size == 0)
    )


def _refreshed(st: os.stat_result) -> tuple[tuple[str, int], ...]:
    """The fields of a carried-over entry that come from the current stat (absent when zero)."""
    return (("at", st.st_atime_ns), ("d", st.st_dev))


def entry_is_current(w: Wire, st: os.stat_result) -> bool:
    """Whether :func:`reuse_entry` would leave the entry as it is."""
    return all(w.get(key, 0) == value for key, value in _refreshed(st))


def reuse_entry(w: Wire, st: os.stat_result) -> Wire:
    """The parent entry, updated in place for the new tree with the current access time and device number (not
    copied: a directory of 18,000 unchanged files would hold both, 8 MiB more)."""
    for key, value in _refreshed(st):
        if value:
            w[key] = value
        else:
            w.pop(key, None)
    return w


def split_ids(ids: bytes) -> list[bytes]:
    return [ids[i : i + 32] for i in range(0, len(ids), 32)]
