"""The snapshot browser's paths and downloads, over :class:`sauvegarde.engine.browse.Browser` (the ``mount`` model).

URLs are ``/browse/REPOSITORY/SNAPSHOT/seg/seg/`` and ``/download/REPOSITORY/SNAPSHOT/seg/seg``, each segment one
file name percent-encoded byte for byte, so names that are not UTF-8 survive the round trip. Paths are parsed from
the raw request path; ``.``, ``..``, empty names, NUL and encoded slashes are refused before any lookup (lookups are
by name in snapshot trees, so nothing could escape them anyway). Downloads stream the file a blob range at a time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from sauvegarde.engine.browse import Browser, FileContent
from sauvegarde.repository import Node
from sauvegarde.repository.tree import DIR

CHUNK = 1024 * 1024
REPO_OR_SNAPSHOT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class BadPath(ValueError):
    """A browser URL that names no file of a snapshot (refused with 400)."""


@dataclass(frozen=True)
class Location:
    repository: str
    snapshot: str  # the snapshot's directory under ``ids/``
    parts: tuple[bytes, ...]

    @property
    def browser_path(self) -> bytes:
        return b"/".join((b"ids", self.snapshot.encode(), *self.parts))

    def url(self, kind: str = "browse", parts: tuple[bytes, ...] | None = None, directory: bool = False) -> str:
        segs = self.parts if parts is None else parts
        tail = "".join("/" + quote(p, safe="") for p in segs)
        return f"/{kind}/{self.repository}/{self.snapshot}{tail}" + ("/" if directory else "")

    def crumbs(self) -> list[tuple[str, str]]:
        """(label, URL) for the snapshot root and each directory down to here."""
        out = [(self.snapshot, self.url(parts=(), directory=True))]
        for i, p in enumerate(self.parts):
            out.append((display(p), self.url(parts=self.parts[: i + 1], directory=True)))
        return out


def path_url(repository: str, snapshot: str, path: str) -> str:
    """The browser URL of a directory the snapshot was taken of (one of its ``paths``)."""
    parts = tuple(p for p in os.fsencode(path).split(b"/") if p not in (b"", b".", b".."))
    return Location(repository, snapshot, parts).url(directory=True)


def parse(raw_path: bytes, prefix: bytes) -> Location:
    """The :class:`Location` of a raw request path starting with ``prefix`` (``/browse/`` or ``/download/``)."""
    if not raw_path.startswith(prefix):
        raise BadPath("not a browser path")
    segments = raw_path[len(prefix) :].split(b"/")
    if len(segments) < 2:
        raise BadPath("expected REPOSITORY/SNAPSHOT/")
    repo, snap, rest = segments[0], segments[1], segments[2:]
    for name in (repo, snap):
        if not name or not set(name) <= REPO_OR_SNAPSHOT or name.strip(b".") == b"":
            raise BadPath("invalid repository or snapshot name")
    parts: list[bytes] = []
    for i, seg in enumerate(rest):
        if not seg:
            if i == len(rest) - 1:
                continue  # the trailing slash of a directory
            raise BadPath("empty path segment")
        name = unquote_to_bytes(seg)
        if name in (b".", b"..") or b"/" in name or b"\0" in name:
            raise BadPath("path traversal refused")
        parts.append(name)
    return Location(repo.decode(), snap.decode(), tuple(parts))


def display(name: bytes) -> str:
    """A file name for people: UTF-8 where it is, ``\\xNN`` escapes for the other bytes."""
    return name.decode("utf-8", "backslashreplace")


def entry(loc: Location, node: Node) -> dict[str, object]:
    """One row of a directory listing."""
    is_dir = node.type == DIR
    return {
        "name": display(node.name),
        "type": node.type,
        "size": node.size,
        "mode": stat.filemode(_type_bits(node.type) | node.mode),
        "mtime": node.mtime_ns / 1e9,
        "url": loc.url(parts=(*loc.parts, node.name), directory=is_dir),
        "download": None if node.type != "file" else loc.url("download", parts=(*loc.parts, node.name)),
        "target": display(node.target) if node.target else "",
    }


def metadata(node: Node) -> list[tuple[str, str]]:
    """A file's recorded metadata as (label, value) rows."""
    rows = [
        ("type", node.type),
        ("size", f"{node.size} bytes"),
        ("mode", stat.filemode(_type_bits(node.type) | node.mode) + f" ({node.mode:04o})"),
        ("owner", f"{node.user or node.uid} ({node.uid})"),
        ("group", f"{node.group or node.gid} ({node.gid})"),
        ("modified (ns)", str(node.mtime_ns)),
        ("changed (ns)", str(node.ctime_ns)),
        ("links", str(node.nlink)),
        ("inode", str(node.inode)),
        ("blobs", str(len(node.content))),
    ]
    if node.target:
        rows.append(("link target", display(node.target)))
    if node.sparse:
        rows.append(("sparse", "yes"))
    if node.kind:
        rows.append(("content kind", node.kind))
    rows.extend((f"xattr {display(k)}", f"{len(v)} bytes") for k, v in sorted(node.xattrs.items()))
    return rows


def _type_bits(kind: str) -> int:
    return {
        "dir": stat.S_IFDIR,
        "file": stat.S_IFREG,
        "symlink": stat.S_IFLNK,
        "fifo": stat.S_IFIFO,
        "chardev": stat.S_IFCHR,
        "blockdev": stat.S_IFBLK,
        "socket": stat.S_IFSOCK,
    }.get(kind, 0)


def content_disposition(name: bytes) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987); never a header injection."""
    text = name.decode("utf-8", "replace")
    fallback = "".join(c if 0x20 < ord(c) < 0x7F and c not in '"\\;%' else "_" for c in text) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(text.encode('utf-8'), safe='')}"


def open_file(browser: Browser, loc: Location) -> FileContent:
    node = browser.lookup(loc.browser_path)
    return browser.open(node)


def chunks(content: FileContent) -> Iterator[bytes]:
    """The file's bytes a megabyte at a time (Starlette iterates this in a worker thread)."""
    offset = 0
    while offset < content.size:
        data = content.read(offset, CHUNK)
        if not data:
            break
        offset += len(data)
        yield data
