"""The ransomware guard end to end: ``backup`` exits 4 on an attack and keeps the snapshot, ``snapshots`` flags it,
``guard show`` gives the evidence, ``forget`` protects the history until ``guard release``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cli_harness import Cli
from dr_plan import write_plan

from guard_trees import benign_changes, encrypt_files, make_tree

TIMES = [f"2024-03-0{d}T10:00:00+0000" for d in range(1, 8)]


def _by_time(cli: Cli) -> list[dict[str, Any]]:
    return sorted(cli.json("snapshots"), key=lambda s: s["time"])


def test_attack_exit_4_snapshots_show_forget_release(cli: Cli, repo: Path, tmp_path: Path) -> None:
    cli.env["TZ"] = "UTC"
    share = tmp_path / "share"
    share.mkdir()
    files = make_tree(share)
    for when in TIMES[:3]:  # three clean snapshots (the data changes a little each time)
        (share / "docs" / "todo.txt").write_text(f"items for {when}\n")
        res = cli.run("backup", share, "--time", when)
        assert b"guard: clean" in res.stdout
    benign_changes(share)
    cli.run("backup", share, "--time", TIMES[3])  # ordinary activity: clean
    encrypt_files([f for f in files if f.parent.name == "finance"])
    res = cli.run("backup", share, "--time", TIMES[4], check_exit=4)
    err = res.stderr.decode()
    assert "guard: ATTACK" in err and "ransom note" in err and "kept as evidence" in err
    snaps = _by_time(cli)
    assert len(snaps) == 5
    bad = snaps[-1]
    assert bad["guard"]["verdict"] == "attack"
    assert any("ledger" in f["path"] for f in bad["guard"]["files"])
    table = cli.run("snapshots").stdout.decode()
    assert "Guard" in table and "ATTACK" in table and table.count(" ok ") >= 4

    shown = cli.run("guard", "show", bad["short_id"]).stdout.decode()
    assert "attack" in shown and "ransom-note" in shown and "statement0.pdf.locked" in shown

    db = sqlite3.connect(tmp_path / "env" / "state" / "sauvegarde" / "state.db")
    rows = db.execute("SELECT snapshot_id, verdict FROM guard_verdicts ORDER BY time").fetchall()
    assert rows[-1] == (bad["id"], "attack") and [r[1] for r in rows[:-1]] == ["clean"] * 4

    # forget: the policy would keep only the newest; the group is under suspicion, so nothing goes
    out = cli.run("forget", "--keep-last", "1").stdout.decode()
    assert "protected: last clean before suspicious snapshot " + bad["short_id"] in out
    assert "removed 0 snapshot(s)" in out
    # by ID: the suspect and its clean predecessors are refused without --force
    res = cli.run("forget", bad["short_id"], check_exit=2)
    assert b"kept as evidence" in res.stderr
    res = cli.run("forget", snaps[3]["short_id"], check_exit=2)
    assert b"protected: last clean before suspicious snapshot" in res.stderr

    # the operator reviews and releases; retention works again
    out = cli.run("guard", "release", bad["short_id"], "--reason", "restored from backup, incident 42").stdout
    assert b"released" in out
    snaps = _by_time(cli)
    assert snaps[-1]["guard"]["released"]["reason"] == "restored from backup, incident 42"
    assert snaps[-1]["guard"]["verdict"] == "attack"  # the evidence stays
    assert "released" in cli.run("snapshots").stdout.decode()
    released = db.execute("SELECT released_as, reason FROM guard_verdicts WHERE snapshot_id = ?", (bad["id"],))
    assert released.fetchone() == (snaps[-1]["id"], "restored from backup, incident 42")
    cli.run("forget", "--keep-last", "2")
    assert len(_by_time(cli)) == 2


def test_warn_and_off_modes_and_force(cli: Cli, repo: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    files = make_tree(share)
    cli.run("-q", "backup", share)
    encrypt_files(files[:4], rename=None, note=False)
    res = cli.run("backup", "--guard", "warn", share)  # exit 0, but says why
    assert b"guard: ATTACK" in res.stderr
    encrypt_files(files[4:6], rename=None, note=False)
    summary = cli.backup_json("--guard", "off", share)
    assert "guard" not in summary
    snaps = cli.json("snapshots")
    assert [("guard" in s) for s in snaps] == [True, True, False]
    suspect = next(s for s in snaps if s.get("guard", {}).get("verdict") == "attack")
    cli.run("forget", suspect["short_id"], check_exit=2)
    cli.run("forget", "--force", suspect["short_id"])
    assert len(cli.json("snapshots")) == 2


def test_canary_option(cli: Cli, repo: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "hr").mkdir(parents=True)
    (share / "hr" / "salaries.xlsx.txt").write_text("do not touch\n" * 100)
    (share / "hr" / "other.txt").write_text("x\n")
    canary = share / "hr" / "salaries.xlsx.txt"
    cli.run("backup", "--canary", canary, share)
    canary.write_text("touched\n")
    res = cli.run("backup", "--canary", canary, share, check_exit=4)
    assert b"canary" in res.stderr


def test_verdicts_and_releases_go_to_the_plan_state_database(cli: Cli, repo: Path, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    state = tmp_path / "plan-state"
    plan.write_text(plan.read_text().replace('timezone = "UTC"', f'timezone = "UTC"\nstate_dir = "{state}"'))
    cli.env["SAUVEGARDE_PLAN"] = str(plan)  # found by backup, as by every command
    share = tmp_path / "share"
    share.mkdir()
    files = make_tree(share)
    cli.run("backup", share, "--time", TIMES[0])
    encrypt_files([f for f in files if f.parent.name == "finance"])
    cli.run("backup", share, "--time", TIMES[1], check_exit=4)
    bad = _by_time(cli)[-1]
    db = sqlite3.connect(state / "state.db")
    assert [r[0] for r in db.execute("SELECT verdict FROM guard_verdicts ORDER BY time")] == ["clean", "attack"]
    assert not (tmp_path / "env" / "state" / "sauvegarde" / "state.db").exists()
    del cli.env["SAUVEGARDE_PLAN"]
    cli.run("guard", "release", bad["short_id"], "--reason", "drill", "--plan", plan)
    row = db.execute("SELECT reason FROM guard_verdicts WHERE snapshot_id = ?", (bad["id"],)).fetchone()
    assert row == ("drill",)
    res = cli.run("guard", "release", "latest", "--reason", "x", "--plan", tmp_path / "missing.toml", check_exit=2)
    assert b"missing.toml" in res.stderr
