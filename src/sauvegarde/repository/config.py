"""The repository config object: format version, repository ID and chunker parameters.

Stored as ``MAGIC || version byte || sealed JSON``. The plaintext prefix lets any version of Sauvegarde say
"this repository needs a newer version" before asking for a password.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from sauvegarde.chunking import ChunkerParams
from sauvegarde.compression import DEFAULT_LEVEL
from sauvegarde.crypto import Cipher
from sauvegarde.errors import FormatError
from sauvegarde.storage.capabilities import RetentionPolicy

MAGIC = b"SAUVEGARDE-REPO\n"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RepoConfig:
    repo_id: str
    chunker: ChunkerParams
    version: int = FORMAT_VERSION
    compression_level: int = DEFAULT_LEVEL
    pack_size: int = 16 * 1024 * 1024
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def immutability(self) -> RetentionPolicy | None:
        """The Object Lock retention policy (optional ``immutability`` field), or None."""
        return RetentionPolicy.from_dict(self.extra.get("immutability"))

    @classmethod
    def generate(cls, chunker: ChunkerParams | None = None) -> RepoConfig:
        return cls(repo_id=os.urandom(16).hex(), chunker=chunker or ChunkerParams.generate())

    def encode(self, cipher: Cipher) -> bytes:
        body = {
            "version": self.version,
            "id": self.repo_id,
            "chunker": self.chunker.to_dict(),
            "compression_level": self.compression_level,
            "pack_size": self.pack_size,
            **self.extra,
        }
        return MAGIC + bytes([self.version]) + cipher.seal(json.dumps(body).encode(), aad=MAGIC)

    @staticmethod
    def peek_version(raw: bytes) -> int:
        """Format version from the plaintext prefix, without any key."""
        if not raw.startswith(MAGIC) or len(raw) <= len(MAGIC):
            raise FormatError("config: not a Sauvegarde repository config")
        return raw[len(MAGIC)]

    @classmethod
    def check_version(cls, raw: bytes) -> int:
        """:meth:`peek_version`, raising :class:`FormatError` for a format this version cannot read."""
        version = cls.peek_version(raw)
        if version != FORMAT_VERSION:
            raise FormatError(f"repository format {version} is not supported by this version (knows {FORMAT_VERSION})")
        return version

    @classmethod
    def decode(cls, raw: bytes, cipher: Cipher) -> RepoConfig:
        cls.check_version(raw)
        body = json.loads(cipher.open(raw[len(MAGIC) + 1 :], aad=MAGIC, what="config"))
        known = {"version", "id", "chunker", "compression_level", "pack_size"}
        return cls(
            repo_id=body["id"],
            chunker=ChunkerParams.from_dict(body["chunker"]),
            version=int(body["version"]),
            compression_level=int(body["compression_level"]),
            pack_size=int(body["pack_size"]),
            extra={k: v for k, v in body.items() if k not in known},
        )
