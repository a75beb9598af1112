"""Directory trees: one blob per directory listing its entries and their metadata.

A tree blob is msgpack ``{"v": 1, "n": [node, ...]}`` with nodes sorted by their name bytes. A node is a map with
short keys; fields equal to their default are omitted. File content is the concatenation of the 32-byte IDs of its
data blobs; a directory node names its subtree blob.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgpack

from sauvegarde.errors import FormatError

FILE, DIR, SYMLINK, FIFO, CHARDEV, BLOCKDEV, SOCKET = "file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket"
NODE_TYPES = (FILE, DIR, SYMLINK, FIFO, CHARDEV, BLOCKDEV, SOCKET)

# field name -> (key on storage, default)
_FIELDS: dict[str, tuple[str, Any]] = {
    "mode": ("m", 0),
    "uid": ("u", 0),
    "gid": ("g", 0),
    "user": ("U", ""),
    "group": ("G", ""),
    "mtime_ns": ("mt", 0),
    "atime_ns": ("at", 0),
    "ctime_ns": ("ct", 0),
    "size": ("s", 0),
    "inode": ("i", 0),
    "dev": ("d", 0),
    "nlink": ("l", 1),
    "rdev": ("r", 0),
    "target": ("lt", b""),
    "sparse": ("sp", False),
    "kind": ("k", ""),
}

# the stored fields in the order of Node's constructor after name and type, their defaults and exact types
_KEYS = tuple(key for key, _default in _FIELDS.values())
_DEFAULTS = tuple(default for _key, default in _FIELDS.values())
_TYPES = tuple(type(default) for default in _DEFAULTS)


@dataclass(slots=True)
class Node:
    """One directory entry. ``mode`` holds permission bits only (including setuid, setgid, sticky)."""

    name: bytes
    type: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    size: int = 0
    inode: int = 0
    dev: int = 0
    nlink: int = 1
    rdev: int = 0
    target: bytes = b""
    sparse: bool = False
    kind: str = ""  # the content's kind as the ransomware guard saw it ("text", "zip", "rnd", ...); optional
    content: list[bytes] = field(default_factory=list)
    subtree: bytes | None = None
    xattrs: dict[bytes, bytes] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        # Written out field by field: this runs once per entry of every directory backed up.
        d: dict[str, Any] = {"n": self.name, "t": self.type}
        if self.mode:
            d["m"] = self.mode
        if self.uid:
            d["u"] = self.uid
        if self.gid:
            d["g"] = self.gid
        if self.user:
            d["U"] = self.user
        if self.group:
            d["G"] = self.group
        if self.mtime_ns:
            d["mt"] = self.mtime_ns
        if self.atime_ns:
            d["at"] = self.atime_ns
        if self.ctime_ns:
            d["ct"] = self.ctime_ns
        if self.size:
            d["s"] = self.size
        if self.inode:
            d["i"] = self.inode
        if self.dev:
            d["d"] = self.dev
        if self.nlink != 1:
            d["l"] = self.nlink
        if self.rdev:
            d["r"] = self.rdev
        if self.target:
            d["lt"] = self.target
        if self.sparse:
            d["sp"] = True
        if self.kind:
            d["k"] = self.kind
        if self.content:
            d["c"] = b"".join(self.content)
        if self.subtree is not None:
            d["st"] = self.subtree
        if self.xattrs:
            d["x"] = self.xattrs
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Node:
        # Runs once per entry of every tree read: positional arguments (keywords cost twice as much).
        name, typ, values, content, subtree, xattrs = _checked(d)
        return cls(  # type: ignore[call-arg]  # values: exactly the fields of _FIELDS, in order
            name,
            typ,
            *values,
            [content[i : i + 32] for i in range(0, len(content), 32)] if content else [],
            subtree,
            dict(xattrs) if xattrs else {},
        )


Checked = tuple[bytes, str, tuple[Any, ...], bytes, bytes | None, dict[Any, Any] | None]


def _checked(d: dict[str, Any]) -> Checked:
    """A node's wire map checked: name, type, the other fields in constructor order, content (concatenated IDs),
    subtree and raw xattrs. Every reader of trees goes through this, so what one accepts all accept."""
    values = tuple(map(d.get, _KEYS, _DEFAULTS))
    if tuple(map(type, values)) != _TYPES:
        for key, value, typ in zip(_KEYS, values, _TYPES, strict=True):
            if type(value) is not typ:
                raise TypeError(f"field {key!r} is a {type(value).__name__}")
    typ = d["t"]
    if typ not in NODE_TYPES:
        raise ValueError(f"unknown node type {typ!r}")
    content = d.get("c")
    if content:
        content = _bin(content)
        if len(content) % 32:
            raise ValueError("content list is not a whole number of IDs")
    else:
        content = b""
    subtree = d.get("st")
    if subtree is not None:
        subtree = _bin(subtree)
    xattrs = d.get("x")
    if xattrs is not None:
        if not isinstance(xattrs, dict):
            raise TypeError(f"xattrs are a {type(xattrs).__name__}")
        for k, v in xattrs.items():
            _bin(k)
            _bin(v)
    return _bin(d["n"]), typ, values, content, subtree, xattrs


def _bin(value: Any) -> bytes:
    """A bytes field from the wire (``bytes(5)`` would silently give five NULs, ``bytes(2**40)`` exhaust memory)."""
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return value


@dataclass
class Tree:
    nodes: list[Node] = field(default_factory=list)

    def encode(self) -> bytes:
        self.nodes.sort(key=lambda n: n.name)
        return bytes(msgpack.packb({"v": 1, "n": [n.to_wire() for n in self.nodes]}))

    @staticmethod
    def encode_entries(entries: list[Node | dict[str, Any]]) -> bytes:
        """Encode nodes mixed with entries already in wire form (carried over unchanged from a parent tree)."""
        wires = [e if isinstance(e, dict) else e.to_wire() for e in entries]
        wires.sort(key=lambda w: w["n"])
        return bytes(msgpack.packb({"v": 1, "n": wires}))

    @classmethod
    def decode(cls, data: bytes, what: str = "tree") -> Tree:
        return cls(_decode_entries(data, what, Node.from_wire))

    @staticmethod
    def wires(data: bytes, what: str = "tree") -> list[dict[str, Any]]:
        """The entries of a tree as their wire maps (what is not a map skipped), the tree checked as :meth:`decode`
        checks it: for the backup's parent listings, which carry unchanged entries over as maps."""
        return [d for d in _decode_entries(data, what, _as_is) if isinstance(d, dict)]

    @staticmethod
    def links(data: bytes, what: str = "tree") -> list[Link]:
        """What a tree refers to, per node: type, content IDs (concatenated) and subtree. The tree is checked
        exactly as :meth:`decode` checks it, without building nodes (check reads every tree of a repository)."""
        return _decode_entries(data, what, _link, keep=False)

    def find(self, name: bytes) -> Node | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def by_name(self) -> dict[bytes, Node]:
        return {n.name: n for n in self.nodes}


Link = tuple[str, bytes, bytes | None]
_T = TypeVar("_T")


def _link(d: dict[str, Any]) -> Link:
    _name, typ, _values, content, subtree, _xattrs = _checked(d)
    return typ, content, subtree


def _as_is(d: Any) -> Any:
    return d


# A tree blob this large (about 1,000 entries) has the values its entries repeat (type, owner, group, kind, mode,
# device) decoded into one object each rather than one per entry (msgpack shares only map keys): the 17,938 entries
# of /usr/share/man/man1 as nodes 16.4 -> 12 MiB, as maps 18.4 -> 13.7 MiB, in a sixth more time. Smaller trees
# never make a peak.
LARGE_TREE = 128 * 1024
_SHARED_KEYS = ("t", "U", "G", "k", "m", "d")


def _sharing() -> Callable[[Any], Any]:
    seen: dict[tuple[type, object], object] = {}

    def share(d: Any) -> Any:
        if isinstance(d, dict):
            for key in _SHARED_KEYS:
                value = d.get(key)
                if value is not None:  # by type too: 1 and True are equal, and only one of them is valid
                    d[key] = seen.setdefault((value.__class__, value), value)
        return d

    return share


def _decode_entries(data: bytes, what: str, convert: Callable[[dict[str, Any]], _T], keep: bool = True) -> list[_T]:
    """The entries of a tree blob, converted one by one: the wire maps of a large directory are never all held at
    once beside what they become (18,000 entries: 19 MiB of maps for 3.4 MiB of nodes). ``keep``: the caller keeps
    what ``convert`` returns, so a large tree's repeated values are worth sharing (not for links, which keep only
    content and subtree IDs: sharing made check's reading of man1 63 -> 87 ms)."""
    try:
        # a large tree is read in small pieces (fed whole, it would be copied into the unpacker's buffer: 3 MB more
        # for man1); the limits on one string or array stay the blob's size
        large = len(data) >= LARGE_TREE
        up = msgpack.Unpacker(io.BytesIO(data) if large else None, max_buffer_size=max(1, len(data)))
        if not large:
            up.feed(data)
        share = _sharing() if large and keep else _as_is
        version: object = None
        entries: list[_T] | None = None
        for _ in range(up.read_map_header()):
            key = up.unpack()
            if key == "n":
                entries = [convert(share(up.unpack())) for _ in range(up.read_array_header())]
            elif key == "v":
                version = up.unpack()
            else:
                up.skip()
        if up.tell() != len(data):
            raise ValueError("extra data after the tree")
        if version != 1:
            raise ValueError(f"unknown tree version {version}")
        if entries is None:
            raise KeyError("n")
        return entries
    except (ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException) as exc:
        raise FormatError(f"{what}: malformed tree ({exc})") from None
