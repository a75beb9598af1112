"""FastCDC chunker over files and streams.

pyfastcdc's effective average chunk size is ``avg_size + min_size``; ``ChunkerParams`` stores the parameters as
passed to the library so that a repository's cut points never change between versions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from pyfastcdc import FastCDC

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class ChunkerParams:
    """Chunk size bounds and the secret 63-bit gear-table seed of a repository."""

    min_size: int = 512 * KIB
    avg_size: int = 512 * KIB  # effective average is min_size + avg_size, about 1 MiB
    max_size: int = 8 * MIB
    seed: int = 0

    @classmethod
    def generate(cls) -> ChunkerParams:
        return cls(seed=int.from_bytes(os.urandom(8), "big") >> 1 or 1)

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min_size, "avg": self.avg_size, "max": self.max_size, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkerParams:
        return cls(min_size=int(d["min"]), avg_size=int(d["avg"]), max_size=int(d["max"]), seed=int(d["seed"]))


class Chunker:
    """Splits byte streams into content-defined chunks. One instance per thread."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        self._cdc = FastCDC(
            params.avg_size,
            min_size=params.min_size,
            max_size=params.max_size,
            normalized_chunking=1,
            seed=params.seed,
        )

    def chunks(self, stream: BinaryIO) -> Iterator[memoryview]:
        """Yield chunks of ``stream``; each view is valid only until the next one is requested."""
        for chunk in self._cdc.cut_stream(stream):
            yield chunk.data

    def chunks_of(self, data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """Yield chunks of an in-memory buffer (views stay valid while ``data`` lives)."""
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data
