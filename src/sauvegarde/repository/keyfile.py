"""Key files: the master key wrapped under a password with Argon2id.

A key file is plaintext JSON holding the KDF parameters, salt, some descriptive fields and the sealed master key.
Several key files can open one repository; each is write-once and named by the BLAKE3 hash of its bytes.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import blake3

from sauvegarde.crypto import Cipher, KdfParams, MasterKey, derive_key
from sauvegarde.crypto.kdf import new_salt
from sauvegarde.errors import FormatError, IntegrityError
from sauvegarde.repository import keyheader


@dataclass(frozen=True)
class KeyInfo:
    key_id: bytes
    created: str
    hostname: str
    username: str


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def wrap_master_key(master: MasterKey, password: bytes, params: KdfParams) -> bytes:
    """Serialized key file for ``master`` under ``password``."""
    salt = new_salt()
    wrapping = Cipher(derive_key(password, salt, params))
    body = {
        "version": 1,
        "kdf": "argon2id",
        "memory_kib": params.memory_kib,
        "iterations": params.iterations,
        "lanes": params.lanes,
        "salt": _b64(salt),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hostname": _hostname(),
        "username": _username(),
        "data": _b64(wrapping.seal(_msgpack().packb(master.to_dict()))),
    }
    return json.dumps(body, indent=1).encode()


def key_id(raw: bytes) -> bytes:
    return blake3.blake3(raw).digest()


def parse_key_info(kid: bytes, raw: bytes) -> KeyInfo:
    body = keyheader.parse(raw)
    return KeyInfo(kid, str(body.get("created", "")), str(body.get("hostname", "")), str(body.get("username", "")))


def unwrap_master_key(raw: bytes, password: bytes) -> MasterKey | None:
    """The master key if ``password`` opens this key file, else ``None``."""
    body = keyheader.parse(raw)
    salt, params = keyheader.kdf_fields(body)
    try:
        sealed = base64.b64decode(body["data"])
        wrapping = Cipher(derive_key(password, salt, params))  # ValueError: parameters out of bounds
    except (KeyError, ValueError, TypeError) as exc:  # the plaintext fields are not authenticated
        raise FormatError(f"key file: unreadable ({exc})") from None
    try:
        plain = wrapping.open(sealed, what="key file")
    except IntegrityError:
        return None
    return MasterKey.from_dict(_msgpack().unpackb(plain))


# msgpack, socket and getpass are imported when a key is wrapped or unwrapped, not with this module.


def _msgpack() -> Any:
    import msgpack

    return msgpack


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _username() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
