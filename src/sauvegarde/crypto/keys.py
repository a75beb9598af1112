"""The repository master key: an encryption key and a separate key for content IDs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import blake3

from sauvegarde.crypto.aead import Buffer, Cipher


@dataclass(frozen=True)
class MasterKey:
    """Random secrets of one repository. ``enc_key`` encrypts, ``id_key`` names content."""

    enc_key: bytes
    id_key: bytes

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(enc_key=os.urandom(32), id_key=os.urandom(32))

    def cipher(self) -> Cipher:
        return Cipher(self.enc_key)

    def content_id(self, data: Buffer) -> bytes:
        """Keyed BLAKE3 of plaintext: the ID of a blob. Without the key it reveals nothing about the content."""
        return blake3.blake3(data, key=self.id_key).digest()

    def to_dict(self) -> dict[str, bytes]:
        return {"enc": self.enc_key, "id": self.id_key}

    @classmethod
    def from_dict(cls, d: dict[str, bytes]) -> MasterKey:
        return cls(enc_key=bytes(d["enc"]), id_key=bytes(d["id"]))
