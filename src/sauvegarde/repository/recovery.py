"""Recovery sheets: the master key written for paper, and turning it back into a key file with a new password.

The code is the 64 bytes of the master key and a 4-byte BLAKE3 checksum in base32 (letters A-Z and digits 2-7, no
padding), in groups of four: easy to type back, and a typo is caught by the checksum instead of yielding a wrong key.
Whoever holds the code can read every backup: it is shown only when asked for, on standard output.
"""

from __future__ import annotations

import base64
import re

import blake3

from sauvegarde.crypto import KdfParams, MasterKey
from sauvegarde.errors import IntegrityError, UsageError
from sauvegarde.repository import keyfile, layout
from sauvegarde.repository.config import RepoConfig
from sauvegarde.storage import Storage

_CHECK = 4


def encode_master_key(master: MasterKey) -> str:
    raw = master.enc_key + master.id_key
    code = base64.b32encode(raw + blake3.blake3(raw).digest()[:_CHECK]).decode().rstrip("=")
    groups = [code[i : i + 4] for i in range(0, len(code), 4)]
    return "\n".join(" ".join(groups[i : i + 8]) for i in range(0, len(groups), 8))


def decode_master_key(text: str) -> MasterKey:
    code = re.sub(r"[\s-]", "", text).upper()
    try:
        data = base64.b32decode(code + "=" * (-len(code) % 8))
    except ValueError:
        raise UsageError("not a recovery code: expected letters A-Z and digits 2-7 in groups of four") from None
    raw, check = data[:-_CHECK], data[-_CHECK:]
    if len(raw) != 64 or blake3.blake3(raw).digest()[:_CHECK] != check:
        raise UsageError("the recovery code does not add up (checksum mismatch): look for a mistyped group")
    return MasterKey(enc_key=raw[:32], id_key=raw[32:])


def recovery_sheet(master: MasterKey, repo_id: str, location: str, created: str) -> str:
    return (
        "SAUVEGARDE REPOSITORY RECOVERY SHEET\n"
        "====================================\n"
        f"repository ID: {repo_id}\n"
        f"location:      {location}\n"
        f"printed:       {created}\n"
        "\n"
        "Master key (whoever holds it can read every backup in this repository):\n"
        "\n"
        f"{encode_master_key(master)}\n"
        "\n"
        "To recover without any password: sauvegarde key recover --repo LOCATION --new-password-file FILE\n"
        "and type the groups above when asked. Keep this sheet in a safe away from the protected site.\n"
    )


def add_key_from_master(storage: Storage, master: MasterKey, password: bytes, kdf: KdfParams | None = None) -> bytes:
    """Add a key file for ``password`` wrapping ``master``, after proving that it opens this repository."""
    raw_config = storage.load(layout.CONFIG)
    try:
        RepoConfig.decode(raw_config, master.cipher())
    except IntegrityError:
        raise UsageError("this recovery code is not the key of this repository") from None
    raw_key = keyfile.wrap_master_key(master, password, kdf or KdfParams())
    kid = keyfile.key_id(raw_key)
    storage.save(layout.named(layout.KEYS, kid), raw_key)
    return kid
