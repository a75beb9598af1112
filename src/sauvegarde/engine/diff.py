"""Differences between two snapshots, skipping identical subtrees by their ID."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from sauvegarde.engine.walk import TreeLoader, walk
from sauvegarde.repository import Node, Repository, Snapshot
from sauvegarde.repository.tree import DIR


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # "+" added, "-" removed, "M" content or type changed, "U" metadata only


def _same_meta(a: Node, b: Node) -> bool:
    return (a.mode, a.uid, a.gid, a.mtime_ns, a.target, a.xattrs) == (
        b.mode,
        b.uid,
        b.gid,
        b.mtime_ns,
        b.target,
        b.xattrs,
    )


def diff_trees(loader: TreeLoader, a: bytes | None, b: bytes | None, prefix: bytes = b"") -> Iterator[Change]:
    if a == b:
        return
    left = loader.load(a).by_name() if a else {}
    right = loader.load(b).by_name() if b else {}
    for name in sorted(set(left) | set(right)):
        path = prefix + b"/" + name
        x, y = left.get(name), right.get(name)
        if x is None:
            assert y is not None
            yield from _all(loader, path, y, "+")
        elif y is None:
            yield from _all(loader, path, x, "-")
        elif x.type != y.type:
            yield from _all(loader, path, x, "-")
            yield from _all(loader, path, y, "+")
        else:
            if x.type == DIR:
                if not _same_meta(x, y):
                    yield Change(os.fsdecode(path) + "/", "U")
                yield from diff_trees(loader, x.subtree, y.subtree, path)
            elif x.content != y.content or x.target != y.target or x.rdev != y.rdev:
                yield Change(os.fsdecode(path), "M")
            elif not _same_meta(x, y):
                yield Change(os.fsdecode(path), "U")


def _all(loader: TreeLoader, path: bytes, node: Node, kind: str) -> Iterator[Change]:
    yield Change(os.fsdecode(path) + ("/" if node.type == DIR else ""), kind)
    if node.type == DIR and node.subtree:
        for p, n in walk(loader, node.subtree, path):
            yield Change(os.fsdecode(p) + ("/" if n.type == DIR else ""), kind)


def diff_snapshots(repo: Repository, a: Snapshot, b: Snapshot) -> Iterator[Change]:
    """The changes from ``a`` to ``b``, in path order, as the trees are compared."""
    return diff_trees(TreeLoader(repo), bytes.fromhex(a.tree), bytes.fromhex(b.tree))
