"""Measure the in-memory index: bytes per blob, time to build it and to open a repository, lookup time.

Three modes:

  python -m bench.index_memory [N ...]
      In process, synthetic: build a MasterIndex from N generated blob entries (default 100000 1000000) and print
      the table bytes per blob, the RSS growth per blob, the build time and the lookup time.

  python -m bench.index_memory make REPO N [--blobs-per-index K]
      Create a real repository at REPO (``Repository.init`` with the default Argon2id parameters; the password is
      $SAUVEGARDE_PASSWORD) whose index names N blobs: sealed index objects of K blobs each (default 100,000, as
      prune and repair write them), 16 blobs of about 1 MiB per pack. Only the index objects are written: the
      packs they name do not exist, so the repository can be opened and its index loaded, but not read. Blob IDs
      are seeded (object b holds ``numpy.random.default_rng([SEED, b]).bytes(32 * K)``) so that ``open`` can draw
      IDs that are present.

  python -m bench.index_memory open REPO
      In this (fresh) process, with glibc's mmap threshold pinned as the command line does: unlock the
      repository, then load its index (list, read, decrypt, decode and build the in-memory tables, as
      ``Repository.open`` does), and print one JSON line: unlock and load times, RSS
      before and after the load, the process's peak RSS, the tables' bytes, and the lookup time of present and
      absent IDs (one by one and batched with ``known``).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: import the bench package from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.index import IndexFile, MasterIndex

PACK_BLOBS = 16  # about 16 blobs of 1 MiB per 16 MiB pack
BLOB_LENGTH = 1_048_616  # a sealed, compressed 1 MiB chunk
BLOB_RAW = 1_048_576
SEED = 20240601
DEFAULT_BLOBS_PER_INDEX = 100_000
META = "bench-index.json"  # written next to the repository by ``make``: N and the blobs per index object


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_kib() -> int:
    """Peak RSS since the start or the last :func:`reset_peak` (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux 4.0+), so that the next peak is that of what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def object_ids(b: int, count: int) -> bytes:
    """The concatenated 32-byte IDs of the blobs of index object B (seeded)."""
    return np.random.default_rng([SEED, b]).bytes(32 * count)


def index_object(b: int, count: int) -> IndexFile:
    """Index object B: COUNT blobs in packs of PACK_BLOBS."""
    ids = object_ids(b, count)
    pack_ids = np.random.default_rng([SEED, b, 1]).bytes(32 * ((count + PACK_BLOBS - 1) // PACK_BLOBS))
    f = IndexFile()
    for p in range(0, count, PACK_BLOBS):
        f.packs[pack_ids[2 * p : 2 * p + 32]] = [
            BlobEntry(0, ids[32 * k : 32 * k + 32], (k - p) * BLOB_LENGTH, BLOB_LENGTH, BLOB_RAW)
            for k in range(p, min(p + PACK_BLOBS, count))
        ]
    return f


# ---- in process, synthetic ------------------------------------------------------------------------------


def measure(n: int) -> dict[str, float]:
    files = []
    left, b = n, 0
    while left > 0:
        count = min(left, 4096 * PACK_BLOBS)
        files.append(index_object(b, count))
        left -= count
        b += 1
    before = rss_kib()
    t0 = time.perf_counter()
    index = MasterIndex()
    index.add_files(files)
    build = time.perf_counter() - t0
    del files
    after = rss_kib()
    sample = [object_ids(0, min(n, 4096 * PACK_BLOBS))[32 * k : 32 * k + 32] for k in range(0, min(n, 65536), 7)]
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


def synthetic_main(sizes: list[int]) -> None:
    print("| blobs | table bytes/blob | RSS bytes/blob | build s | lookup µs |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        r = measure(n)
        print(
            f"| {n:,} | {r['table_bytes_per_blob']:.1f} | {r['rss_delta_bytes_per_blob']:.1f} | "
            f"{r['build_s']:.2f} | {r['lookup_us']:.2f} |"
        )


# ---- a real repository ----------------------------------------------------------------------------------


def password() -> bytes:
    pw = os.environ.get("SAUVEGARDE_PASSWORD", "")
    if not pw:
        sys.exit("set SAUVEGARDE_PASSWORD")
    return pw.encode()


def make_repo(path: Path, n: int, per_index: int) -> dict[str, float]:
    """A repository at PATH whose index names N blobs, PER_INDEX per index object; returns timings."""
    from sauvegarde.repository import Repository
    from sauvegarde.storage import open_storage

    t0 = time.perf_counter()
    repo = Repository.init(open_storage(str(path)), password())
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    left, b = n, 0
    while left > 0:
        count = min(left, per_index)
        repo.save_index_file(index_object(b, count))
        left -= count
        b += 1
    repo.close()
    (path / META).write_text(json.dumps({"blobs": n, "blobs_per_index": per_index, "index_objects": b}) + "\n")
    return {"init_s": t_init, "write_s": time.perf_counter() - t0, "index_objects": b}


def open_repo(path: Path) -> dict[str, object]:
    """Unlock and load the index of the repository at PATH in this process; measurements as a dict."""
    from sauvegarde.repository import Repository
    from sauvegarde.storage import open_storage

    try:  # as the command line does at start-up (sauvegarde.cli.main), when this version has it
        from sauvegarde.util.malloc import tune_allocator

        tune_allocator()
    except ImportError:
        pass
    meta = json.loads((path / META).read_text()) if (path / META).exists() else {"blobs": 0, "blobs_per_index": 1}
    rss_start = rss_kib()
    t0 = time.perf_counter()
    repo = Repository.open(open_storage(str(path)), password(), load_index=False)
    unlock = time.perf_counter() - t0
    peak_before = peak_kib()
    reset_peak()
    rss_before = rss_kib()
    t0 = time.perf_counter()
    repo.load_index()
    load = time.perf_counter() - t0
    rss_after = rss_kib()
    peak = peak_kib()
    n = len(repo.index)
    out: dict[str, object] = {
        "blobs": n,
        "index_objects": meta.get("index_objects"),
        "blobs_per_index": meta.get("blobs_per_index"),
        "unlock_s": round(unlock, 3),
        "load_index_s": round(load, 3),
        "rss_start_kib": rss_start,
        "rss_before_load_kib": rss_before,
        "rss_after_load_kib": rss_after,
        "peak_before_load_kib": peak_before,
        "peak_kib": peak,
        "table_bytes": repo.index.table_bytes(),
    }
    if n:
        out["table_bytes_per_blob"] = round(repo.index.table_bytes() / n, 2)
        out["retained_bytes_per_blob"] = round((rss_after - rss_before) * 1024 / n, 2)
        out["peak_bytes_per_blob"] = round((peak - rss_before) * 1024 / n, 2)
        present: list[bytes] = []
        objects = int(meta["index_objects"])
        per = int(meta["blobs_per_index"])
        for b in np.linspace(0, objects - 1, min(objects, 8)).astype(int):
            count = per if b < objects - 1 else n - per * (objects - 1)
            ids = object_ids(int(b), count)
            step = max(1, count // 5000)
            present += [ids[32 * k : 32 * k + 32] for k in range(0, count, step)]
        absent = [os.urandom(32) for _ in range(len(present))]
        index = repo.index
        t0 = time.perf_counter()
        hits = sum(1 for i in present if i in index)
        out["lookup_present_us"] = round((time.perf_counter() - t0) / len(present) * 1e6, 3)
        t0 = time.perf_counter()
        misses = sum(1 for i in absent if i not in index)
        out["lookup_absent_us"] = round((time.perf_counter() - t0) / len(absent) * 1e6, 3)
        t0 = time.perf_counter()
        known = index.known(present)
        out["known_batch_us"] = round((time.perf_counter() - t0) / len(present) * 1e6, 3)
        if hits != len(present) or misses != len(absent) or not all(known):
            raise SystemExit(f"lookup mismatch: {hits}/{len(present)} present, {misses}/{len(absent)} absent")
    repo.close()
    return out


def main(argv: list[str]) -> None:
    if argv and argv[0] == "make":
        import argparse

        parser = argparse.ArgumentParser(prog="python -m bench.index_memory make")
        parser.add_argument("repo", type=Path)
        parser.add_argument("blobs", type=int)
        parser.add_argument("--blobs-per-index", type=int, default=DEFAULT_BLOBS_PER_INDEX)
        args = parser.parse_args(argv[1:])
        print(json.dumps(make_repo(args.repo, args.blobs, args.blobs_per_index)))
    elif argv and argv[0] == "open":
        print(json.dumps(open_repo(Path(argv[1]))))
    else:
        synthetic_main([int(a) for a in argv] or [100_000, 1_000_000])


if __name__ == "__main__":
    main(sys.argv[1:])
