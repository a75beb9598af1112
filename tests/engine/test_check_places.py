"""check's blob map (engine.check_places): the NumPy form answers exactly as the dict form, on packs with blobs
held twice, IDs sharing their first 8 bytes, IDs in no index and trees listing a blob twice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.engine import check_places
from sauvegarde.engine.check_places import ArrayPlaces, DictPlaces, build_places
from sauvegarde.repository.packed_index import pack_rows


def _ids(seeds: list[tuple[int, int]]) -> list[bytes]:
    """32-byte IDs: the first 8 bytes from a small range (so that some share them), the rest from another."""
    return [a.to_bytes(8, "big") + b.to_bytes(24, "big") for a, b in seeds]


def _packs(ids: list[bytes], layout: list[list[int]]) -> dict[bytes, bytes]:
    """Packs named p0, p1... holding the IDs at the given positions (a position in two packs: a blob held twice)."""
    return {
        b"p%d" % n + bytes(30): pack_rows([[k % 2, ids[i % len(ids)], 100 * k, 10, 0] for k, i in enumerate(rows)])
        for n, rows in enumerate(layout)
    }


seeds = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=20, unique=True)


@settings(max_examples=300, deadline=None)
@given(
    seeds=seeds,
    layout=st.lists(st.lists(st.integers(0, 19), max_size=8), max_size=6),
    walks=st.lists(st.lists(st.integers(0, 25), max_size=10), max_size=8),
)
def test_both_forms_answer_alike(seeds: list[tuple[int, int]], layout: list[list[int]], walks: list[list[int]]) -> None:
    ids = _ids(seeds)
    # positions past the IDs in packs name IDs in no index (same first bytes as some, other rest)
    others = _ids([(a, b + 10) for a, b in seeds])
    every = ids + others
    small, large = DictPlaces(_packs(ids, layout)), ArrayPlaces(_packs(ids, layout))
    assert large.duplicates == small.duplicates
    assert (large.referenced, large.unused) == (small.referenced, small.unused)
    for walk in walks:
        joined = b"".join(every[i % len(every)] for i in walk)
        assert large.use_all(joined) == small.use_all(joined)
        assert (large.referenced, large.unused) == (small.referenced, small.unused)
        assert large.missing == small.missing
    for blob_id in every:
        assert large.packs(blob_id) == small.packs(blob_id)
    for blob_id in reversed(every):
        assert large.use(blob_id) == small.use(blob_id)
    assert (large.referenced, large.unused) == (small.referenced, small.unused) == (len(set(every)), 0)


def test_the_map_is_built_from_the_packs_and_frees_them(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _ids([(1, 1), (1, 2), (2, 1)])
    packs = _packs(ids, [[0, 1], [1, 2]])
    places = build_places(packs)
    assert isinstance(places, DictPlaces) and packs == {}
    assert places.packs(ids[1]) == [b"p0" + bytes(30), b"p1" + bytes(30)] and places.duplicates == 1
    monkeypatch.setattr(check_places, "ARRAY_FROM", 4)
    packs = _packs(ids, [[0, 1], [1, 2]])
    places = build_places(packs)
    assert isinstance(places, ArrayPlaces) and packs == {}
    assert places.packs(ids[1]) == [b"p0" + bytes(30), b"p1" + bytes(30)] and places.duplicates == 1
    assert places.use_all(ids[2] + ids[0] + ids[2] + bytes(32)) == ([ids[2], ids[0], bytes(32)], False)
    assert places.missing == {bytes(32)} and (places.referenced, places.unused) == (3, 1)
