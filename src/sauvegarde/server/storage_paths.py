"""Turning a request's raw URL path into a repository and an object, refusing anything that could escape the root.

The path is percent-decoded exactly once (``%252e`` stays ``%2e``, which is not a valid name) and split on ``/``;
every component must match a strict pattern (no ``.``/``..``, no empty component, no ``%``, ``\\`` or NUL), so a
valid target is a list of plain names under the served directory and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from sauvegarde.storage.rest_names import TYPES, valid_rest_name

MAX_REPO_DEPTH = 8
RESERVED = ("healthz", "metrics", "config", *TYPES)
_REPO_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class BadPath(ValueError):
    """The path is not one the API serves (answered with 400)."""


@dataclass(frozen=True)
class Target:
    """What a request addresses: ``kind`` is ``repo`` (the repository itself), ``config``, or a type; ``name`` is
    the object name, ``""`` for a listing or for the config."""

    repo: tuple[str, ...]
    kind: str
    name: str = ""

    @property
    def is_listing(self) -> bool:
        return self.kind not in ("repo", "config") and not self.name

    @property
    def repo_label(self) -> str:
        return "/" + "/".join(self.repo)


def valid_repo_part(part: str) -> bool:
    return bool(_REPO_PART.match(part)) and part not in RESERVED


def parse_target(raw_path: bytes) -> Target:
    """The target of a request path (raw bytes as received); raises :class:`BadPath`."""
    try:
        path = unquote_to_bytes(raw_path).decode("ascii")
    except UnicodeDecodeError:
        raise BadPath("path is not ASCII") from None
    if not path.startswith("/") or "\\" in path or "\x00" in path:
        raise BadPath("invalid path")
    trailing = path.endswith("/")
    parts = path[1:].split("/")
    if trailing:
        parts.pop()
    if any(not p for p in parts):
        raise BadPath("empty path component")
    if not parts:
        return Target((), "repo")
    last = parts[-1]
    if last == "config" and not trailing:
        return _target(parts[:-1], "config")
    if last in TYPES and trailing:
        return _target(parts[:-1], last)
    if len(parts) >= 2 and parts[-2] in TYPES and not trailing:
        if not valid_rest_name(parts[-2], last):
            raise BadPath(f"invalid {parts[-2]} object name")
        return _target(parts[:-2], parts[-2], last)
    return _target(parts, "repo")


def _target(repo: list[str], kind: str, name: str = "") -> Target:
    if len(repo) > MAX_REPO_DEPTH:
        raise BadPath("repository path too deep")
    for part in repo:
        if not valid_repo_part(part):
            raise BadPath("invalid repository name")
    return Target(tuple(repo), kind, name)
