"""``sauvegarde ls``: list the files of a snapshot."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable
from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.selection import filter_options, make_filter
from sauvegarde.engine.find import find_snapshot
from sauvegarde.engine.walk import TreeLoader, resolve, walk
from sauvegarde.repository import Node
from sauvegarde.repository.tree import DIR

_TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "fifo": "p", "chardev": "c", "blockdev": "b", "socket": "s"}


def node_json(path: bytes, n: Node) -> dict[str, object]:
    return {
        "path": os.fsdecode(path),
        "name": os.fsdecode(n.name),
        "type": n.type,
        "mode": n.mode,
        "uid": n.uid,
        "gid": n.gid,
        "user": n.user,
        "group": n.group,
        "size": n.size,
        "mtime_ns": n.mtime_ns,
        "link_target": os.fsdecode(n.target) if n.target else None,
    }


def long_line(path: bytes, n: Node) -> str:
    perms = stat.filemode(n.mode)[1:]
    when = datetime.fromtimestamp(n.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    owner = f"{n.user or n.uid}/{n.group or n.gid}"
    text = f"{_TYPE_CHAR[n.type]}{perms} {owner:>17} {n.size:>12} {when} {os.fsdecode(path)}"
    return text + (f" -> {os.fsdecode(n.target)}" if n.target else "")


@click.command("ls")
@click.argument("snapshot")
@click.argument("path", required=False)
@click.option("-l", "--long", "long_", is_flag=True, help="Show mode, owner, size and time.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="List subdirectories too.")
@filter_options
@pass_app
def command(
    app: AppContext,
    snapshot: str,
    path: str | None,
    long_: bool,
    recursive: bool,
    hosts: tuple[str, ...],
    paths: tuple[str, ...],
    tags: tuple[str, ...],
) -> None:
    """List the files in SNAPSHOT, below PATH if given."""
    repo = app.open_repository(lock=None)
    snap = find_snapshot(repo, snapshot, make_filter(hosts, paths, tags))
    loader = TreeLoader(repo)
    root = bytes.fromhex(snap.tree)
    prefix = b""
    start_tree: bytes | None = root
    top: list[tuple[bytes, Node]] = []
    if path and path.strip("/"):
        node, _ = resolve(loader, root, path)
        assert node is not None
        prefix = os.fsencode("/" + path.strip("/"))
        top.append((prefix, node))
        start_tree = node.subtree if node.type == DIR else None
    below: Iterable[tuple[bytes, Node]] = ()
    if start_tree is not None:
        if recursive:
            below = walk(loader, start_tree, prefix)
        else:
            below = [(prefix + b"/" + n.name, n) for n in loader.load(start_tree).nodes]
    entries = itertools.chain(top, below)  # printed as the walk goes: memory does not grow with the snapshot
    if app.json:
        app.emit_json_list({"snapshot": snap.id}, "nodes", (node_json(p, n) for p, n in entries))
        return
    for p, n in entries:
        app.out(long_line(p, n) if long_ else os.fsdecode(p))
