"""A backup killed with SIGKILL leaves a usable repository; the next backup reuses the packs already written."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from cli_harness import Cli
from cli_trees import MiB, assert_same_tree, pack_files, random_bytes, restored, write_file

N_FILES = 64
FILE_SIZE = 2 * MiB + 4321  # 128 MiB in all: several 16 MiB packs
PACKS_BEFORE_KILL = 3


def test_backup_killed_midway_then_resumed(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(N_FILES):
        d = src / f"dir{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        write_file(d / f"file{i:03}.bin", random_bytes(FILE_SIZE, seed=1000 + i))
    total = N_FILES * FILE_SIZE

    proc = cli.popen("backup", src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(pack_files(repo)) < PACKS_BEFORE_KILL:
            assert proc.poll() is None, f"backup ended before it could be interrupted: {proc.stderr!r}"
            assert time.monotonic() < deadline, "no packs written"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = sum(p.stat().st_size for p in pack_files(repo))
    assert written >= 2 * 16 * MiB
    assert not (repo / "snapshots").exists() or not os.listdir(repo / "snapshots")

    # the interrupted run left a lock of a dead process, packs without index and maybe temporary files:
    # none of it stops the next backup, which indexes the orphan packs and does not upload their data again
    summary = cli.backup_json(src)
    assert summary["files_new"] == N_FILES
    assert summary["bytes_processed"] == total
    assert summary["bytes_added"] <= total - written + 2 * MiB, (summary["bytes_added"], total, written)

    target = tmp_path / "target"
    cli.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(src, restored(target, src))
