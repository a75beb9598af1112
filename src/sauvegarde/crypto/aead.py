"""Authenticated encryption of stored objects with AES-256-GCM and a 192-bit random nonce.

Every sealed message is ``r || ciphertext || tag`` where ``r`` is 24 random bytes. The first 16 bytes of ``r``
select a one-message subkey, ``BLAKE3-keyed(enc_key, r[:16])``, and the last 8 bytes, padded with four zero bytes,
are the 96-bit GCM nonce. A (subkey, nonce) pair repeats only when two 192-bit random values collide: after 2^48
messages under one master key the chance is below 2^-97, far from anything a repository will see (plain random
96-bit GCM nonces would allow only 2^32 messages for a 2^-32 bound).
"""

from __future__ import annotations

import os

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sauvegarde.errors import IntegrityError

NONCE_SIZE = 24
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
_PAD = b"\x00\x00\x00\x00"

Buffer = bytes | bytearray | memoryview


class Cipher:
    """Seal and open messages under one 32-byte key; safe to share between threads."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("encryption key must be 32 bytes")
        self._key = key

    def _subkey(self, r: bytes) -> AESGCM:
        return AESGCM(blake3.blake3(r[:16], key=self._key).digest())

    def seal(self, plaintext: Buffer, aad: bytes | None = None) -> bytes:
        """Encrypt and authenticate ``plaintext``; returns nonce, ciphertext and tag in one string."""
        r = os.urandom(NONCE_SIZE)
        return r + self._subkey(r).encrypt(r[16:] + _PAD, plaintext, aad)

    def open(self, sealed: Buffer, aad: bytes | None = None, what: str = "object") -> bytes:
        """Authenticate and decrypt; raises :class:`IntegrityError` naming ``what`` on any tampering."""
        if len(sealed) < OVERHEAD:
            raise IntegrityError(f"{what}: too short to be an encrypted object ({len(sealed)} bytes)")
        view = memoryview(sealed)
        r = bytes(view[:NONCE_SIZE])
        try:
            return self._subkey(r).decrypt(r[16:] + _PAD, view[NONCE_SIZE:], aad)
        except InvalidTag:
            raise IntegrityError(f"{what}: authentication failed (damaged, tampered or wrong key)") from None
