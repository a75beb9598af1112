"""zstd compression of blobs: round trips, the raw fallback, and strict decompression."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
import threading

import pytest
import zstandard
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sauvegarde.compression import DEFAULT_LEVEL, compress, compress_many, decompress, looks_compressed
from sauvegarde.errors import IntegrityError

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)

TEXT = b"The quick brown fox jumps over the lazy dog. " * 200
RANDOM = random.Random(5).randbytes(64 * 1024)

compressible = st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=40), st.integers(64, 2000))


@PROPERTY
@given(data=compressible, level=st.integers(1, 9))
def test_round_trip(data: bytes, level: int) -> None:
    assume(not looks_compressed(data))
    packed = compress(data, level)
    assert packed is not None
    assert decompress(packed, len(data)) == data


@PROPERTY
@given(data=st.binary(max_size=3000))
def test_compress_either_saves_a_32nd_or_returns_none(data: bytes) -> None:
    packed = compress(data)
    if packed is None:
        return
    assert len(packed) <= len(data) - len(data) // 32
    assert decompress(packed, len(data)) == data


def test_default_level_is_3() -> None:
    assert DEFAULT_LEVEL == 3
    packed = compress(TEXT)
    assert packed is not None
    assert zstandard.ZstdDecompressor().decompress(packed) == TEXT  # plain zstd frame


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_buffers_of_any_kind(wrap: type) -> None:
    packed = compress(wrap(TEXT))
    assert packed is not None
    assert decompress(wrap(packed), len(TEXT)) == TEXT


def test_incompressible_data_returns_none() -> None:
    assert compress(RANDOM) is None
    assert compress(RANDOM[:100]) is None


def test_tiny_inputs_are_stored_raw() -> None:
    assert compress(b"") is None
    assert compress(b"a" * 63) is None
    assert compress(b"a" * 64) is not None


@pytest.mark.parametrize("level", [0, -1])
def test_level_zero_or_below_disables_compression(level: int) -> None:
    assert compress(TEXT, level) is None


@pytest.mark.parametrize("delta", [-1, 1, -len(TEXT) // 2, 1_000_000])
def test_wrong_raw_length_is_an_integrity_error(delta: int) -> None:
    packed = compress(TEXT)
    assert packed is not None
    with pytest.raises(IntegrityError):
        decompress(packed, len(TEXT) + delta)


def test_zero_raw_length_is_an_integrity_error() -> None:
    packed = compress(TEXT)
    assert packed is not None
    with pytest.raises(IntegrityError):
        decompress(packed, 0)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"not a zstd frame at all", RANDOM[:1000], b"\x28\xb5\x2f\xfd" + b"\xff" * 20],
    ids=["empty", "nul", "text", "random", "bad-frame"],
)
def test_garbage_is_an_integrity_error(garbage: bytes) -> None:
    with pytest.raises(IntegrityError, match="blob 42"):
        decompress(garbage, 100, what="blob 42")


def test_truncated_frame_is_an_integrity_error() -> None:
    packed = compress(TEXT)
    assert packed is not None
    for cut in (1, 5, len(packed) // 2):
        with pytest.raises(IntegrityError):
            decompress(packed[:-cut], len(TEXT))


def test_frame_without_content_size_must_still_match() -> None:
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    packed = cctx.compress(TEXT)
    assert decompress(packed, len(TEXT)) == TEXT
    with pytest.raises(IntegrityError):
        decompress(packed, len(TEXT) - 1)
    with pytest.raises(IntegrityError):
        decompress(packed, len(TEXT) + 1)


def test_thread_safety() -> None:
    inputs = [bytes([i]) * 1000 + TEXT[: 100 * i] for i in range(1, 30)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                for data in inputs:
                    packed = compress(data)
                    assert packed is not None
                    assert decompress(packed, len(data)) == data
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@PROPERTY
@given(
    datas=st.lists(st.one_of(compressible, st.binary(max_size=3000)), min_size=0, max_size=40),
    level=st.integers(-1, 6),
    threads=st.sampled_from([-1, 1, 2]),
)
def test_compress_many_is_compress_of_each_in_order(datas: list[bytes], level: int, threads: int) -> None:
    many = compress_many(datas, level, threads)
    assert many == [compress(d, level) for d in datas]
    for d, packed in zip(datas, many, strict=True):
        if packed is not None:
            assert decompress(packed, len(d)) == d


def test_compress_many_keeps_the_order_of_hundreds_of_distinct_inputs() -> None:
    rng = random.Random(8)
    datas = [bytes([i % 251]) * rng.randint(64, 40_000) + rng.randbytes(rng.randint(0, 500)) for i in range(600)]
    many = compress_many(datas)
    assert sum(p is not None for p in many) == 600
    assert [decompress(p, len(d)) for p, d in zip(many, datas, strict=True) if p is not None] == datas


# starts of real files in formats compressed already, then text zstd would compress well (the start decides)
COMPRESSED_STARTS = {
    "gzip": gzip.compress(b"x")[:10],
    "bzip2": bz2.compress(b"x")[:10],
    "xz": lzma.compress(b"x")[:10],
    "zstd": zstandard.compress(b"x")[:4],
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "gif": b"GIF89a",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "mp4": b"\x00\x00\x00\x20ftypisom",
    "heic": b"\x00\x00\x00\x18ftypheic",
    "mkv": b"\x1a\x45\xdf\xa3\x9f",
    "ogg": b"OggS\x00\x02",
    "flac": b"fLaC\x00",
    "7z": b"7z\xbc\xaf\x27\x1c\x00\x04",
    "rar": b"Rar!\x1a\x07\x01\x00",
    "lz4": b"\x04\x22\x4d\x18\x64",
}


@pytest.mark.parametrize("start", COMPRESSED_STARTS.values(), ids=COMPRESSED_STARTS.keys())
def test_compressed_formats_are_stored_raw_without_trying(start: bytes) -> None:
    data = start + TEXT
    assert looks_compressed(data)
    assert looks_compressed(memoryview(data))
    assert compress(data) is None
    assert compress_many([TEXT, data, TEXT], threads=2)[1] is None
    assert compress_many([TEXT, data], threads=1)[1] is None
    assert compress(TEXT) is not None  # the same text on its own is compressed


@pytest.mark.parametrize(
    "start",
    [b"", b"BZh", b"BZhx", b"PK\x03\x04", b"%PDF-1.7", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"\x1f\x8b", b"GIF8"],
    ids=["empty", "bz-without-size", "bz-bad-size", "zip", "pdf", "wav", "gzip-without-method", "gif-short"],
)
def test_other_starts_are_compressed(start: bytes) -> None:
    """ZIP members and PDF streams may be stored uncompressed, WAV is raw audio: still compressed; prefixes of a
    signature are not the signature."""
    assert not looks_compressed(start)
    assert not looks_compressed(start + TEXT)
    packed = compress(start + TEXT)
    assert packed is not None
    assert decompress(packed, len(start + TEXT)) == start + TEXT


def test_compress_many_with_only_compressed_formats() -> None:
    datas = [start + TEXT for start in COMPRESSED_STARTS.values()]
    assert compress_many(datas, threads=2) == [None] * len(datas)
