"""Pack files: many encrypted blobs followed by an encrypted header listing them.

Layout: ``blob_0 || ... || blob_n || sealed(header) || u32le(len(sealed(header)))``, where the header is the
msgpack list of ``[type, id, offset, length, raw_length]`` per blob. The header alone lets an index be rebuilt
from packs. A pack's ID is the BLAKE3 hash of all its bytes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import blake3
import msgpack

from sauvegarde.crypto import Cipher
from sauvegarde.errors import FormatError, StorageError
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.storage.base import Buffer

_TRAILER = struct.Struct("<I")
TRAILER_SIZE = _TRAILER.size
HEADER_AAD = b"sauvegarde pack header v1"
MAX_HEADER = 64 * 1024 * 1024
_SPOOL_BUFFER = 1024 * 1024  # a spooled pack is written a megabyte at a time


class PackWriter:
    """Accumulates sealed blobs until :meth:`finish`. Not thread-safe: callers serialize.

    In memory, in one growing buffer (a pack is never held twice); or, given ``spool_dir``, in a temporary file
    there (:class:`SpooledPack`), hashed as it is written, so a pack being filled holds about a megabyte of memory
    instead of up to a whole pack.
    """

    def __init__(self, blob_type: int, spool_dir: str | None = None) -> None:
        self.blob_type = blob_type
        self.buf = bytearray()
        self.entries: list[BlobEntry] = []
        self._spool_dir = spool_dir
        self._spool: SpooledPack | None = None
        self._file: BinaryIO | None = None
        self._hash: Any = None
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def add(self, blob_id: bytes, sealed: Buffer, raw_length: int) -> None:
        self.entries.append(BlobEntry(self.blob_type, blob_id, self._size, len(sealed), raw_length))
        self._size += len(sealed)
        if self._spool_dir is None:
            self.buf += sealed
            return
        if self._file is None:
            self._open_spool(self._spool_dir)
        assert self._file is not None
        try:
            self._file.write(sealed)
        except OSError as exc:
            raise StorageError(f"cannot write a temporary pack file in {self._spool_dir}: {exc.strerror}") from None
        self._hash.update(sealed)

    def _open_spool(self, spool_dir: str) -> None:
        try:
            fd, path = tempfile.mkstemp(prefix=".tmp-spool-", suffix=".pack", dir=spool_dir)
        except OSError as exc:
            raise StorageError(f"cannot create a temporary pack file in {spool_dir}: {exc.strerror}") from None
        self._spool = SpooledPack(path, 0)
        try:
            self._file = open(fd, "wb", buffering=_SPOOL_BUFFER)  # noqa: SIM115 (closed by finish or discard)
        except BaseException:
            os.close(fd)
            self.discard()
            raise
        self._hash = blake3.blake3()

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self, cipher: Cipher) -> tuple[bytes, bytearray | SpooledPack, list[BlobEntry]]:
        """Returns ``(pack_id, pack, entries)``, the pack in memory or spooled; the writer must not be used
        afterwards."""
        header = cipher.seal(encode_header(self.entries), aad=HEADER_AAD)
        trailer = _TRAILER.pack(len(header))
        if self._file is None:
            data, self.buf = self.buf, bytearray()
            data += header
            data += trailer
            return blake3.blake3(data).digest(), data, self.entries
        assert self._spool is not None
        spool, file = self._spool, self._file
        try:
            file.write(header)
            file.write(trailer)
            file.close()  # flushes; the storage makes it durable
        except OSError as exc:
            self.discard()
            raise StorageError(f"cannot write a temporary pack file in {self._spool_dir}: {exc.strerror}") from None
        except BaseException:
            self.discard()
            raise
        self._file = self._spool = None  # the caller owns the file now
        self._hash.update(header)
        self._hash.update(trailer)
        spool.size = self._size + len(header) + len(trailer)
        return self._hash.digest(), spool, self.entries

    def discard(self) -> None:
        """Remove the spool file of a pack that will not be finished (an interrupted backup)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._spool is not None:
            self._spool.remove()


@dataclass
class SpooledPack:
    """A finished pack in a temporary file, until it is stored (then :meth:`remove`)."""

    path: str
    size: int

    def read(self) -> bytearray:
        data = bytearray(self.size)
        view = memoryview(data)
        with open(self.path, "rb", buffering=0) as f:
            done = 0
            while done < self.size:
                n = f.readinto(view[done:])
                if not n:
                    break
                done += n
            if done != self.size or f.read(1):
                raise OSError(f"spooled pack {self.path} changed size")
        return data

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def encode_header(entries: Sequence[BlobEntry]) -> bytes:
    return bytes(msgpack.packb(entries))  # BlobEntry is a tuple: packed as an array


def header_length(trailer: bytes, pack_size: int, what: str) -> int:
    """Length of the sealed header from the pack's last four bytes."""
    if len(trailer) != TRAILER_SIZE:
        raise FormatError(f"{what}: truncated pack")
    (n,) = _TRAILER.unpack(trailer)
    if n > MAX_HEADER or n + TRAILER_SIZE > pack_size:
        raise FormatError(f"{what}: invalid header length {n}")
    return int(n)


def decode_header(sealed: bytes, cipher: Cipher, what: str) -> list[BlobEntry]:
    plain = cipher.open(sealed, aad=HEADER_AAD, what=f"{what} header")
    try:
        return [BlobEntry(int(t), bytes(i), int(o), int(n), int(r)) for t, i, o, n, r in msgpack.unpackb(plain)]
    except (ValueError, TypeError) as exc:
        raise FormatError(f"{what}: malformed header ({exc})") from None


def parse_pack(data: bytes, cipher: Cipher, what: str) -> list[BlobEntry]:
    """Entries of a whole pack held in memory, with bounds checked against the pack's blob area."""
    n = header_length(data[-TRAILER_SIZE:], len(data), what)
    start = len(data) - TRAILER_SIZE - n
    return check_bounds(decode_header(data[start : start + n], cipher, what), start, what)


def check_bounds(entries: list[BlobEntry], area_end: int, what: str) -> list[BlobEntry]:
    """``entries``, once each is known to lie within the blob area (which ends where the header starts)."""
    for e in entries:
        if e.offset + e.length > area_end:
            raise FormatError(f"{what}: blob {e.id.hex()} extends past the blob area")
    return entries
