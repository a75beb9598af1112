"""How storage names map onto restic's REST API, shared by the ``rest:`` client and ``sauvegarde serve``.

restic's REST protocol knows ``config`` and five flat object types, ``/{data,keys,locks,snapshots,index}/NAME``;
our storage names are paths. The mapping (docs/server-api.md) is a bijection:

- ``config`` is ``/config``;
- ``data/xx/NAME`` with ``xx == NAME[:2]`` is ``/data/NAME`` (restic's own on-disk layout: the server stores it
  back at ``data/xx/NAME``, so a served directory is also a local repository);
- ``keys/NAME``, ``locks/NAME``, ``snapshots/NAME``, ``index/NAME`` are themselves, and so is ``deletions/NAME``,
  an extra type of ours that restic never asks for;
- any other name (never written by our format; the contract suite uses some) goes to the extra type ``ext``, its
  ``/`` written ``~`` (a character storage names never contain): ``a/b/c`` is ``/ext/a~b~c``.

Names starting with ``.tmp-`` are reserved for the server's temporary files.
"""

from __future__ import annotations

import re

from sauvegarde.errors import StorageError
from sauvegarde.storage.base import check_name

RESTIC_TYPES = ("data", "keys", "locks", "snapshots", "index")
EXTRA_TYPES = ("deletions", "ext")
TYPES = RESTIC_TYPES + EXTRA_TYPES
FLAT_TYPES = ("keys", "locks", "snapshots", "index", "deletions")
EXT_SEP = "~"
TMP_PREFIX = ".tmp-"

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_EXT_NAME = re.compile(r"^[A-Za-z0-9._~-]+$")
_DATA_DIR = re.compile(r"^[A-Za-z0-9_-]{2}$")


def valid_rest_name(kind: str, name: str) -> bool:
    """Whether ``name`` may name an object of REST type ``kind`` (never a path, ``.``, ``..`` or a temp name)."""
    pattern = _EXT_NAME if kind == "ext" else _NAME
    if not pattern.match(name) or name in (".", "..") or name.startswith(TMP_PREFIX):
        return False
    return kind != "data" or bool(_DATA_DIR.match(name[:2]))


def to_rest(name: str) -> tuple[str, str]:
    """``(type, rest_name)`` for a storage name; ``("config", "")`` for the config."""
    check_name(name)
    parts = name.split("/")
    if any(p.startswith(TMP_PREFIX) for p in parts):
        raise StorageError(f"invalid object name {name!r}: names starting with {TMP_PREFIX} are reserved")
    if name == "config":
        return "config", ""
    if len(parts) == 2 and parts[0] in FLAT_TYPES:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[0] == "data" and parts[1] == parts[2][:2] and valid_rest_name("data", parts[2]):
        return "data", parts[2]
    return "ext", EXT_SEP.join(parts)


def from_rest(kind: str, rest_name: str) -> str:
    """The storage name of REST object ``rest_name`` of type ``kind`` (inverse of :func:`to_rest`)."""
    if kind == "config":
        return "config"
    if kind == "data":
        return f"data/{rest_name[:2]}/{rest_name}"
    if kind == "ext":
        return rest_name.replace(EXT_SEP, "/")
    return f"{kind}/{rest_name}"


def disk_parts(kind: str, rest_name: str) -> list[str]:
    """Path components, under the repository directory, of the file holding a REST object."""
    if kind == "config":
        return ["config"]
    if kind == "data":
        return ["data", rest_name[:2], rest_name]
    return [kind, rest_name]


def types_for_prefix(prefix: str) -> list[str]:
    """REST types (and ``config``) that may hold storage names starting with ``prefix``."""
    out = ["config"] if "config".startswith(prefix) else []
    for kind in ("data", *FLAT_TYPES):
        head = kind + "/"
        if head.startswith(prefix) or prefix.startswith(head):
            out.append(kind)
    out.append("ext")  # any name can be an ext name
    return out
