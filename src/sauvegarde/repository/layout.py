"""Object names in storage, per object type."""

from __future__ import annotations

CONFIG = "config"
KEYS = "keys/"
DATA = "data/"
INDEX = "index/"
SNAPSHOTS = "snapshots/"
LOCKS = "locks/"


def pack_name(pack_id: bytes) -> str:
    h = pack_id.hex()
    return f"{DATA}{h[:2]}/{h}"


def id_from_name(name: str) -> bytes:
    return bytes.fromhex(name.rsplit("/", 1)[-1])


def named(prefix: str, object_id: bytes) -> str:
    return prefix + object_id.hex()
