"""The parent snapshot during a backup: directory listings kept as raw tree entries, and the unchanged-file test.

Building a :class:`Node` for every entry of every parent directory costs more than the rest of an unchanged backup,
so parent listings stay as the decoded msgpack maps of the tree format (see docs/format.md, "Trees"). An unchanged
file's entry is carried into the new tree as such a map, with only its access time and device number refreshed.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Any

import msgpack

from sauvegarde.errors import SauvegardeError
from sauvegarde.repository import Node, Repository
from sauvegarde.repository.tree import DIR, FILE

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
            if len(blob) >= _STREAM_FROM:
                return decode_listing(blob)
            body = msgpack.unpackb(blob)
            if body.get("v") != 1:
                return {}
            return {w["n"]: w for w in body["n"] if isinstance(w, dict) and isinstance(w.get("n"), bytes)}
        except (SauvegardeError, ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException):
            return {}

    def subtree(self, w: Wire | None) -> dict[bytes, Wire]:
        if w is None or w.get("t") != DIR:
            return {}
        sub = w.get("st")
        return self.listing(sub) if isinstance(sub, bytes) else {}


# Listings of this size or more (about 1,000 entries) are decoded by decode_listing: it takes less memory and more
# time than msgpack.unpackb (a third more on /usr/share/man/man1; half more over all the listings of /usr/share,
# most of them small, so these are left to msgpack.unpackb).
_STREAM_FROM = 128 * 1024

# The values the entries of a listing repeat (type, owner, group, kind, mode, device): msgpack makes an object of
# each, for each entry (only map keys are shared).
_SHARED_KEYS = ("t", "U", "G", "k", "m", "d")


def decode_listing(blob: bytes) -> dict[bytes, Wire]:
    """A tree blob's entries by name ({} unless it is a version-1 tree, see docs/format.md), decoded one entry at a
    time with their repeated values shared. The 17,938 entries of /usr/share/man/man1 (a 3 MB blob): 18.4 MiB kept
    (18.8 at the peak) through ``msgpack.unpackb``, 13.7 (15.8) here, in 47 ms instead of 35. The largest listing
    is what a backup's worker process peaks at when the files are unchanged (84-85 -> 79-80 MiB for the process
    tree on that copy of /usr/share, which then peaks at the key derivation's 81)."""
    # read from the blob in small pieces (fed whole, it would be copied into the unpacker's buffer); 0: no limit
    # below 4 GiB on the length of one string or array (the blob is in memory already)
    unpacker = msgpack.Unpacker(io.BytesIO(blob), max_buffer_size=0)
    version: object = None
    out: dict[bytes, Wire] = {}
    seen: dict[object, object] = {}
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key != "n":
            value = unpacker.unpack()
            if key == "v":
                version = value
            continue
        for _ in range(unpacker.read_array_header()):
            w = unpacker.unpack()
            if not isinstance(w, dict) or not isinstance(name := w.get("n"), bytes):
                continue
            for k in _SHARED_KEYS:
                value = w.get(k)
                if value is not None:
                    w[k] = seen.setdefault(value, value)
            out[name] = w
    if version != 1 or unpacker.tell() != len(blob):
        return {}
    return out


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
