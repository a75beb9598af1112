"""`sauvegarde metrics` end to end: printed once after real runs, served with --listen, and served by the daemon
when the plan asks; every exposition parsed with prometheus_client's own parser."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from cli_harness import Cli
from dr_plan import KDF, write_plan
from prometheus_client.parser import text_string_to_metric_families

from service_process import free_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _fetch(url: str, deadline: float = 60.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_metrics_after_runs(cli: Cli, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    cli.run("plan", "init", "--plan", plan, *KDF)
    cli.run("run", "--plan", plan, "--now", "2025-03-10T03:00:00")
    cli.run("run", "--plan", plan, "--now", "2025-03-11T03:00:00")
    text = cli.run("metrics", "--plan", plan, "--now", "2025-03-11T04:00:00").stdout.decode()
    m = samples(text)
    docs = (("asset", "documents"),)
    at = {r: (("asset", "documents"), ("repository", r)) for r in ("nas", "offsite")}
    assert m[("sauvegarde_asset_rpo_seconds", (*docs, ("criticality", "high")))] == 86400
    assert m[("sauvegarde_asset_size_bytes", docs)] > 200_000
    for r in ("nas", "offsite"):
        assert m[("sauvegarde_snapshots", at[r])] == 2
        assert m[("sauvegarde_rpo_compliant", at[r])] == 1
        assert m[("sauvegarde_repository_up", (("repository", r),))] == 1
    assert m[("sauvegarde_last_success_timestamp_seconds", at["nas"])] == 1741662000  # 2025-03-11T03:00:00Z
    backup = (("asset", "documents"), ("kind", "backup"), ("repository", "nas"))
    assert m[("sauvegarde_step_last_failed", backup)] == 0
    assert m[("sauvegarde_step_last_bytes", backup)] >= 0
    assert ("sauvegarde_step_last_duration_seconds", backup) in m
    assert m[("sauvegarde_repository_check_errors", (("repository", "nas"),))] == 0
    assert m[("sauvegarde_findings", (("rule", "rpo"), ("severity", "ok")))] == 2
    # two days later the RPO is breached
    late = samples(cli.run("metrics", "--plan", plan, "--now", "2025-03-13T04:00:00").stdout.decode())
    assert late[("sauvegarde_rpo_compliant", at["nas"])] == 0
    assert late[("sauvegarde_findings", (("rule", "rpo"), ("severity", "fail")))] == 2


def test_metrics_listen_serves_until_sigterm(cli: Cli, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    port = free_port()
    proc = cli.popen("metrics", "--plan", plan, "--listen", f"127.0.0.1:{port}", stderr=subprocess.PIPE)
    try:
        m = samples(_fetch(f"http://127.0.0.1:{port}/metrics"))
        assert m[("sauvegarde_repository_up", (("repository", "nas"),))] == 0  # not created yet
        assert ("sauvegarde_plan_info", (("organisation", "Les Tilleuls"), ("plan", str(plan)))) in m
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_daemon_serves_metrics_when_the_plan_asks(cli: Cli, tmp_path: Path) -> None:
    port = free_port()
    plan = write_plan(tmp_path)
    plan.write_text(
        plan.read_text().replace('timezone = "UTC"', f'timezone = "UTC"\nmetrics_listen = "127.0.0.1:{port}"')
    )
    cli.run("plan", "init", "--plan", plan, *KDF)
    proc = cli.popen("daemon", "--plan", plan, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:  # the daemon catches up at start: wait for the first backup to show
            m = samples(_fetch(f"http://127.0.0.1:{port}/metrics"))
            key = ("sauvegarde_step_last_failed", (("asset", "documents"), ("kind", "backup"), ("repository", "nas")))
            if key in m or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert m[key] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert f"metrics at http://127.0.0.1:{port}/metrics".encode() in out
