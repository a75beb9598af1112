"""Blob types and the location record of a blob inside a pack."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from sauvegarde.crypto import OVERHEAD


class BlobType(IntEnum):
    DATA = 0
    TREE = 1


class BlobEntry(NamedTuple):
    """Where a blob lives. ``raw_length`` is the plaintext size when stored compressed, 0 when stored raw."""

    type: int
    id: bytes
    offset: int
    length: int
    raw_length: int

    @property
    def plain_length(self) -> int:
        """Size of the blob's content once decrypted and decompressed."""
        return self.raw_length or self.length - OVERHEAD
