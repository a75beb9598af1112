"""check, prune, unlock and repair through the real command: exit codes, messages and JSON."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from cli_harness import Cli


def make_tree(root: Path, seed: int, files: int = 8, size: int = 300_000) -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"f{i}.bin").write_bytes(rng.randbytes(size))
    return root


def packs(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "data").rglob("*") if p.is_file())


def test_check_clean_then_damaged(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", 1)
    cli.run("backup", src)
    out = cli.json("check", "--read-data")
    assert out["ok"] is True and out["errors"] == 0 and out["packs_read"] == len(packs(repo))
    victim = max(packs(repo), key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[1000] ^= 0xFF
    os.chmod(victim, 0o600)
    victim.write_bytes(bytes(raw))
    assert cli.run("check").returncode == 0  # structure is intact: only reading the data finds it
    res = cli.run("check", "--read-data", check_exit=1)
    err = res.stderr.decode()
    assert victim.name in err and "error(s) found" in err
    assert str(src) in err  # the damaged file is named
    data = cli.json("check", "--read-data", check_exit=1)
    assert data["ok"] is False
    kinds = {p["kind"] for p in data["problems"]}
    assert {"pack_damaged", "blob_damaged", "snapshot_incomplete"} <= kinds


def test_rotating_subset_remembers_its_place(cli: Cli, repo: Path, tmp_path: Path) -> None:
    cli.run("backup", make_tree(tmp_path / "src", 2, files=40))
    total = len(packs(repo))
    assert total >= 2
    read = [cli.json("check", "--read-data-subset", "50%")["packs_read"] for _ in range(2)]
    assert sum(read) >= total
    assert list((tmp_path / "env" / "state" / "sauvegarde" / "check").iterdir())
    cli.run("check", "--read-data-subset", "7/3", check_exit=2)


def test_forget_prune_frees_space_and_restores(cli: Cli, repo: Path, tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a", 3)
    b = make_tree(tmp_path / "b", 4)
    cli.run("backup", a)
    cli.run("backup", b)
    snaps = cli.json("snapshots")
    before = sum(p.stat().st_size for p in packs(repo))
    dry = cli.json("prune", "--dry-run")
    assert dry["bytes_freed"] == 0
    cli.run("forget", snaps[0]["id"])
    res = cli.json("prune")
    assert res["packs_removed"] > 0
    after = sum(p.stat().st_size for p in packs(repo))
    assert after < before * 0.7
    assert cli.json("check", "--read-data")["ok"]
    cli.run("restore", "latest", "--target", tmp_path / "out")
    for f in b.iterdir():
        assert (tmp_path / "out" / str(f).lstrip("/")).read_bytes() == f.read_bytes()


def test_prune_removes_temporary_files_of_killed_processes(cli: Cli, repo: Path, tmp_path: Path) -> None:
    """A killed backup leaves a spooled pack (repository root) or a half-saved object (beside its final name):
    prune, under its exclusive lock, removes those older than an hour, and a dry run only counts them."""
    cli.run("backup", make_tree(tmp_path / "src", 6, files=2))
    pack_dir = packs(repo)[0].parent
    old = [repo / ".tmp-spool-abc.pack", pack_dir / ".tmp-123-456-deadbeef"]
    recent = repo / ".tmp-spool-new.pack"
    for n, path in enumerate([*old, recent]):
        path.write_bytes(b"x" * (1000 + n))
    two_hours_ago = time.time() - 7200
    for path in old:
        os.utime(path, (two_hours_ago, two_hours_ago))
    before = [p for p in packs(repo) if p not in old]

    dry = cli.json("prune", "--dry-run")
    assert (dry["temporary_files_removed"], dry["temporary_bytes_removed"]) == (2, 2001)
    assert all(p.exists() for p in old)
    out = cli.run("prune").stdout.decode()
    assert "removed 2 temporary file(s) left by killed processes (1.95 KiB)" in out
    assert not any(p.exists() for p in old)
    assert recent.exists()  # written less than an hour ago: possibly a live process's
    assert packs(repo) == before  # nothing else touched: no pack was unused
    assert cli.json("check", "--read-data")["ok"]


def test_locked_repository_and_unlock(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", 5, files=2)
    cli.run("backup", src)
    # a backup of stdin that never ends holds a shared lock: prune (exclusive) must be refused with exit 11
    proc = cli.popen("backup", "--stdin", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"x" * 1000)
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not list((repo / "locks").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        res = cli.run("prune", check_exit=11)
        assert b"locked" in res.stderr and f"pid {proc.pid}".encode() in res.stderr
        assert cli.json("unlock")["removed"] == []  # the lock of a live process is not stale
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    removed = cli.json("unlock")["removed"]
    assert len(removed) == 1  # the dead process's lock is stale now
    cli.run("prune")


def test_repair_index_and_snapshots(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", 6, files=12, size=3_000_000)
    cli.run("backup", src)
    for p in (repo / "index").iterdir():
        p.unlink()
    cli.run("check", check_exit=1)
    out = cli.json("repair", "index")
    assert out["packs_indexed"] == len(packs(repo))
    assert cli.json("check", "--read-data")["ok"]
    victim = max(packs(repo), key=lambda p: p.stat().st_size)  # a data pack: the tree pack is small
    victim.unlink()
    cli.run("repair", "index")
    results = cli.json("repair", "snapshots", "--forget")
    (r,) = results
    assert r["new_snapshot"] and 0 < r["removed_count"] < 12
    snaps = cli.json("snapshots")
    assert [s["id"] for s in snaps] == [r["new_snapshot"]] and "repaired" in snaps[0]["tags"]
    assert cli.json("check", "--read-data")["ok"]
    cli.run("restore", "latest", "--target", tmp_path / "out")
    restored = sorted(p.name for p in (tmp_path / "out" / str(src).lstrip("/")).iterdir())
    assert len(restored) == 12 - r["removed_count"]


def test_copy_chunker_params_lets_copies_dedup(cli: Cli, repo: Path, tmp_path: Path) -> None:
    src_data = make_tree(tmp_path / "src", 7, files=3, size=4_000_000)
    cli.run("backup", src_data)
    added = {}
    for name, extra in (("same", ("--copy-chunker-params", "--from-repo", str(repo))), ("other", ())):
        dest = tmp_path / name
        env = {"SAUVEGARDE_FROM_PASSWORD": "correct horse battery staple"}
        cli.run("-r", dest, "init", "--kdf-memory", "64", "--kdf-iterations", "1", *extra, env=env)
        cli.run("-r", dest, "copy", "--from-repo", repo, env=env)
        # a direct backup of the same files into the destination: new data only if chunks differ
        added[name] = cli.backup_json("-r", dest, src_data, "--force")["bytes_added"]
    assert added["same"] < 200_000  # only the new snapshot's trees
    assert added["other"] > 10_000_000  # different chunk boundaries: the content is stored again
    cli.run("init", "--copy-chunker-params", check_exit=2)
