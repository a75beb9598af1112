"""Password-based key derivation with Argon2id (RFC 9106), parameters stored beside each key file."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw


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


# One derivation at a time per process: each takes its memory cost (64 MiB by default) for its duration, and the
# daemon's step and a metrics scrape may open the same repositories at once. (With cryptography's Argon2id, used
# until 2026-11, two at once also sometimes failed with "MemoryError: Not enough memory to derive key".)
_DERIVING = threading.Lock()

# bounds on parameters read from unauthenticated key files and htpasswd lines (RFC 9106 allows far more): a
# ceiling on memory, so such a line cannot make a process allocate without limit
MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
MAX_ITERATIONS = 1000
MAX_LANES = 255


# A key derived ahead of its use (derive_ahead), for the one next derive_key call with the same inputs.
_ahead: tuple[bytes, bytes, KdfParams, bytes] | None = None


def derive_key(password: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Derive a 32-byte wrapping key from ``password`` (or take the one :func:`derive_ahead` derived from the same
    inputs, once)."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None and ahead[:3] == (password, salt, params):
        return ahead[3]
    return argon2id(password, salt, params, 32)


def derive_ahead(password: bytes, salt: bytes, params: KdfParams) -> None:
    """Derive the key the next :func:`derive_key` call with these inputs will ask for, now: the CLI does it before
    it loads click, the command and the repository's modules, so that the derivation's memory (64 MiB) comes on
    top of a smaller process (sauvegarde.cli.entry). Only the next call may take it; any other call forgets it."""
    global _ahead
    key = argon2id(password, salt, params, 32)
    _ahead = (password, salt, params, key)


def argon2id(password: bytes, salt: bytes, params: KdfParams, length: int) -> bytes:
    """Raw Argon2id (version 0x13) of ``length`` bytes, one derivation at a time per process (see above); also
    used for the server's htpasswd hashes. Raises ValueError for parameters out of bounds.

    libargon2 through argon2-cffi: it fills the lanes on threads of its own (both cores) with the GIL released,
    and loads in 3 MiB where cryptography takes 8, so a repository is unlocked before cryptography is imported
    (see sauvegarde.util.lazy): 0.12 s instead of 0.15 s, and the 64 MiB come on top of a smaller process.
    """
    if not (
        8 * max(1, params.lanes) <= params.memory_kib <= MAX_MEMORY_KIB
        and 1 <= params.iterations <= MAX_ITERATIONS
        and 1 <= params.lanes <= MAX_LANES
        and 8 <= len(salt) <= 1024
        and 4 <= length <= 1024
    ):
        raise ValueError(f"Argon2id parameters out of bounds ({params}, salt {len(salt)} bytes)")
    with _DERIVING:
        try:
            return hash_secret_raw(
                password,
                salt,
                time_cost=params.iterations,
                memory_cost=params.memory_kib,
                parallelism=params.lanes,
                hash_len=length,
                type=Type.ID,
                version=19,
            )
        except HashingError as exc:
            raise ValueError(f"Argon2id failed: {exc}") from None
