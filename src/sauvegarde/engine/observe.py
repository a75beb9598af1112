"""What a backup lets an observer (the ransomware guard) see: a few blocks of each file it reads, each directory's
names against the parent's, and the end of the run. The engine defines the protocol; ``guard/`` implements it.

Observers see only what the engine reads anyway: no file is read twice, and files carried over unchanged from the
parent snapshot are not shown at all.
"""

from __future__ import annotations

from typing import Any, Protocol

from sauvegarde.engine.parent import Wire
from sauvegarde.repository import Node, Snapshot

SAMPLE_BLOCK = 4096  # bytes per sampled block
_MAX_INNER = 16  # blocks sampled from inside one file


class BlockSampler:
    """Keeps a few blocks of the buffers a file worker reads: the first, the last, and some at offsets inside each
    buffer (at fifths, so that blocks of power-of-two layouts are not all skipped). Slicing only: no copy of the
    buffers is kept beyond the blocks themselves."""

    __slots__ = ("head", "inner", "tail")

    def __init__(self) -> None:
        self.head = b""
        self.tail = b""
        self.inner: list[bytes] = []

    def feed(self, buf: bytes | bytearray | memoryview) -> None:
        n = len(buf)
        if not self.head:
            self.head = bytes(buf[:SAMPLE_BLOCK])
            if n <= SAMPLE_BLOCK:
                self.tail = self.head
                return
        elif len(self.inner) < _MAX_INNER:
            self.inner.append(bytes(buf[:SAMPLE_BLOCK]))
        if n > 3 * SAMPLE_BLOCK and len(self.inner) < _MAX_INNER:
            k = 4 if n >= 256 * 1024 else 2
            for i in range(1, k + 1):
                at = i * n // (k + 1)
                self.inner.append(bytes(buf[at : at + SAMPLE_BLOCK]))
        self.tail = bytes(buf[-SAMPLE_BLOCK:]) if n >= SAMPLE_BLOCK else (self.tail + bytes(buf))[-SAMPLE_BLOCK:]


class BackupObserver(Protocol):
    """Called by :class:`~sauvegarde.engine.backup.Backup`; ``file`` runs in file worker threads, concurrently."""

    def start(self, parent: Snapshot | None, previous: list[Snapshot]) -> None:
        """Before walking: the parent snapshot and the earlier snapshots of the same host and paths, oldest first."""

    def directory(self, path: bytes, parents: dict[bytes, Wire], names: list[bytes]) -> None:
        """A directory was listed (main thread): its entries' names, and the parent snapshot's entries."""

    def file(self, path: bytes, node: Node, sample: BlockSampler, parent: Wire | None) -> None:
        """A new or changed file was read and saved (``node.content`` set); may set ``node.kind``."""

    def finish(self, summary: dict[str, Any]) -> dict[str, Any] | None:
        """The backup is complete: what to store in the snapshot (under ``guard``), if anything."""
