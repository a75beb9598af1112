"""FastCDC chunking: chunks reassemble the input, respect the size bounds, and depend on the secret seed."""

from __future__ import annotations

import dataclasses
import io
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.chunking import Chunker, ChunkerParams

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)

# The smallest parameters pyfastcdc accepts, so that small inputs give many chunks.
TINY = ChunkerParams(min_size=256, avg_size=1024, max_size=4096, seed=7)
# The parameters of sauvegarde.repository.testing.
SMALL = ChunkerParams(min_size=2048, avg_size=4096, max_size=16384, seed=12345)


def _random_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


BIG_RANDOM = _random_bytes(20240601, 4 * 1024 * 1024)

contents = st.one_of(
    st.binary(max_size=20_000),
    st.builds(_random_bytes, st.integers(0, 2**32), st.integers(0, 40_000)),
    # long runs of one byte never cut on content: every chunk but the last is max_size
    st.builds(lambda b, n: bytes([b]) * n, st.integers(0, 255), st.integers(0, 30_000)),
    # random blocks repeated: cut points recur at the same places relative to content
    st.builds(lambda s, n, k: _random_bytes(s, n) * k, st.integers(0, 1000), st.integers(1, 3000), st.integers(1, 8)),
)


def _chunks_of(params: ChunkerParams, data: bytes) -> list[bytes]:
    return [bytes(c) for c in Chunker(params).chunks_of(data)]


def _stream_chunks(params: ChunkerParams, stream: Any) -> list[bytes]:
    # each view is only valid until the next one is requested: copy at once
    return [bytes(c) for c in Chunker(params).chunks(stream)]


def _cut_points(chunks: Iterable[bytes | memoryview]) -> list[int]:
    out, pos = [], 0
    for c in chunks:
        pos += len(c)
        out.append(pos)
    return out


def _check_bounds(params: ChunkerParams, chunks: list[bytes]) -> None:
    assert all(len(c) > 0 for c in chunks)
    for c in chunks[:-1]:
        assert params.min_size <= len(c) <= params.max_size
    if chunks:
        assert len(chunks[-1]) <= params.max_size


class _Trickle:
    """A stream that returns at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._f = io.BytesIO(data)
        self._step = step

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(n, self._step) if n >= 0 else self._step)


# ---- properties -------------------------------------------------------------------------------------------


@PROPERTY
@given(data=contents)
def test_chunks_reassemble_the_input_within_bounds(data: bytes) -> None:
    chunks = _chunks_of(TINY, data)
    assert b"".join(chunks) == data
    _check_bounds(TINY, chunks)


@PROPERTY
@given(data=contents)
def test_chunking_is_deterministic(data: bytes) -> None:
    assert _chunks_of(TINY, data) == _chunks_of(TINY, data)
    assert _chunks_of(TINY, data) == _chunks_of(dataclasses.replace(TINY), bytearray(data))


@PROPERTY
@given(data=contents, step=st.integers(1, 5000))
def test_stream_chunks_equal_buffer_chunks(data: bytes, step: int) -> None:
    expected = _chunks_of(TINY, data)
    assert _stream_chunks(TINY, io.BytesIO(data)) == expected
    assert _stream_chunks(TINY, _Trickle(data, step)) == expected


@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("base", [0, 256, 4096, 12288, 2 * 12288, 5 * 12288 + 4096])
def test_stream_chunks_equal_buffer_chunks_at_buffer_edges(base: int, extra: int) -> None:
    # pyfastcdc's stream buffer holds max_size + max(8 KiB, max_size) bytes: 12288 for TINY
    n = max(0, base + extra)
    for data in (_random_bytes(n, n), b"\x00" * n):
        expected = _chunks_of(TINY, data)
        assert b"".join(expected) == data
        assert _stream_chunks(TINY, io.BytesIO(data)) == expected
        assert _stream_chunks(TINY, _Trickle(data, 1000)) == expected


@PROPERTY
@given(data=contents, window=st.integers(1, 9000), step=st.integers(1, 5000))
def test_stream_chunks_cut_a_window_at_a_time_equal_buffer_chunks(data: bytes, window: int, step: int) -> None:
    # windows smaller, equal and larger than a chunk (TINY: 256 to 4096 bytes): chunks end inside a window, the
    # last is carried over, and a window in which no chunk ends is widened
    expected = _chunks_of(TINY, data)
    got = [bytes(c) for c in Chunker(TINY).chunks(io.BytesIO(data), window=window)]
    assert got == expected
    got = [bytes(c) for c in Chunker(TINY).chunks(_Trickle(data, step), window=window)]
    assert got == expected


def test_stream_chunks_of_megabytes_in_windows_equal_buffer_chunks() -> None:
    data = BIG_RANDOM + b"\x00" * (3 * 1024 * 1024) + BIG_RANDOM[:777_777]
    expected = _chunks_of(ChunkerParams(seed=99), data)
    assert len(expected) >= 7  # about 1 MiB each, and the zero run cut at max_size
    for window in (300_000, 1 << 20, 4 << 20):
        got = _cut_points(Chunker(ChunkerParams(seed=99)).chunks(io.BytesIO(data), window=window))
        assert got == _cut_points(expected)


def test_stream_chunks_of_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = BIG_RANDOM[: 300 * 1024]
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert _stream_chunks(SMALL, f) == _chunks_of(SMALL, data)


# ---- simple cases -----------------------------------------------------------------------------------------


def test_empty_input_has_no_chunks() -> None:
    assert _chunks_of(TINY, b"") == []
    assert _stream_chunks(TINY, io.BytesIO(b"")) == []


@pytest.mark.parametrize("n", [1, 100, 255, 256])
def test_input_up_to_min_size_is_one_chunk(n: int) -> None:
    data = _random_bytes(n, n)
    assert _chunks_of(TINY, data) == [data]
    assert _stream_chunks(TINY, io.BytesIO(data)) == [data]


def test_uniform_input_is_cut_at_max_size() -> None:
    data = b"\xaa" * (3 * TINY.max_size + 10)
    assert [len(c) for c in _chunks_of(TINY, data)] == [TINY.max_size] * 3 + [10]


def test_default_parameters_work_on_megabytes() -> None:
    params = ChunkerParams(seed=99)
    chunks = _chunks_of(params, BIG_RANDOM)
    assert b"".join(chunks) == BIG_RANDOM
    _check_bounds(params, chunks)
    assert len(chunks) >= 2


# ---- seeds ------------------------------------------------------------------------------------------------


def _cuts(seed: int) -> list[int]:
    params = ChunkerParams(SMALL.min_size, SMALL.avg_size, SMALL.max_size, seed)
    return _cut_points(Chunker(params).chunks_of(BIG_RANDOM))


def test_same_seed_same_cut_points() -> None:
    assert _cuts(12345) == _cuts(12345)


def test_different_seeds_cut_differently() -> None:
    seeds = [0, 1, 12345, 12346, (1 << 62) + 5, (1 << 63) - 1]
    cuts = {s: _cuts(s) for s in seeds}
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            shared = set(cuts[a][:-1]) & set(cuts[b][:-1])
            # over ~700 cut points, independent cuts coincide only by chance (about 1 in 6000 positions)
            assert len(shared) < 0.05 * len(cuts[a]), (a, b, len(shared))


def test_effective_average_is_min_plus_avg() -> None:
    # the module documents pyfastcdc's effective average as avg_size + min_size
    cuts = _cuts(12345)
    mean = len(BIG_RANDOM) / len(cuts)
    target = SMALL.min_size + SMALL.avg_size
    assert 0.75 * target < mean < 1.25 * target, mean


def test_cut_points_resynchronise_after_an_insertion() -> None:
    data = BIG_RANDOM[: 512 * 1024]
    edited = data[:100_000] + b"inserted bytes" + data[100_000:]
    before = set(_cut_points(_chunks_of(SMALL, data)))
    after = {p - len(b"inserted bytes") for p in _cut_points(_chunks_of(SMALL, edited)) if p > 100_000}
    tail = {p for p in before if p > 150_000}
    assert tail <= after


# ---- parameters -------------------------------------------------------------------------------------------


def test_generated_seeds_are_secret_63_bit_values() -> None:
    seeds = {ChunkerParams.generate().seed for _ in range(50)}
    assert len(seeds) == 50
    assert all(0 < s < (1 << 63) for s in seeds)


def test_generated_params_keep_the_documented_sizes() -> None:
    p = ChunkerParams.generate()
    assert (p.min_size, p.avg_size, p.max_size) == (512 * 1024, 512 * 1024, 8 * 1024 * 1024)


def test_params_dict_round_trip() -> None:
    p = ChunkerParams(min_size=1, avg_size=2, max_size=3, seed=(1 << 63) - 1)
    assert p.to_dict() == {"min": 1, "avg": 2, "max": 3, "seed": (1 << 63) - 1}
    assert ChunkerParams.from_dict(p.to_dict()) == p
    assert ChunkerParams.from_dict({"min": "1", "avg": 2.0, "max": 3, "seed": 4}) == ChunkerParams(1, 2, 3, 4)
