"""BlobSet: the referenced-ID set prune and retention upkeep plan with, merged in batches, each ID once."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sauvegarde.engine import referenced
from sauvegarde.engine.referenced import BlobSet
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.packed_index import pack_rows


def test_ids_added_in_batches_are_kept_sorted_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(referenced, "_MERGE_AT", 7)  # merged many times over
    monkeypatch.setattr(referenced, "_SQUEEZE_ROWS", 3)  # repeats squeezed out over many blocks
    rng = random.Random(1)
    ids = [rng.randbytes(32) for _ in range(100)]
    s = BlobSet()
    added: set[bytes] = set()
    for _ in range(40):
        batch = rng.choices(ids[:80], k=rng.randint(0, 9))  # repeats within and across batches
        s.add(b"".join(batch))
        added.update(batch)
    assert list(s) == sorted(added) and len(s) == len(added)
    assert all(i in s for i in added) and not any(i in s for i in ids[80:])
    assert b"short" not in s and 5 not in s
    query = np.frombuffer(b"".join(ids), "V32")
    pos, found = s.positions(query)
    assert found.tolist() == [i in added for i in ids]
    assert all(s.sorted[p].tobytes() == i for p, i, f in zip(pos.tolist(), ids, found.tolist(), strict=True) if f)


def test_ids_sharing_their_first_eight_bytes_are_told_apart() -> None:
    """The search goes by the first 8 bytes; IDs sharing them are compared whole (found wherever they sit in the
    run of rows with that key, and one absent from the run is not found)."""
    head = b"\x42" * 8
    same = [head + bytes([n]) * 24 for n in range(10)]
    others = [bytes([n]) * 32 for n in (1, 0x42, 0xFF)]
    s = BlobSet.of(same[::2] + others)
    query = same + others
    pos, found = s.positions(np.frombuffer(b"".join(query), "V32"))
    assert found.tolist() == [n % 2 == 0 for n in range(10)] + [True] * 3
    assert all(s.sorted[p].tobytes() == q for p, q, f in zip(pos.tolist(), query, found.tolist(), strict=True) if f)
    assert [i in s for i in same] == [n % 2 == 0 for n in range(10)]


def test_an_empty_set_finds_nothing() -> None:
    s = BlobSet.of([])
    assert len(s) == 0 and list(s) == [] and bytes(32) not in s
    assert s.positions(np.frombuffer(bytes(64), "V32"))[1].tolist() == [False, False]


def test_a_pack_is_needed_if_any_of_its_entries_is_referenced() -> None:
    a, b, c = (bytes([n]) * 32 for n in (1, 2, 3))
    s = BlobSet.of([b])
    assert s.holds_any(pack_rows([BlobEntry(0, a, 0, 10, 10), BlobEntry(0, b, 10, 10, 10)]))
    assert not s.holds_any(pack_rows([BlobEntry(0, a, 0, 10, 10), BlobEntry(1, c, 10, 10, 10)]))
    assert not s.holds_any(b"")


def test_ids_must_be_whole() -> None:
    with pytest.raises(ValueError):
        BlobSet().add(b"x" * 33)
