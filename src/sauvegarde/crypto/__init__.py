"""Cryptography: authenticated encryption of objects, content IDs, and password-based key wrapping.

The only package that touches ``cryptography``, ``argon2`` and ``blake3``. Pure functions and small value classes,
no I/O.
"""

from sauvegarde.crypto.aead import OVERHEAD, Cipher
from sauvegarde.crypto.kdf import KdfParams, derive_key
from sauvegarde.crypto.keys import MasterKey

__all__ = ["OVERHEAD", "Cipher", "KdfParams", "MasterKey", "derive_key"]
