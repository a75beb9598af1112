"""FastCDC chunker over files and streams.

pyfastcdc's effective average chunk size is ``avg_size + min_size``; ``ChunkerParams`` stores the parameters as
passed to the library so that a repository's cut points never change between versions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import pyfastcdc
else:
    pyfastcdc = lazy_module("pyfastcdc")  # imported on first use, after the key derivation (sauvegarde.util.lazy)

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
        self._cdc = pyfastcdc.FastCDC(
            params.avg_size,
            min_size=params.min_size,
            max_size=params.max_size,
            normalized_chunking=1,
            seed=params.seed,
        )

    def chunks(self, stream: BinaryIO, window: int = 4 * MIB) -> Iterator[memoryview]:
        """Yield chunks of ``stream``; each view is valid only until the next one is requested.

        The stream is cut a window at a time with the buffer chunker, which gives the same cut points as cutting the
        whole stream: a chunk that ends before the window's end was decided by bytes inside it, and the last one,
        which may only end because the window does, is carried over to the front of the next window (widened while
        no chunk ends inside it). One buffer is reused: pyfastcdc's own stream chunker holds a zero-filled buffer of
        twice the largest chunk (16 MiB) per file; this one is a window plus the carried chunk, about 5 MiB.
        """
        buf = bytearray(window)
        filled = 0  # bytes of buf holding data; the carried chunk is at the front
        want = window
        while True:
            if len(buf) < want:
                grown = bytearray(want)  # no view of the old buffer is alive: the last one was handed back
                grown[:filled] = buf[:filled]
                buf = grown
            eof = False
            with memoryview(buf) as view:
                while filled < want:
                    n = _read_into(stream, view[filled:want])
                    if not n:
                        eof = True
                        break
                    filled += n
            data = memoryview(buf)[:filled]
            if eof:
                for chunk in self._cdc.cut_buf(data):
                    yield chunk.data
                return
            done = 0
            for chunk in self._cdc.cut_buf(data):
                end = chunk.offset + chunk.length
                if end == filled:
                    break
                yield chunk.data
                done = end
            data.release()
            if done:
                buf[: filled - done] = buf[done:filled]  # same length as the buffer: allowed while views exist
                filled -= done
                want = max(window, filled + MIB)
            else:
                want = filled + window

    def chunks_of(self, data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """Yield chunks of an in-memory buffer (views stay valid while ``data`` lives)."""
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``stream`` (files and stdin have ``readinto``; plain ``read`` also works)."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(view) or 0)
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)
