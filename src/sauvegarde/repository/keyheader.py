"""A key file's plaintext header: its format version and the salt and Argon2id parameters its password is derived
with (the sealed master key is sauvegarde.repository.keyfile's business).

Kept to JSON and the key derivation's module: the CLI reads a key file's header to derive its key before anything
heavy is loaded (sauvegarde.cli.entry), and every module imported then adds to the derivation's 64 MiB peak.
"""

from __future__ import annotations

import binascii
import json

from sauvegarde.crypto.kdf import KdfParams
from sauvegarde.errors import FormatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def parse(raw: bytes) -> dict[str, Any]:
    """The key file's fields (FormatError if it is not a key file of a version we read)."""
    try:
        body = json.loads(raw)
        if body.get("kdf") != "argon2id" or body.get("version") != 1:
            raise ValueError("unknown key file version")
        return dict(body)
    except (ValueError, AttributeError) as exc:
        raise FormatError(f"key file: unreadable ({exc})") from None


def kdf_fields(body: dict[str, Any]) -> tuple[bytes, KdfParams]:
    """The salt and Argon2id parameters of a parsed key file (FormatError if they are missing or malformed)."""
    try:
        params = KdfParams(int(body["memory_kib"]), int(body["iterations"]), int(body["lanes"]))
        return binascii.a2b_base64(body["salt"]), params
    except (KeyError, ValueError, TypeError) as exc:  # the plaintext fields are not authenticated
        raise FormatError(f"key file: unreadable ({exc})") from None


def kdf_inputs(raw: bytes) -> tuple[bytes, KdfParams]:
    """The salt and Argon2id parameters a key file's password is derived with (FormatError if unreadable)."""
    return kdf_fields(parse(raw))
