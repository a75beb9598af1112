"""Password-based key derivation with Argon2id (RFC 9106), parameters stored beside each key file."""

from __future__ import annotations

import os
import threading
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


# One derivation at a time per process. Two at once, in the daemon's step and in a metrics scrape opening the
# same repositories, sometimes failed in cryptography's Argon2id ("MemoryError: Not enough memory to derive key"
# with 64 KiB parameters), again on retry: about 1 run in 5 of the daemon metrics test; 0 in 10 with this lock.
_DERIVING = threading.Lock()


def derive_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Derive a 32-byte wrapping key from ``password``."""
    return argon2id(password, salt, params, 32)


def argon2id(password: bytes, salt: bytes, params: KdfParams, length: int) -> bytes:
    """Raw Argon2id (version 0x13) of ``length`` bytes, one derivation at a time per process (see above); also
    used for the server's htpasswd hashes."""
    kdf = Argon2id(
        salt=salt,
        length=length,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    with _DERIVING:
        return kdf.derive(password)
