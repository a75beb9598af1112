"""Measure the in-memory index: bytes per blob and lookup time, for N synthetic blobs.

Usage: python bench/index_memory.py [N ...]   (default: 100000 1000000)
"""

from __future__ import annotations

import os
import resource
import sys
import time

from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.index import IndexFile, MasterIndex

PACK_BLOBS = 16  # about 16 blobs of 1 MiB per 16 MiB pack


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(n: int) -> dict[str, float]:
    files = []
    ids = []
    f = IndexFile()
    for p in range(0, n, PACK_BLOBS):
        entries = []
        for j in range(min(PACK_BLOBS, n - p)):
            blob_id = os.urandom(32)
            ids.append(blob_id)
            entries.append(BlobEntry(0, blob_id, j * 1_048_616, 1_048_616, 1_048_576))
        f.packs[os.urandom(32)] = entries
        if len(f.packs) >= 4096:
            files.append(f)
            f = IndexFile()
    files.append(f)
    before = rss_kib()
    t0 = time.perf_counter()
    index = MasterIndex()
    index.add_files(files)
    build = time.perf_counter() - t0
    del files
    after = rss_kib()
    sample = ids[:: max(1, n // 100_000)]
    t0 = time.perf_counter()
    for blob_id in sample:
        assert blob_id in index
    lookup = (time.perf_counter() - t0) / len(sample)
    return {
        "blobs": n,
        "table_bytes_per_blob": index.table_bytes() / n,
        "rss_delta_bytes_per_blob": max(0, after - before) * 1024 / n,
        "build_s": build,
        "lookup_us": lookup * 1e6,
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    print("| blobs | table bytes/blob | RSS bytes/blob | build s | lookup µs |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        r = measure(n)
        print(
            f"| {n:,} | {r['table_bytes_per_blob']:.1f} | {r['rss_delta_bytes_per_blob']:.1f} | "
            f"{r['build_s']:.2f} | {r['lookup_us']:.2f} |"
        )


if __name__ == "__main__":
    main()
