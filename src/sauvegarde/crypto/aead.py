"""Authenticated encryption of stored objects with AES-256-GCM under per-writer subkeys.

Every sealed message is ``r || ciphertext || tag`` where ``r`` is 24 bytes: a 16-byte *salt* and an 8-byte
*counter*. The salt selects a subkey, ``BLAKE3-keyed(enc_key, salt)``; the GCM nonce is the counter followed by
four zero bytes. Each writer thread (per process) draws a fresh random salt and counts up from zero, so under one
subkey a nonce never repeats by construction, and two writers share a subkey only if two random 128-bit salts
collide: below 2^-64 even after 2^32 writer sessions. A reader derives the subkey from the salt of each message and
caches the last few, since the messages of one pack usually share a salt.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import blake3

from sauvegarde.errors import IntegrityError
from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    from cryptography import exceptions as _exceptions
    from cryptography.hazmat.primitives.ciphers import aead as _aead
else:  # imported when the first cipher is made, after the key derivation (see sauvegarde.util.lazy)
    _exceptions = lazy_module("cryptography.exceptions")
    _aead = lazy_module("cryptography.hazmat.primitives.ciphers.aead")

SALT_SIZE = 16
NONCE_SIZE = 24
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
_PAD = b"\x00\x00\x00\x00"
_COUNTER_LIMIT = 1 << 63  # a writer switches to a new salt long before its 64-bit counter could wrap
_READ_CACHE = 16

# Bumped in a forked child: a writer made before the fork must not go on counting under its parent's salt. (Read
# instead of calling getpid() for every sealed blob.)
_fork_generation = [0]
os.register_at_fork(after_in_child=lambda: _fork_generation.__setitem__(0, _fork_generation[0] + 1))

Buffer = bytes | bytearray | memoryview


class _Writer:
    """One thread's sealing state: salt, its subkey and the next counter value."""

    __slots__ = ("aead", "counter", "generation", "salt")

    def __init__(self, key: bytes) -> None:
        self.generation = _fork_generation[0]
        self.salt = os.urandom(SALT_SIZE)
        self.aead = _aead.AESGCM(blake3.blake3(self.salt, key=key).digest())
        self.counter = 0


class Cipher:
    """Seal and open messages under one 32-byte key; safe to share between threads."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("encryption key must be 32 bytes")
        self._key = key
        self._local = threading.local()

    def _writer(self) -> _Writer:
        w: _Writer | None = getattr(self._local, "writer", None)
        # A forked child must never continue its parent's counter under the same salt.
        if w is None or w.generation != _fork_generation[0] or w.counter >= _COUNTER_LIMIT:
            w = self._local.writer = _Writer(self._key)
        return w

    def seal(self, plaintext: Buffer, aad: bytes | None = None) -> bytes:
        """Encrypt and authenticate ``plaintext``; returns salt, counter, ciphertext and tag in one string."""
        w = self._writer()
        counter = w.counter.to_bytes(8, "big")
        w.counter += 1
        return w.salt + counter + w.aead.encrypt(counter + _PAD, plaintext, aad)

    def _reader(self, salt: bytes) -> _aead.AESGCM:
        cache: OrderedDict[bytes, _aead.AESGCM] | None = getattr(self._local, "readers", None)
        if cache is None:
            cache = self._local.readers = OrderedDict()
        aead = cache.get(salt)
        if aead is None:
            aead = cache[salt] = _aead.AESGCM(blake3.blake3(salt, key=self._key).digest())
            if len(cache) > _READ_CACHE:
                cache.popitem(last=False)
        return aead

    def open(self, sealed: Buffer, aad: bytes | None = None, what: str = "object") -> bytes:
        """Authenticate and decrypt; raises :class:`IntegrityError` naming ``what`` on any tampering."""
        if len(sealed) < OVERHEAD:
            raise IntegrityError(f"{what}: too short to be an encrypted object ({len(sealed)} bytes)")
        view = memoryview(sealed)
        salt = bytes(view[:SALT_SIZE])
        nonce = bytes(view[SALT_SIZE:NONCE_SIZE]) + _PAD
        try:
            return self._reader(salt).decrypt(nonce, view[NONCE_SIZE:], aad)
        except _exceptions.InvalidTag:
            raise IntegrityError(f"{what}: authentication failed (damaged, tampered or wrong key)") from None
