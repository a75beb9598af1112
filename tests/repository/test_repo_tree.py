"""Tree blobs: Node and Tree wire format, round trips, and rejection of malformed trees."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.errors import FormatError
from sauvegarde.repository.tree import _FIELDS, DIR, FILE, LARGE_TREE, NODE_TYPES, SYMLINK, Node, Tree

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)

ids = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
times = st.integers(-(2**63), 2**63 - 1)
names = st.binary(min_size=1, max_size=60).filter(lambda b: b"/" not in b)

nodes = st.builds(
    Node,
    name=names,
    type=st.sampled_from(NODE_TYPES),
    mode=st.integers(0, 0o7777),
    uid=u32,
    gid=u32,
    user=st.text(max_size=20),
    group=st.text(max_size=20),
    mtime_ns=times,
    atime_ns=times,
    ctime_ns=times,
    size=st.integers(0, 2**63 - 1),
    inode=u64,
    dev=u64,
    nlink=u32,
    rdev=u64,
    target=st.binary(max_size=100),
    sparse=st.booleans(),
    content=st.lists(ids, max_size=20),
    subtree=st.none() | ids,
    xattrs=st.dictionaries(st.binary(min_size=1, max_size=40), st.binary(max_size=100), max_size=5),
)


@PROPERTY
@given(node=nodes)
def test_node_wire_round_trip(node: Node) -> None:
    assert Node.from_wire(msgpack.unpackb(msgpack.packb(node.to_wire()))) == node


@PROPERTY
@given(tree_nodes=st.lists(nodes, max_size=12))
def test_tree_round_trip(tree_nodes: list[Node]) -> None:
    data = Tree(list(tree_nodes)).encode()
    decoded = Tree.decode(data)
    assert decoded.nodes == sorted(tree_nodes, key=lambda n: n.name)
    assert Tree.decode(decoded.encode()).nodes == decoded.nodes
    assert decoded.encode() == data  # canonical: same tree, same bytes, same blob ID


def test_nodes_are_sorted_by_name_bytes() -> None:
    tree = Tree([Node(b"b", FILE), Node(b"\xff", FILE), Node(b"B", FILE), Node(b"a\xe9", FILE), Node(b"a", FILE)])
    decoded = Tree.decode(tree.encode())
    assert [n.name for n in decoded.nodes] == [b"B", b"a", b"a\xe9", b"b", b"\xff"]


def test_non_utf8_names_targets_and_xattrs_survive() -> None:
    node = Node(
        name=b"caf\xe9\x80\xff",
        type=SYMLINK,
        target=b"/tmp/\xfe\xfd",
        xattrs={b"user.\xff": b"\x00\x01", b"system.posix_acl_access": b"\x02\x00\x00\x00"},
    )
    (back,) = Tree.decode(Tree([node]).encode()).nodes
    assert back == node


def test_defaults_are_omitted_on_the_wire() -> None:
    assert Node(b"f", FILE).to_wire() == {"n": b"f", "t": "file"}
    node = Node(b"f", FILE, mode=0o644, nlink=2, size=10, sparse=True, content=[b"a" * 32, b"b" * 32])
    assert node.to_wire() == {
        "n": b"f",
        "t": "file",
        "m": 0o644,
        "l": 2,
        "s": 10,
        "sp": True,
        "c": b"a" * 32 + b"b" * 32,
    }
    assert Node(b"d", DIR, nlink=1, subtree=b"s" * 32).to_wire() == {"n": b"d", "t": "dir", "st": b"s" * 32}


def test_tree_wire_format() -> None:
    body = msgpack.unpackb(Tree([Node(b"x", FILE, uid=1000)]).encode())
    assert body == {"v": 1, "n": [{"n": b"x", "t": "file", "u": 1000}]}


def test_unknown_keys_are_ignored() -> None:
    raw = msgpack.packb({"v": 1, "n": [{"n": b"x", "t": "file", "future": 1}], "later": True})
    assert Tree.decode(raw).nodes == [Node(b"x", FILE)]


def test_find_and_by_name() -> None:
    tree = Tree([Node(b"a", FILE), Node(b"b", DIR)])
    assert tree.find(b"b") == Node(b"b", DIR)
    assert tree.find(b"c") is None
    assert set(tree.by_name()) == {b"a", b"b"}


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "n": []},
        {"n": []},
        {"v": 1},
        {"v": 1, "n": [{"t": "file"}]},
        {"v": 1, "n": [{"n": b"x"}]},
        {"v": 1, "n": [{"n": b"x", "t": "weird"}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "c": b"\x00" * 33}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "x": [1, 2]}]},
        {"v": 1, "n": [{"n": "not-bytes", "t": "file"}]},
        {"v": 1, "n": [{"n": 5, "t": "file"}]},
        {"v": 1, "n": [{"n": 2**63, "t": "file"}]},
        {"v": 1, "n": [{"n": b"x", "t": "dir", "st": 2**64 - 1}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "c": 64}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "c": "a" * 32}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "x": {b"user.a": 7}}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "m": "rwx"}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "s": b"10"}]},
        {"v": 1, "n": [{"n": b"x", "t": "symlink", "lt": "target as str"}]},
        {"v": 1, "n": [{"n": b"x", "t": "file", "U": 1000}]},
        {"v": 1, "n": [5]},
        {"v": 1, "n": 5},
        [1, 2],
        None,
    ],
    ids=repr,
)
@pytest.mark.parametrize("read", [Tree.decode, Tree.links], ids=["decode", "links"])
def test_malformed_tree_is_a_format_error(body: object, read: Callable[[bytes, str], object]) -> None:
    with pytest.raises(FormatError, match="tree 1234"):
        read(msgpack.packb(body), "tree 1234")


@pytest.mark.parametrize("read", [Tree.decode, Tree.links], ids=["decode", "links"])
@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x81", b"not msgpack at all \xff"])
def test_garbage_tree_is_a_format_error(raw: bytes, read: Callable[[bytes, str], object]) -> None:
    with pytest.raises(FormatError):
        read(raw, "tree")


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3) | st.binary(max_size=3), inner),
    max_leaves=12,
)
_WIRE_KEYS = ["n", "t", "m", "u", "g", "U", "G", "mt", "at", "ct", "s", "i", "d", "l", "r", "lt", "sp", "c", "st", "x"]
# a valid name and type, then a few fields (possibly "n" or "t" again) with values of any msgpack type
node_like = st.builds(
    lambda base, extra: {**base, **extra},
    st.fixed_dictionaries({"n": st.binary(min_size=1, max_size=8), "t": st.sampled_from(NODE_TYPES)}),
    st.dictionaries(st.sampled_from(_WIRE_KEYS), msgpack_values, max_size=3),
)


# tree blobs of any shape: valid-looking nodes mixed with any msgpack values, under any version
arbitrary_trees = st.builds(
    lambda n, version: msgpack.packb({"v": version, "n": n}),
    st.lists(node_like | msgpack_values, max_size=3),
    st.sampled_from([1, 1, 2, None]),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(raw=arbitrary_trees)
def test_arbitrary_structures_decode_or_raise_format_error(raw: bytes) -> None:
    try:
        tree = Tree.decode(raw)
    except FormatError:
        return
    for node in tree.nodes:
        assert isinstance(node.name, bytes)
        assert node.type in NODE_TYPES
        for attr, default in _DEFAULTS.items():
            assert isinstance(getattr(node, attr), type(default)), attr
        assert all(isinstance(c, bytes) and len(c) == 32 for c in node.content)
        assert node.subtree is None or isinstance(node.subtree, bytes)
        assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in node.xattrs.items())


_DEFAULTS = {
    "mode": 0,
    "uid": 0,
    "gid": 0,
    "user": "",
    "group": "",
    "mtime_ns": 0,
    "atime_ns": 0,
    "ctime_ns": 0,
    "size": 0,
    "inode": 0,
    "dev": 0,
    "nlink": 1,
    "rdev": 0,
    "target": b"",
    "sparse": False,
}


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(raw=arbitrary_trees)
def test_links_accept_exactly_what_decode_accepts(raw: bytes) -> None:
    """check reads trees with links(), restore with decode(): a tree check passes must restore."""
    try:
        tree = Tree.decode(raw)
    except FormatError:
        with pytest.raises(FormatError):
            Tree.links(raw)
        return
    assert Tree.links(raw) == [(node.type, b"".join(node.content), node.subtree) for node in tree.nodes]


def test_wire_fields_follow_the_node_constructor() -> None:
    """from_wire passes the stored fields positionally, in the order of _FIELDS."""
    names = [f.name for f in dataclasses.fields(Node)]
    assert names[2 : 2 + len(_FIELDS)] == list(_FIELDS)


def test_a_large_tree_shares_the_values_its_entries_repeat() -> None:
    nodes = [
        Node(name=b"f%05d.1.gz" % i, type=FILE, mode=0o644, user="root", group="root", kind="gz", dev=65024, size=i)
        for i in range(3000)
    ]
    raw = Tree(nodes).encode()
    assert len(raw) >= LARGE_TREE
    decoded = Tree.decode(raw).nodes
    assert decoded == nodes
    for field_name in ("type", "user", "group", "kind", "mode", "dev"):
        assert getattr(decoded[0], field_name) is getattr(decoded[-1], field_name), field_name
    wires = Tree.wires(raw)
    assert [Node.from_wire(w) for w in wires] == nodes
    assert wires[0]["U"] is wires[-1]["U"]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(raw=arbitrary_trees)
def test_sharing_values_changes_nothing_decode_accepts_or_returns(raw: bytes) -> None:
    """Every tree decoded with its repeated values shared (as large trees are) decodes, or fails, as without."""
    try:
        plain: object = Tree.decode(raw).nodes
    except FormatError:
        plain = FormatError
    with mock.patch("sauvegarde.repository.tree.LARGE_TREE", 0):
        try:
            shared: object = Tree.decode(raw).nodes
        except FormatError:
            shared = FormatError
    assert shared == plain
