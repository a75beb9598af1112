"""Alerts end to end: `alerts test` reaches a real SMTP server (STARTTLS, AUTH) and an HTTP receiver; `run` sends
an alert for a failing asset, once; the SMTP password appears nowhere."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cli_harness import Cli
from dr_plan import KDF, write_plan

from alert_receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpServer


def _alerts(smtp: SmtpServer, hook: str, tmp_path: Path) -> str:
    (tmp_path / "smtp.password").write_text(SMTP_PASSWORD + "\n")
    return f"""
[alerts]
email = ["direction@tilleuls.example"]
webhook = ["{hook}/generic", {{ url = "{hook}/ntfy", format = "ntfy" }}]
on = ["fail"]
digest = "never"
[alerts.smtp]
host = "127.0.0.1"
port = {smtp.port}
starttls = true
username = "{SMTP_USER}"
password_file = "smtp.password"
ca_file = "{smtp.ca_file}"
"""


BROKEN = """
[assets.dump]
command = "echo partial; exit 3"
criticality = "critical"
rpo = "1d"
rto = "1d"
schedule = "daily 02:00"
retention = { keep_daily = 40 }
repositories = ["nas"]
"""


def test_alerts_test_reaches_every_channel(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    plan = write_plan(tmp_path, _alerts(smtp_server, http_receiver.url, tmp_path))
    res = cli.run("alerts", "test", "--plan", plan)
    out = res.stdout.decode() + res.stderr.decode()
    assert out.count(": sent") == 3, out
    assert smtp_server.logins == [SMTP_USER] and smtp_server.tls_sessions == [True]
    assert smtp_server.messages[0]["Subject"] == "[sauvegarde] Les Tilleuls: test message"
    assert sorted(r.path for r in http_receiver.requests) == ["/generic", "/ntfy"]
    assert SMTP_PASSWORD not in out


def test_alerts_test_fails_on_an_unreachable_channel(cli: Cli, tmp_path: Path, http_receiver: HttpReceiver) -> None:
    http_receiver.status = 503
    plan = write_plan(tmp_path, f'[alerts]\nwebhook = ["{http_receiver.url}/x"]\n')
    res = cli.run("alerts", "test", "--plan", plan, check_exit=1)
    assert b"FAILED: webhook http://127.0.0.1" in res.stderr and b"HTTP 503" in res.stderr


def test_run_sends_an_alert_for_a_failing_asset_once(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    plan = write_plan(tmp_path, BROKEN + _alerts(smtp_server, http_receiver.url, tmp_path))
    cli.run("plan", "init", "--plan", plan, *KDF)
    res = cli.run("run", "--plan", plan, "--now", "2025-03-10T10:30:00", check_exit=1)
    assert b"alerts email:direction@tilleuls.example: sent" in res.stderr, res.stderr
    [mail] = smtp_server.messages
    body = mail.get_content()
    assert "backup of asset dump to repository nas" in body and "command exited with status 3" in body
    generic = next(r for r in http_receiver.requests if r.path == "/generic").json()
    assert {a["key"] for a in generic["alerts"]} >= {"step:backup:dump:nas"}
    # an hour later the same problem is not sent again
    cli.run("run", "--plan", plan, "--now", "2025-03-10T11:30:00", check_exit=None)
    assert len(smtp_server.messages) == 1
    state = Path(cli.env["XDG_STATE_HOME"]) / "sauvegarde" / "state.db"
    with sqlite3.connect(state) as conn:
        rows = conn.execute("SELECT channel, outcome, title, error FROM alerts_sent").fetchall()
    assert rows and all(outcome == "sent" for _, outcome, _, _ in rows)
    assert SMTP_PASSWORD not in repr(rows) and SMTP_PASSWORD.encode() not in state.read_bytes()
