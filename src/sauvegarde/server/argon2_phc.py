"""Argon2id password hashes in the PHC string format, for htpasswd lines.

``$argon2id$v=19$m=MEMORY_KIB,t=ITERATIONS,p=LANES$SALT$HASH`` as written by the reference ``argon2`` tool,
argon2-cffi, passlib or ``sauvegarde serve adduser --hash argon2id``: SALT and HASH are unpadded standard base64.
Parsing is strict: only Argon2id version 19 (0x13, the current one), parameters in this order,
decimal without leading zeros, within RFC 9106's bounds (and a ceiling on memory, so a line cannot make a check
allocate without limit), canonical base64 of at least 8 salt bytes and 4 hash bytes. Derivations go through
:func:`sauvegarde.crypto.kdf.argon2id` (one at a time per process, which also bounds a flood of checks to one
hash's memory); hashes are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from dataclasses import dataclass

from sauvegarde.crypto.kdf import MAX_ITERATIONS, MAX_LANES, MAX_MEMORY_KIB, KdfParams, argon2id

PREFIX = "$argon2"
_PHC = re.compile(r"^\$argon2id\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")
_NUMBER = re.compile(r"^(0|[1-9][0-9]{0,9})$")


class BadHash(ValueError):
    """A ``$argon2...`` string that is not a valid Argon2id PHC hash (the message says why, never the hash)."""


@dataclass(frozen=True)
class Argon2idHash:
    params: KdfParams
    salt: bytes
    digest: bytes

    def verify(self, password: str) -> bool:
        computed = argon2id(password.encode(), self.salt, self.params, len(self.digest))
        return hmac.compare_digest(computed, self.digest)

    def encode(self) -> str:
        p = self.params
        return f"$argon2id$v=19$m={p.memory_kib},t={p.iterations},p={p.lanes}${_b64(self.salt)}${_b64(self.digest)}"


def parse(text: str) -> Argon2idHash:
    """The hash in ``text``; raises :class:`BadHash`."""
    if not text.startswith("$argon2id$"):
        variant = text.split("$")[1] if text.count("$") >= 2 else text
        raise BadHash(f"unsupported variant {variant[:16]!r}: only argon2id hashes are accepted")
    match = _PHC.match(text)
    if match is None:
        raise BadHash("not of the form $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
    version, memory, iterations, lanes = (_number(g) for g in match.groups()[:4])
    if version != 19:
        raise BadHash(f"version {version} is not supported (only v=19)")
    if not 1 <= lanes <= MAX_LANES:
        raise BadHash(f"p={lanes} is out of range (1 to {MAX_LANES})")
    if not 8 * lanes <= memory <= MAX_MEMORY_KIB:
        raise BadHash(f"m={memory} is out of range (8 x p to {MAX_MEMORY_KIB} KiB)")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise BadHash(f"t={iterations} is out of range (1 to {MAX_ITERATIONS})")
    salt, digest = _unb64(match.group(5), "salt"), _unb64(match.group(6), "hash")
    if len(salt) < 8:
        raise BadHash("the salt is shorter than 8 bytes")
    if len(digest) < 4:
        raise BadHash("the hash is shorter than 4 bytes")
    return Argon2idHash(KdfParams(memory_kib=memory, iterations=iterations, lanes=lanes), salt, digest)


def hash_password(password: str, params: KdfParams | None = None) -> str:
    """A new PHC string for ``password``: random 16-byte salt, 32-byte hash, RFC 9106's second recommended
    parameters (64 MiB, t=3, p=4) unless ``params`` says otherwise."""
    params = params or KdfParams()
    salt = os.urandom(16)
    return Argon2idHash(params, salt, argon2id(password.encode(), salt, params, 32)).encode()


def _number(text: str) -> int:
    if not _NUMBER.match(text):
        raise BadHash(f"parameter {text[:12]!r} is not a plain decimal number")
    return int(text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str, what: str) -> bytes:
    if len(text) % 4 == 1:
        raise BadHash(f"the {what} is not valid base64")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise BadHash(f"the {what} is not valid base64") from None
    if _b64(data) != text:  # stray bits in the last character: not the canonical encoding
        raise BadHash(f"the {what} is not canonical base64")
    return data
