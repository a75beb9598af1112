"""zstd compression of blobs; a blob is stored raw when compression saves too little to be worth it, and without
trying when it starts like a file format that is compressed already."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sauvegarde.errors import IntegrityError
from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import zstandard
else:
    zstandard = lazy_module("zstandard")  # imported on first use, after the key derivation (sauvegarde.util.lazy)

DEFAULT_LEVEL = 3
# Keep the compressed form only when it saves at least 1/32 (about 3 %) of the size.
_MIN_SAVING_SHIFT = 5

Buffer = bytes | bytearray | memoryview

# Formats compressed throughout, by their first bytes: zstd saves under 1/32 of them, so their blobs were stored raw
# anyway after a compression attempt that cost as much as any other data's. /usr/share (50,000 files, 577 MB): 0.29
# s of the 2.6 s zstd took went to such blobs, kept raw; together they would have saved 0.6 MB (a few small PNGs and
# gzip files with long headers), 0.2 % of the repository. Not ZIP (members may be stored uncompressed), PDF or
# TIFF (their streams may be raw), nor anything recognised by an extension rather than its content.
_COMPRESSED_MAGIC = (
    b"\x1f\x8b\x08",  # gzip (deflate)
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"\x04\x22\x4d\x18",  # lz4 frame
    b"7z\xbc\xaf\x27\x1c",  # 7-Zip
    b"Rar!\x1a\x07",  # RAR
    b"\x89PNG\r\n\x1a\n",  # PNG
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"\x1a\x45\xdf\xa3",  # Matroska, WebM
    b"OggS",  # Ogg (Vorbis, Opus, Theora)
    b"fLaC",  # FLAC
)
_HEAD = 12  # bytes looked at


def looks_compressed(data: Buffer) -> bool:
    """Whether ``data`` starts like a file format whose content is compressed already (see above). A wrong guess
    costs only size: such a blob is stored raw, which is always valid."""
    head = bytes(data[:_HEAD])
    if head.startswith(b"BZh"):  # bzip2, then its block size digit
        return len(head) > 3 and head[3] in b"123456789"
    if head.startswith(_COMPRESSED_MAGIC):
        return True
    # RIFF containers of WebP images; ISO media files (MP4, MOV, HEIF/AVIF images) by their ftyp box
    return (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[4:8] == b"ftyp"


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "c", None)
    if cache is None:
        cache = _local.c = {}
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level)
    return comp


def _worth_trying(data: Buffer) -> bool:
    return len(data) >= 64 and not looks_compressed(data)


def _saves_enough(packed_length: int, n: int) -> bool:
    return packed_length <= n - (n >> _MIN_SAVING_SHIFT)


def compress(data: Buffer, level: int = DEFAULT_LEVEL) -> bytes | None:
    """Compressed bytes of ``data``, or ``None`` when storing it raw is as good (or it :func:`looks_compressed`)."""
    if level <= 0 or not _worth_trying(data):
        return None
    out: bytes = _compressor(level).compress(data)
    return out if _saves_enough(len(out), len(data)) else None


def compress_many(datas: Sequence[Buffer], level: int = DEFAULT_LEVEL, threads: int = -1) -> list[bytes | None]:
    """:func:`compress` of each item; with ``threads`` other than 1, in one native call that releases the GIL and
    uses that many threads (-1: one per core).

    Small files reach here in batches: one call per file would hand the GIL back and forth between the file
    workers for each of them, which cost more than compressing them. But each such call starts its threads and
    compression contexts afresh (their tables zeroed in new pages); where processes already share the cores,
    ``threads=1`` compresses in the calling thread with its kept context instead (a split first backup of
    /usr/share: 4.1-4.2 -> 3.5-4.1 s over eight runs, a quarter of its system time gone).
    """
    if level <= 0 or len(datas) < 2 or threads == 1:
        return [compress(d, level) for d in datas]
    out: list[bytes | None] = [None] * len(datas)
    tried = [i for i, d in enumerate(datas) if _worth_trying(d)]
    if not tried:
        return out
    frames = _compressor(level).multi_compress_to_buffer([datas[i] for i in tried], threads=threads)
    for k, i in enumerate(tried):
        frame = frames[k]
        if _saves_enough(len(frame), len(datas[i])):
            out[i] = frame.tobytes()
    return out


def decompress(data: Buffer, raw_length: int, what: str = "blob") -> bytes:
    """Decompress exactly ``raw_length`` bytes; anything else is an integrity error."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "d", None)
    if dctx is None:
        dctx = _local.d = zstandard.ZstdDecompressor()
    try:
        out: bytes = dctx.decompress(data, max_output_size=raw_length)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what}: cannot decompress ({exc})") from None
    if len(out) != raw_length:
        raise IntegrityError(f"{what}: decompressed to {len(out)} bytes, expected {raw_length}")
    return out
