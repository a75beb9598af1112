"""The plan commands end to end: plan init/check, run (local and S3) with the clock fixed by --now, status,
quickstart twice in a fresh XDG environment, key export/recover, install-service."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from cli_harness import CHEAP_KDF, PASSWORD, Cli
from cli_trees import random_bytes, write_file

from s3_server import ACCESS_KEY, SECRET_KEY, WeedServer

KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")


def _plan(tmp_path: Path, second_url: str, extra_asset: str = "") -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True, exist_ok=True)
    write_file(data / "a.txt", b"alpha\n")
    write_file(data / "sub" / "b.bin", random_bytes(300_000, 3))
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
[organisation]
name = "Test"
[settings]
jitter = "0s"
[repositories.first]
url = "{tmp_path / "repo-first"}"
password_env = "SAUVEGARDE_PASSWORD"
failure_domain = "same-site"
medium = "nas"
key_escrow = "safe"
[repositories.second]
url = "{second_url}"
password_env = "SAUVEGARDE_PASSWORD"
failure_domain = "cloud"
medium = "object-storage"
immutable = true
key_escrow = "safe"
prune = "never"
[assets.data]
paths = ["{data}"]
criticality = "high"
rpo = "1d"
rto = "4h"
schedule = "hourly"
retention = {{ keep_last = 2, keep_daily = 40 }}
repositories = ["first", "second"]
{extra_asset}
"""
    )
    return plan


def _steps(cli: Cli, plan: Path, now: str, *extra: str, check_exit: int = 0) -> list[dict[str, object]]:
    res = cli.run("--json", "run", "--plan", plan, "--now", now, *extra, check_exit=check_exit)
    doc = json.loads(res.stdout.decode().splitlines()[-1])
    return list(doc["steps"])


def _run_plan_end_to_end(cli: Cli, plan: Path) -> None:
    cli.run("plan", "init", "--plan", plan, *KDF)
    steps = _steps(cli, plan, "2025-03-10T10:30:00")
    kinds = [(s["kind"], s["repository"], s["outcome"]) for s in steps]
    assert kinds[:4] == [
        ("backup", "first", "ok"),
        ("copy", "second", "ok"),
        ("forget", "first", "ok"),
        ("forget", "second", "ok"),
    ]
    assert ("check", "second", "ok") in kinds and ("prune", "first", "ok") in kinds
    assert not any(k == "prune" and r == "second" for k, r, _ in kinds)  # prune = "never"
    assert _steps(cli, plan, "2025-03-10T10:45:00") == []  # hourly: not due again before 11:00
    for hour in ("11", "12", "13"):
        steps = _steps(cli, plan, f"2025-03-10T{hour}:05:00")
        assert [s["kind"] for s in steps][:2] == ["backup", "copy"]
    snaps = cli.json("snapshots", "--repo", plan.parent / "repo-first")
    assert len(snaps) == 3  # of the four runs of one day: keep_last 2, plus keep_daily keeps the oldest too
    assert all("asset:data" in s["tags"] for s in snaps)

    ok = cli.json("plan", "check", "--plan", plan, "--now", "2025-03-10T14:00:00", check_exit=None)
    rpo = [f for f in ok["findings"] if f["rule"] == "rpo"]
    assert [f["severity"] for f in rpo] == ["ok", "ok"]
    late = cli.run("plan", "check", "--plan", plan, "--now", "2025-03-12T14:00:00", check_exit=1)
    assert b"FAIL [rpo] asset data in repository first: newest good snapshot is older than the RPO" in late.stdout
    status = cli.json("status", "--plan", plan, "--now", "2025-03-10T14:00:00")
    colours = {r["repository"]: r["colour"] for r in status["assets"][0]["repositories"]}
    assert colours == {"first": "green", "second": "green"}
    assert status["assets"][0]["last_drill"] is None
    red = cli.json("status", "--plan", plan, "--now", "2025-03-12T14:00:00")
    assert {r["colour"] for r in red["assets"][0]["repositories"]} == {"red"}


def test_run_local_repositories(cli: Cli, tmp_path: Path) -> None:
    _run_plan_end_to_end(cli, _plan(tmp_path, str(tmp_path / "repo-second")))


def test_run_with_s3_copy(cli: Cli, tmp_path: Path, s3_server: WeedServer) -> None:
    url = s3_server.url(f"plan-{os.urandom(6).hex()}", "repo")
    cli.env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    _run_plan_end_to_end(cli, _plan(tmp_path, url))


def test_failing_asset_does_not_stop_the_others(cli: Cli, tmp_path: Path) -> None:
    broken = """
[assets.dump]
command = "echo partial; exit 3"
criticality = "low"
rpo = "1d"
rto = "1d"
schedule = "daily 02:00"
retention = { keep_daily = 30 }
repositories = ["first"]
"""
    plan = _plan(tmp_path, str(tmp_path / "repo-second"), broken)
    cli.run("plan", "init", "--plan", plan, *KDF)
    res = cli.run("run", "--plan", plan, "--now", "2025-03-10T10:30:00", check_exit=1)
    assert b"backup dump -> first: failed: command exited with status 3" in res.stdout
    assert b"backup data -> first: ok" in res.stdout and b"copy data -> second: ok" in res.stdout
    snaps = cli.json("snapshots", "--repo", tmp_path / "repo-first")
    assert [s["tags"] for s in snaps] == [["asset:data"]]  # the failed dump's snapshot was removed


def test_unreachable_repository_is_a_recorded_failure(cli: Cli, tmp_path: Path) -> None:
    plan = _plan(tmp_path, str(tmp_path / "repo-second"))
    cli.run("plan", "init", "--plan", plan, *KDF)
    os.rename(tmp_path / "repo-second", tmp_path / "moved")
    steps = _steps(cli, plan, "2025-03-10T10:30:00", "--asset", "data", check_exit=1)
    outcomes = {(s["kind"], s["repository"]): s["outcome"] for s in steps}
    assert outcomes[("backup", "first")] == "ok" and outcomes[("copy", "second")] == "failed"
    assert outcomes[("forget", "first")] == "ok"


def test_quickstart_twice_in_a_fresh_environment(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "project"
    (src / "docs").mkdir(parents=True)
    write_file(src / "docs" / "a.txt", b"alpha\n")
    write_file(src / "big.bin", random_bytes(500_000, 5))
    env = {"SAUVEGARDE_PASSWORD": None, "SAUVEGARDE_REPOSITORY": None}
    first = cli.run("quickstart", src, env=env)
    out = first.stdout.decode()
    assert "restored and verified byte for byte" in out and ": OK" in out
    assert "FAIL [3-2-1-1-0] asset project: 2 copies counting the original; 3 are needed" in out
    assert "sauvegarde key export --repo" in out
    config = Path(cli.env["XDG_CONFIG_HOME"]) / "sauvegarde"
    pw = config / "repository.password"
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600 and len(pw.read_text().strip()) >= 40
    plan_text = (config / "plan.toml").read_text()
    password = pw.read_text()

    second = cli.run("quickstart", src, env=env)
    assert b"exists: used as it is" in second.stdout and b": OK" in second.stdout
    assert (config / "plan.toml").read_text() == plan_text and pw.read_text() == password
    repo = Path(cli.env["XDG_DATA_HOME"]) / "sauvegarde" / "repository"
    snaps = cli.json("snapshots", env=env)  # the default repository opens with the generated password
    assert len(snaps) == 1 and str(repo)
    cli.run("plan", "check", env=env, check_exit=1)  # honestly failing: one local copy is not a plan


def test_key_export_and_recover(cli: Cli, repo: Path, tmp_path: Path) -> None:
    sheet = cli.run("key", "export").stdout.decode()
    assert "repository ID:" in sheet and str(repo) in sheet
    code = "\n".join(line for line in sheet.splitlines() if re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})*", line))
    assert code.count("\n") == 3
    (tmp_path / "new.pw").write_text("a new password\n")
    cli.run("key", "recover", "--new-password-file", tmp_path / "new.pw", "--kdf-memory", "64", input=code + "\n")
    cli.run("snapshots", env={"SAUVEGARDE_PASSWORD": "a new password"})
    bad = code.replace(code[0], "A" if code[0] != "A" else "B", 1)
    res = cli.run("key", "recover", "--new-password-file", tmp_path / "new.pw", input=bad + "\n", check_exit=2)
    assert b"checksum mismatch" in res.stderr


def test_install_service_writes_daemon_unit(cli: Cli, tmp_path: Path) -> None:
    plan = _plan(tmp_path, str(tmp_path / "repo-second"))
    cli.run("install-service", "--plan", plan, "--unit-dir", tmp_path / "units")
    unit = (tmp_path / "units" / "sauvegarde.service").read_text()
    assert f"daemon --plan {plan}" in unit and "KillSignal=SIGTERM" in unit


def test_invalid_plan_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[organisation]\nname = "x"\n[repositories.r]\nurl = "/r"\n')
    res = cli.run("plan", "check", "--plan", plan, check_exit=2)
    assert f"{plan}:3: repositories.r.password_file".encode() in res.stderr or f"{plan}:3:".encode() in res.stderr


@pytest.mark.parametrize("second", ["local", "s3"])
def test_daemon_backs_up_copies_and_stops_cleanly(
    cli: Cli, tmp_path: Path, second: str, request: pytest.FixtureRequest
) -> None:
    """The real daemon on the real clock: its first run backs up to the first repository and copies to the second
    (a local directory, or S3 on SeaweedFS); SIGTERM then stops it after the current step."""
    import signal
    import subprocess
    import time

    if second == "s3":
        server: WeedServer = request.getfixturevalue("s3_server")
        url = server.url(f"daemon-{os.urandom(6).hex()}", "repo")
        cli.env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/nonexistent",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        )
    else:
        url = str(tmp_path / "repo-second")
    plan = _plan(tmp_path, url)
    cli.run("plan", "init", "--plan", plan, *KDF)
    proc = cli.popen("daemon", "--plan", plan, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        copied: list[object] = []
        while time.monotonic() < deadline and not copied:
            time.sleep(0.5)
            res = cli.run("--json", "snapshots", "--repo", url, check_exit=None)
            if res.returncode == 0:
                copied = json.loads(res.stdout)
        assert copied, "the daemon did not copy a snapshot to the second repository in time"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err
    assert b"stopping after the current step" in err and b"stopped" in out
    first = cli.json("snapshots", "--repo", tmp_path / "repo-first")
    assert [s["id"] for s in first] and all("asset:data" in s["tags"] for s in first)
    cli.run("check", "--repo", tmp_path / "repo-first")
    cli.run("check", "--read-data", "--repo", url)
    assert PASSWORD and CHEAP_KDF
