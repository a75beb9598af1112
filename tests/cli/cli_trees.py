"""Helpers for CLI tests: build file trees and compare two trees entry by entry, metadata included.

Paths are handled as bytes throughout, so names that are not valid UTF-8 are compared exactly.
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024

PathLike = str | bytes | os.PathLike[str]


def fs(path: PathLike) -> bytes:
    return os.fsencode(path)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def write_file(path: PathLike, data: bytes) -> None:
    with open(fs(path), "wb") as f:
        f.write(data)


def read_bytes(path: PathLike) -> bytes:
    with open(fs(path), "rb") as f:
        return f.read()


def restored(target: PathLike, original: PathLike) -> bytes:
    """Where ``restore --target target`` puts ``original`` (an absolute path): below the target, at that path."""
    return fs(target).rstrip(b"/") + os.path.abspath(fs(original))


@dataclass(frozen=True)
class Entry:
    """What must survive a backup and restore, for one entry of a tree."""

    kind: str
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    sha256: str = ""
    target: bytes = b""
    rdev: int = 0
    xattrs: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class TreeState:
    entries: dict[bytes, Entry] = field(default_factory=dict)
    hardlinks: set[frozenset[bytes]] = field(default_factory=set)  # groups of paths sharing an inode
    blocks: dict[bytes, int] = field(default_factory=dict)  # allocated 512-byte blocks of regular files


def _xattrs(path: bytes) -> tuple[tuple[bytes, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((os.fsencode(n), os.getxattr(path, n, follow_symlinks=False)) for n in names))


def _sha256(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


def _walk(root: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(relative path, absolute path) of ``root`` (as b".") and everything below it, without following links."""
    yield b".", root
    stack = [b""]
    while stack:
        rel = stack.pop()
        here = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(here)):
            child_rel = os.path.join(rel, name) if rel else name
            child = os.path.join(root, child_rel)
            yield child_rel, child
            if stat.S_ISDIR(os.lstat(child).st_mode):
                stack.append(child_rel)


def scan(root: PathLike) -> TreeState:
    """Everything a restore must reproduce about the tree at ``root`` (atime and ctime excepted)."""
    state = TreeState()
    inodes: dict[int, set[bytes]] = {}
    for rel, path in _walk(fs(root)):
        st = os.lstat(path)
        fmt = stat.S_IFMT(st.st_mode)
        kind = {
            stat.S_IFREG: "file",
            stat.S_IFDIR: "dir",
            stat.S_IFLNK: "symlink",
            stat.S_IFIFO: "fifo",
            stat.S_IFCHR: "chardev",
            stat.S_IFBLK: "blockdev",
            stat.S_IFSOCK: "socket",
        }[fmt]
        entry = Entry(
            kind=kind,
            mode=0 if kind == "symlink" else stat.S_IMODE(st.st_mode),  # a symlink's mode means nothing on Linux
            uid=st.st_uid,
            gid=st.st_gid,
            mtime_ns=st.st_mtime_ns,
            size=st.st_size if kind in ("file", "symlink") else 0,
            sha256=_sha256(path) if kind == "file" else "",
            target=os.readlink(path) if kind == "symlink" else b"",
            rdev=st.st_rdev if kind in ("chardev", "blockdev") else 0,
            xattrs=_xattrs(path),
        )
        state.entries[rel] = entry
        if kind == "file":
            state.blocks[rel] = st.st_blocks
            if st.st_nlink > 1:
                inodes.setdefault(st.st_ino, set()).add(rel)
    state.hardlinks = {frozenset(g) for g in inodes.values() if len(g) > 1}
    return state


def assert_same_tree(original: PathLike, copy: PathLike) -> TreeState:
    """Fail with a readable list of differences unless ``copy`` reproduces ``original``; returns the copy's state."""
    a, b = scan(original), scan(copy)
    problems: list[str] = []
    for rel in sorted(a.entries.keys() | b.entries.keys()):
        ea, eb = a.entries.get(rel), b.entries.get(rel)
        if ea is None:
            problems.append(f"{rel!r}: extra in the copy")
        elif eb is None:
            problems.append(f"{rel!r}: missing from the copy")
        elif ea != eb:
            diffs = [
                f"{name} {getattr(ea, name)!r} != {getattr(eb, name)!r}"
                for name in Entry.__dataclass_fields__
                if getattr(ea, name) != getattr(eb, name)
            ]
            problems.append(f"{rel!r}: " + ", ".join(diffs))
    if a.hardlinks != b.hardlinks:
        problems.append(
            f"hardlink groups differ: {sorted(map(sorted, a.hardlinks))} != {sorted(map(sorted, b.hardlinks))}"
        )
    assert not problems, "trees differ:\n  " + "\n  ".join(problems)
    return b


def dir_size(path: PathLike) -> int:
    """Bytes in the regular files below ``path``."""
    total = 0
    for dirpath, _dirs, files in os.walk(fs(path)):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def pack_files(repo: Path) -> list[Path]:
    """The pack files of a local repository (temporary files of an unfinished write excluded)."""
    data = repo / "data"
    if not data.is_dir():
        return []
    return sorted(p for p in data.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
