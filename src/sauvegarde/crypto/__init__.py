"""Cryptography: authenticated encryption of objects, content IDs, and password-based key wrapping.

The only package that touches ``cryptography``, ``argon2`` and ``blake3``. Pure functions and small value classes,
no I/O.

The names below are imported on first use (PEP 562), not with the package: the key derivation
(:mod:`sauvegarde.crypto.kdf`) can then be imported alone, as the CLI does to derive the key before the rest is
loaded (:mod:`sauvegarde.cli.entry`).
"""

from __future__ import annotations

from sauvegarde.util.lazy import lazy_names

TYPE_CHECKING = False  # typing itself is imported after the key derivation (sauvegarde.cli.entry)

if TYPE_CHECKING:
    from sauvegarde.crypto.aead import OVERHEAD, Cipher
    from sauvegarde.crypto.kdf import KdfParams, derive_key
    from sauvegarde.crypto.keys import MasterKey

__all__ = ["OVERHEAD", "Cipher", "KdfParams", "MasterKey", "derive_key"]

_HOME = {"OVERHEAD": "aead", "Cipher": "aead", "KdfParams": "kdf", "derive_key": "kdf", "MasterKey": "keys"}

__getattr__ = lazy_names(__name__, _HOME)
