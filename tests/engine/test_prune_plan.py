"""prune's planner against a plain statement of its rules, on random indexes full of duplicates.

The planner works on columns (every index entry looked up at once; see engine/prune.py). The reference below states
the same rules one entry at a time, over lists and sets, as the planner did before it became columnar; both must
reach the same plan for any index, used set and storage listing.
"""

from __future__ import annotations

import random

import pytest

from sauvegarde.engine.prune import PruneRefused, plan_prune
from sauvegarde.engine.referenced import BlobSet
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.packed_index import pack_rows

Outcome = dict[str, object]


def reference(
    packs: dict[bytes, list[BlobEntry]], stored: dict[bytes, int], used: set[bytes], max_unused: float
) -> Outcome:
    """The rules: each used blob goes to the most used pack holding it (used share of its bytes, ties by pack ID),
    its first copy there; packs with nothing kept go, packs with everything kept stay, and the partly used ones
    with the most unused share are repacked until the unused bytes left are within ``max_unused`` of the used."""
    uses = [(pid, entries, stored[pid]) for pid, entries in packs.items() if pid in stored]
    potential = {pid: sum(e.length for e in entries if e.id in used) / max(size, 1) for pid, entries, size in uses}
    uses.sort(key=lambda u: (-potential[u[0]], u[0]))
    assigned: set[bytes] = set()
    kept: dict[bytes, list[int]] = {}
    copies: dict[bytes, list[bytes]] = {}
    winner: dict[bytes, tuple[bytes, BlobEntry]] = {}
    unused_blobs = 0
    for pid, entries, _size in uses:
        kept[pid] = []
        for row, e in enumerate(entries):
            if e.id in used and e.id not in assigned:
                assigned.add(e.id)
                kept[pid].append(row)
                winner[e.id] = (pid, e)
            else:
                unused_blobs += 1
                if e.id in used:
                    copies.setdefault(e.id, []).append(pid)
    if used - assigned:
        return {"refused": min(used - assigned).hex()}
    used_bytes = {pid: sum(entries[r].length for r in kept[pid]) for pid, entries, _ in uses}
    unused_of = {pid: max(0, size - used_bytes[pid]) for pid, _, size in uses}
    size_of = {pid: size for pid, _, size in uses}
    keep, remove, partial, repack = [], [], [], []
    for pid, entries, _size in uses:
        if not kept[pid]:
            remove.append(pid)
        elif len(kept[pid]) == len(entries):
            keep.append(pid)
        else:
            partial.append(pid)
    limit = max_unused * sum(used_bytes.values())
    unused = sum(unused_of[p] for p in partial)
    partial.sort(key=lambda p: (-unused_of[p] / max(size_of[p], 1), p))
    for pid in partial:
        if unused > limit:
            repack.append(pid)
            unused -= unused_of[pid]
        else:
            keep.append(pid)
    going = set(remove) | set(repack)
    duplicates = []
    for pid in (*keep, *repack):
        for r in kept[pid]:
            e = packs[pid][r]
            others = [p for p in copies.get(e.id, ()) if p in going]
            if others:
                duplicates.append((pid, e, others))
    return {
        "keep": keep,
        "repack": repack,
        "remove": remove,
        "repacked": {pid: [packs[pid][r] for r in kept[pid]] for pid in repack},
        "used_bytes": used_bytes,
        "blobs": (len(assigned), unused_blobs),
        "duplicates": duplicates,
    }


def planned(
    packs: dict[bytes, list[BlobEntry]], stored: dict[bytes, int], used: set[bytes], max_unused: float
) -> Outcome:
    packed = {pid: pack_rows(list(entries)) for pid, entries in packs.items()}
    try:
        plan = plan_prune(packed, stored, BlobSet.of(sorted(used)), max_unused)
    except PruneRefused as exc:
        return {"refused": str(exc).split("(such as ")[1].split(")")[0]}
    every = (*plan.keep, *plan.repack, *plan.remove)
    return {
        "keep": [u.pack_id for u in plan.keep],
        "repack": [u.pack_id for u in plan.repack],
        "remove": [u.pack_id for u in plan.remove],
        "repacked": {u.pack_id: u.used for u in plan.repack},
        "used_bytes": {u.pack_id: u.used_bytes for u in every},
        "blobs": (plan.blobs_used, plan.blobs_unused),
        "duplicates": [(d.pack_id, d.entry, d.others) for d in plan.duplicates],
    }


def random_case(rng: random.Random) -> tuple[dict[bytes, list[BlobEntry]], dict[bytes, int], set[bytes], float]:
    pool = [rng.randbytes(32) for _ in range(rng.randint(1, 40))]
    packs: dict[bytes, list[BlobEntry]] = {}
    for _ in range(rng.randint(0, 12)):
        offset, entries = 0, []
        for _ in range(rng.randint(0, 8)):
            length = rng.choice([100, 100, 250, rng.randint(1, 5000)])  # equal lengths make ties between packs
            entries.append(BlobEntry(rng.randint(0, 1), rng.choice(pool), offset, length, length * 2))
            offset += length
        packs[rng.randbytes(32)] = entries
    stored = {pid: sum(e.length for e in es) + rng.choice([0, 0, 40, 3000]) for pid, es in packs.items()}
    for pid in rng.sample(sorted(stored), k=min(len(stored), rng.choice([0, 0, 0, 1]))):
        del stored[pid]  # named by the index, missing from storage
    if rng.random() < 0.2:
        stored[rng.randbytes(32)] = 77  # in storage, named by no index
    in_packs = sorted({e.id for es in packs.values() for e in es})
    used = set(rng.sample(in_packs, k=rng.randint(0, len(in_packs))))
    if rng.random() < 0.05:
        used.add(rng.randbytes(32))  # referenced, in no pack
    return packs, stored, used, rng.choice([0.0, 0.05, 0.3, 1.0])


@pytest.mark.parametrize("seed", range(40))
def test_the_planner_follows_the_rules_on_random_indexes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        packs, stored, used, max_unused = random_case(rng)
        assert planned(packs, stored, used, max_unused) == reference(packs, stored, used, max_unused)


def test_the_random_indexes_reach_every_branch() -> None:
    """The cases above do exercise refusals, repacks, removals and duplicates to read back (or they prove little)."""
    rng = random.Random(0)
    seen = {"refused": 0, "repack": 0, "remove": 0, "duplicates": 0}
    for _ in range(40 * 25):
        got = reference(*random_case(rng))
        for key in seen:
            seen[key] += bool(got.get(key))
    assert all(n >= 20 for n in seen.values()), seen
