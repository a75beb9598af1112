"""``sauvegarde drill`` end to end: run's scheduled drill, sample and full drills from the off-site copy, a damaged
pack failing the drill and then ``plan check`` and ``status``, an RTO too short, the scratch directory removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli_harness import PASSWORD, Cli
from cli_trees import random_bytes, write_file

from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.repository import Repository, layout
from sauvegarde.storage import open_storage

KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")
NOW = "2025-03-10T10:30:00"


def _plan(tmp_path: Path, rto: str = "4h") -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True, exist_ok=True)
    write_file(data / "a.txt", b"alpha\n")
    for i in range(6):
        write_file(data / "sub" / f"b{i}.bin", random_bytes(100_000 + 7000 * i, i))
    os.symlink("a.txt", data / "link")
    repos = ""
    for name, domain, medium in (("first", "same-site", "nas"), ("offsite", "cloud", "object-storage")):
        repos += (
            f'[repositories.{name}]\nurl = "{tmp_path / ("repo-" + name)}"\npassword_env = "SAUVEGARDE_PASSWORD"\n'
            f'failure_domain = "{domain}"\nmedium = "{medium}"\nkey_escrow = "safe"\nimmutable = true\n'
        )
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
[organisation]
name = "Test"
[settings]
jitter = "0s"
{repos}
[assets.data]
paths = ["{data}"]
criticality = "high"
rpo = "1d"
rto = "{rto}"
schedule = "hourly"
retention = {{ keep_daily = 40 }}
repositories = ["first", "offsite"]

[[drills]]
asset = "data"
repository = "offsite"
schedule = "monthly 1 09:00"
sample = "30%"
"""
    )
    return plan


def _drill(cli: Cli, plan: Path, *args: str, check_exit: int = 0) -> dict[str, object]:
    res = cli.run("--json", "drill", "--plan", plan, "--now", NOW, *args, check_exit=check_exit)
    (doc,) = json.loads(res.stdout)["drills"]
    assert isinstance(doc, dict)
    return doc


def _findings(cli: Cli, plan: Path, rule: str) -> list[tuple[str, str]]:
    doc = cli.json("plan", "check", "--plan", plan, "--now", NOW, check_exit=None)
    return [(f["severity"], f["message"]) for f in doc["findings"] if f["rule"] == rule]


def _scratch(cli: Cli) -> list[str]:
    root = Path(cli.env["XDG_CACHE_HOME"]) / "sauvegarde" / "drills"
    return os.listdir(root) if root.exists() else []


def _damage(repo_path: Path, data_file: Path) -> None:
    """Flip a byte in the middle of the first blob of ``data_file`` in the repository's latest snapshot."""
    repo = Repository.open(open_storage(str(repo_path)), PASSWORD.encode())
    try:
        snap = repo.snapshots()[-1]
        node, _ = resolve(TreeLoader(repo), bytes.fromhex(snap.tree), str(data_file))
        assert node is not None
        hit = repo.index.lookup(node.content[0])
        assert hit is not None
        pack_id, entry = hit
    finally:
        repo.close()
    pack = repo_path / layout.pack_name(pack_id)
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(entry.offset + entry.length // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x55]))


def test_drills_from_run_and_cli_then_damage_fails_them(cli: Cli, tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    cli.run("plan", "init", "--plan", plan, *KDF)
    assert _findings(cli, plan, "rto")[0][0] == "info"  # no drill yet
    res = cli.run("--json", "run", "--plan", plan, "--now", NOW)
    steps = json.loads(res.stdout.decode().splitlines()[-1])["steps"]
    drill = [s for s in steps if s["kind"] == "drill"]
    assert [(s["repository"], s["outcome"]) for s in drill] == [("offsite", "ok")]  # never drilled: due

    sample = _drill(cli, plan, "--asset", "data", "--repo", "offsite", "--sample", "10%", "--seed", "5")
    assert sample["verdict"] == "pass" and sample["repository"] == "offsite"
    assert 3 <= int(sample["files"]) < int(sample["asset_files"])  # type: ignore[call-overload]
    assert float(sample["ttfb_s"]) > 0 and float(sample["throughput"]) > 0  # type: ignore[arg-type]
    full = _drill(cli, plan, "--full")  # the plan's declared drill, in full
    assert full["verdict"] == "pass" and full["files"] == full["asset_files"] == 7
    assert _findings(cli, plan, "rto") == [("ok", "restore fits the RTO of 4h")]
    status = cli.run("status", "--plan", plan, "--now", NOW).stdout.decode()
    assert "last drill: 2025-03-10 " in status and "from offsite (full): PASS" in status

    _damage(tmp_path / "repo-offsite", tmp_path / "data" / "sub" / "b3.bin")
    text = cli.run("drill", "--plan", plan, "--now", NOW, "--full", check_exit=1).stdout.decode()
    assert "FAIL" in text and "/data/sub/b3.bin" in text
    rto = _findings(cli, plan, "rto")
    assert rto[0][0] == "fail" and "found 1 error(s)" in rto[0][1]
    assert ("fail", "the latest restore drill found 1 error(s)") in _findings(cli, plan, "3-2-1-1-0")
    status = cli.json("status", "--plan", plan, "--now", NOW)
    assert status["assets"][0]["drill"]["verdict"] == "fail"
    assert _drill(cli, plan, "--repo", "first", "--full")["verdict"] == "pass"  # the other copy still restores
    assert _scratch(cli) == []


def test_rto_too_short_fails_the_drill_and_plan_check(cli: Cli, tmp_path: Path) -> None:
    plan = _plan(tmp_path, rto="0s")
    cli.run("plan", "init", "--plan", plan, *KDF)
    cli.run("run", "--plan", plan, "--now", NOW, check_exit=1)  # its scheduled drill fails: the RTO is 0s
    doc = _drill(cli, plan, "--sample", "5%", check_exit=1)
    assert doc["errors"] == [] and any("exceeds the RTO" in r for r in doc["reasons"])  # type: ignore[attr-defined]
    assert [s for s, _ in _findings(cli, plan, "rto")] == ["fail"]
    assert _scratch(cli) == []


def test_usage_errors(cli: Cli, tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert b"--sample" in cli.run("drill", "--plan", plan, "--sample", "150%", check_exit=2).stderr
    assert b"no asset" in cli.run("drill", "--plan", plan, "--asset", "nope", check_exit=2).stderr
    assert b"not both" in cli.run("drill", "--plan", plan, "--full", "--sample", "5%", check_exit=2).stderr
