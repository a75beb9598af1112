"""Password-based key derivation with Argon2id (RFC 9106), parameters stored beside each key file."""

from __future__ import annotations

import os
from _thread import allocate_lock

from _argon2_cffi_bindings import ffi, lib

# This module is imported, with libargon2's bindings only, before the rest of the program when the CLI derives a
# key ahead (sauvegarde.cli.entry): no typing, dataclasses, threading or argon2-cffi's Python package (about
# 4 MiB together), which would add to the 64 MiB peak.


class KdfParams:
    """Argon2id cost parameters, immutable; the defaults follow RFC 9106's second recommended option (64 MiB, t=3).

    A plain class rather than a dataclass or a NamedTuple: see above."""

    __slots__ = ("iterations", "lanes", "memory_kib")
    memory_kib: int
    iterations: int
    lanes: int

    def __init__(self, memory_kib: int = 64 * 1024, iterations: int = 3, lanes: int = 4) -> None:
        for name, value in (("memory_kib", memory_kib), ("iterations", iterations), ("lanes", lanes)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"KdfParams is immutable (cannot set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"KdfParams is immutable (cannot delete {name})")

    def _values(self) -> tuple[int, int, int]:
        return (self.memory_kib, self.iterations, self.lanes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KdfParams) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"KdfParams(memory_kib={self.memory_kib}, iterations={self.iterations}, lanes={self.lanes})"

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
_DERIVING = allocate_lock()

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

    libargon2 through its CFFI bindings (argon2-cffi-bindings): it fills the lanes on threads of its own (both
    cores) with the GIL released, and loads in 0.4 MiB where cryptography takes 8, so a repository is unlocked
    before cryptography is imported (see sauvegarde.util.lazy): 0.12 s instead of 0.15 s, and the 64 MiB come on
    top of a smaller process.
    """
    if not (
        8 * max(1, params.lanes) <= params.memory_kib <= MAX_MEMORY_KIB
        and 1 <= params.iterations <= MAX_ITERATIONS
        and 1 <= params.lanes <= MAX_LANES
        and 8 <= len(salt) <= 1024
        and 4 <= length <= 1024
    ):
        raise ValueError(f"Argon2id parameters out of bounds ({params}, salt {len(salt)} bytes)")
    out = ffi.new("uint8_t[]", length)
    with _DERIVING:
        status = lib.argon2_hash(
            params.iterations,
            params.memory_kib,
            params.lanes,
            ffi.new("uint8_t[]", password),
            len(password),
            ffi.new("uint8_t[]", salt),
            len(salt),
            out,
            length,
            ffi.NULL,  # no encoded (PHC string) output
            0,
            lib.Argon2_id,
            lib.ARGON2_VERSION_13,
        )
    if status != lib.ARGON2_OK:
        raise ValueError(f"Argon2id failed: {ffi.string(lib.argon2_error_message(status)).decode()}")
    return bytes(ffi.buffer(out, length))
