"""A repository for measuring prune at scale, written directly: N data blobs and snapshots referring to most of them.

``python -m bench.prune_repo PATH N`` (SAUVEGARDE_PASSWORD set) creates at PATH a repository whose index names N
seeded data blobs in packs of 1,000 (1,200 bytes each; the pack files are sparse files of the right size, which
``prune --dry-run`` lists but never reads), and two snapshots: the first refers to 90% of the blobs through
directories of 1,000 files of one blob each; the second shares four directories in five with it and has the fifth
re-listed with one more file (so the walk meets blobs again through other trees). The last 10% of the blobs are
unused: their packs are for prune to remove. Prints one JSON line: blobs, used blobs, packs, seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the bench package from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np

from sauvegarde.repository import Node, Repository, Snapshot, Tree, layout
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.index import IndexFile
from sauvegarde.storage import open_storage

SEED = 20261126
PACK_BLOBS = 1000
BLOB_LENGTH = 1200
USED = 0.9
PER_INDEX = 100_000


def make(path: Path, n: int) -> dict[str, float]:
    started = time.perf_counter()
    repo = Repository.init(open_storage(str(path)), os.environ["SAUVEGARDE_PASSWORD"].encode())
    rng = np.random.default_rng(SEED)
    ids = rng.bytes(32 * n)
    index, count, packs = IndexFile(), 0, 0
    for first in range(0, n, PACK_BLOBS):
        pack_id = rng.bytes(32)
        index.packs[pack_id] = [
            BlobEntry(int(BlobType.DATA), ids[32 * k : 32 * k + 32], (k - first) * BLOB_LENGTH, BLOB_LENGTH, 2000)
            for k in range(first, min(first + PACK_BLOBS, n))
        ]
        count += len(index.packs[pack_id])
        packs += 1
        name = path / layout.pack_name(pack_id)
        name.parent.mkdir(parents=True, exist_ok=True)
        with open(name, "wb") as fh:
            fh.truncate(len(index.packs[pack_id]) * BLOB_LENGTH + 100)
        if count >= PER_INDEX:
            repo.save_index_file(index)
            index, count = IndexFile(), 0
    if index.packs:
        repo.save_index_file(index)
    used = int(n * USED)

    def file(k: int) -> Node:
        return Node(name=b"f%09d" % k, type="file", size=2000, content=[ids[32 * k : 32 * k + 32]])

    def extra(i: int) -> Node:  # a file added to a re-listed directory: a blob of another directory
        return Node(name=b"extra", type="file", size=2000, content=[ids[32 * (i % used) : 32 * (i % used) + 32]])

    def tree(nodes: list[Node]) -> bytes:
        return repo.save_blob(BlobType.TREE, Tree(nodes).encode())[0]

    starts = range(0, used, 1000)

    def listing(d: int) -> list[Node]:
        return [file(k) for k in range(d, min(d + 1000, used))]

    dirs = [Node(name=b"d%06d" % i, type="dir", subtree=tree(listing(d))) for i, d in enumerate(starts)]
    moved = [
        dirs[i] if i % 5 else Node(name=dirs[i].name, type="dir", subtree=tree([extra(i), *listing(d)]))
        for i, d in enumerate(starts)
    ]
    for hour, top in enumerate((dirs, moved)):
        repo.save_snapshot(
            Snapshot(time=f"2026-11-26T0{hour}:00:00.000000000+00:00", tree=tree(top).hex(), paths=["/d"], hostname="h")
        )
    repo.flush()
    repo.close()
    return {"blobs": n, "used": used, "packs": packs, "make_s": round(time.perf_counter() - started, 2)}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m bench.prune_repo PATH N")
    print(json.dumps(make(Path(argv[0]), int(float(argv[1])))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
