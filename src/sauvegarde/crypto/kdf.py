"""Password-based key derivation with Argon2id (RFC 9106), parameters stored beside each key file."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters; the defaults follow RFC 9106's second recommended option (64 MiB, t=3)."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4

    @classmethod
    def cheap(cls) -> KdfParams:
        """Minimal cost, for tests only: never use for a real repository."""
        return cls(memory_kib=64, iterations=1, lanes=1)


def new_salt() -> bytes:
    """A fresh random 16-byte salt."""
    return os.urandom(16)


def derive_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Derive a 32-byte wrapping key from ``password``."""
    for attempt in range(3):
        kdf = Argon2id(
            salt=salt,
            length=32,
            iterations=params.iterations,
            lanes=params.lanes,
            memory_cost=params.memory_kib,
        )
        try:
            return kdf.derive(password)
        except MemoryError:
            # cryptography reports any failure of OpenSSL's Argon2 this way. Seen once in CI, in a daemon that
            # had just received SIGTERM (64 KiB test parameters); not reproduced with signals or concurrent
            # derivations. Deriving again is harmless; a real lack of memory fails every time and is raised.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
