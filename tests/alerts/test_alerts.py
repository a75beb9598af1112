"""Alerts against real local receivers: email over STARTTLS with AUTH (aiosmtpd), webhooks in three formats (a local
HTTP server); what is collected from the state database; de-duplication, rate limit and the weekly digest."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alert_receivers import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpServer
from sauvegarde.alerts.collect import collect
from sauvegarde.alerts.digest import digest_message, trial_message
from sauvegarde.alerts.message import Alert
from sauvegarde.alerts.notify import DIGEST_KEY, Notifier
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observed import Observation, RepositoryState, SnapshotFact
from sauvegarde.plan.rules import evaluate
from sauvegarde.state.db import DrillRecord, StateDB, Step

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def make_plan(tmp_path: Path, alerts: dict[str, Any]) -> Plan:
    return Plan.model_validate(
        {
            "organisation": {"name": "Les Tilleuls"},
            "settings": {"timezone": "UTC", "jitter": "0s"},
            "repositories": {
                "nas": {"url": "/mnt/nas", "password_env": "PW", "failure_domain": "same-site", "medium": "nas"},
            },
            "assets": {
                "docs": {
                    "paths": ["/srv/docs"],
                    "criticality": "high",
                    "rpo": "1d",
                    "rto": "1h",
                    "schedule": "daily 02:00",
                    "retention": {"keep_daily": 40},
                    "repositories": ["nas"],
                }
            },
            "alerts": alerts,
            "source": str(tmp_path / "plan.toml"),
        }
    )


def smtp_alerts(smtp: SmtpServer, **extra: Any) -> dict[str, Any]:
    return {
        "email": ["direction@tilleuls.example"],
        "smtp": {
            "host": smtp.host,
            "port": smtp.port,
            "starttls": True,
            "username": SMTP_USER,
            "password_env": "TEST_SMTP_PASSWORD",
            "ca_file": str(smtp.ca_file),
            "sender": "sauvegarde@tilleuls.example",
        },
        **extra,
    }


def good_obs(age: timedelta = timedelta(hours=3)) -> Observation:
    return Observation(
        now=NOW, repositories={"nas": RepositoryState("nas", snapshots={"docs": [SnapshotFact(NOW - age)]})}
    )


def test_email_over_starttls_with_auth(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    plan = make_plan(tmp_path, smtp_alerts(smtp_server))
    with StateDB(":memory:") as db:
        [d] = Notifier(plan, db).send_message(trial_message(plan), "test", NOW)
        assert d.ok, d.error
        [sent] = db.alerts_sent()
    assert sent.outcome == "sent" and sent.channel == "email:direction@tilleuls.example"
    assert smtp_server.logins == [SMTP_USER] and smtp_server.tls_sessions == [True]
    [mail] = smtp_server.messages
    assert mail["Subject"] == "[sauvegarde] Les Tilleuls: test message"
    assert mail["From"] == "sauvegarde@tilleuls.example"
    assert smtp_server.envelopes == [("sauvegarde@tilleuls.example", ["direction@tilleuls.example"])]


def test_wrong_smtp_password_is_a_failed_delivery_without_the_password(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-password-xyz")
    plan = make_plan(tmp_path, smtp_alerts(smtp_server))
    with StateDB(":memory:") as db:
        [d] = Notifier(plan, db).send_message(trial_message(plan), "test", NOW)
        [sent] = db.alerts_sent()
    assert not d.ok and "refused" in d.error and "wrong-password-xyz" not in d.error
    assert sent.outcome == "failed" and "wrong-password-xyz" not in sent.error
    assert smtp_server.messages == []


def test_untrusted_certificate_is_refused(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    config = smtp_alerts(smtp_server)
    del config["smtp"]["ca_file"]
    with StateDB(":memory:") as db:
        [d] = Notifier(make_plan(tmp_path, config), db).send_message(
            trial_message(make_plan(tmp_path, config)), "t", NOW
        )
    assert not d.ok and "CERTIFICATE_VERIFY_FAILED" in d.error
    assert smtp_server.messages == []


def test_webhooks_json_ntfy_slack(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    hooks = [
        f"{http_receiver.url}/generic",
        {"url": f"{http_receiver.url}/ntfy-topic", "format": "ntfy"},
        {"url": f"{http_receiver.url}/slack", "format": "slack"},
    ]
    plan = make_plan(tmp_path, {"webhook": hooks, "on": ["fail", "warn"]})
    alert = Alert("k1", "fail", "asset docs", "backup failed", "fix it")
    with StateDB(":memory:") as db:
        deliveries = Notifier(plan, db).send_alerts([alert], NOW)
    assert all(d.ok and d.alerts == 1 for d in deliveries)
    by_path = {r.path: r for r in http_receiver.requests}
    generic = by_path["/generic"].json()
    assert generic["kind"] == "alert" and generic["severity"] == "fail"
    assert generic["alerts"] == [alert.as_dict()] and generic["organisation"] == "Les Tilleuls"
    ntfy = by_path["/ntfy-topic"]
    assert ntfy.headers["Priority"] == "urgent" and "1 problem" in ntfy.headers["Title"]
    assert b"FAIL asset docs: backup failed" in ntfy.body and b"fix: fix it" in ntfy.body
    slack = by_path["/slack"].json()
    assert set(slack) == {"text"} and "backup failed" in slack["text"]


def test_deduplicated_then_repeated_and_rate_limited(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    plan = make_plan(tmp_path, {"webhook": [http_receiver.url], "repeat_after": "6h", "max_per_hour": 2})
    a, b, c = (Alert(k, "fail", "asset docs", k) for k in ("a", "b", "c"))
    with StateDB(":memory:") as db:
        notifier = Notifier(plan, db)
        assert notifier.send_alerts([a], NOW)[0].alerts == 1
        assert notifier.send_alerts([a], NOW + timedelta(minutes=10))[0].skipped == "nothing new"
        # only the new one goes out
        notifier.send_alerts([a, b], NOW + timedelta(minutes=20))
        assert [x["key"] for x in http_receiver.requests[-1].json()["alerts"]] == ["b"]
        # two messages this hour: the third waits
        assert notifier.send_alerts([c], NOW + timedelta(minutes=30))[0].skipped == "rate limited"
        assert len(http_receiver.requests) == 2
        # an hour later it goes, and after repeat_after the old ones are said again
        d = notifier.send_alerts([a, b, c], NOW + timedelta(hours=7))[0]
        assert d.ok and d.alerts == 3


def test_failed_delivery_is_recorded_and_retried(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    plan = make_plan(tmp_path, {"webhook": [http_receiver.url + "/hook?token=s3cr3t"]})
    http_receiver.status = 500
    alert = Alert("a", "fail", "asset docs", "x")
    with StateDB(":memory:") as db:
        notifier = Notifier(plan, db)
        [d] = notifier.send_alerts([alert], NOW)
        assert not d.ok and "HTTP 500" in d.error and "s3cr3t" not in d.error + d.channel
        http_receiver.status = 200
        [d] = notifier.send_alerts([alert], NOW + timedelta(minutes=5))
        assert d.ok and d.alerts == 1
        assert [s.outcome for s in db.alerts_sent()] == ["failed", "sent"]


def test_collect_failed_steps_missed_schedules_drills_findings(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, {"webhook": ["http://127.0.0.1:9/x"], "on": ["fail", "warn"]})
    with StateDB(":memory:") as db:
        run = db.start_run(NOW.timestamp() - 86400 * 3, "run")
        db.record_step(Step(run, "docs", "nas", "backup", NOW.timestamp() - 86400 * 3, 5.0, "failed", message="boom"))
        db.record_step(Step(run, None, "nas", "check", NOW.timestamp() - 86400 * 3, 1.0, "failed", errors=2))
        db.record_drill(DrillRecord("docs", "nas", NOW.timestamp() - 3600, 7200.0, 10, 1, "pass", rto_s=3600))
        obs = good_obs(age=timedelta(days=3))
        alerts = {a.key: a for a in collect(plan, obs, evaluate(plan, obs), db)}
    assert alerts["step:backup:docs:nas"].severity == "fail" and "boom" in alerts["step:backup:docs:nas"].message
    assert "step:check::nas" in alerts
    assert alerts["missed:docs"].severity == "warn" and "did not run" in alerts["missed:docs"].message
    assert alerts["drill-slow:docs:nas"].severity == "warn"
    assert alerts["finding:rpo:asset docs in repository nas"].severity == "fail"
    only_fail = make_plan(tmp_path, {"webhook": ["http://127.0.0.1:9/x"]})
    with StateDB(":memory:") as db:
        obs = good_obs()
        assert all(a.severity == "fail" for a in collect(only_fail, obs, evaluate(only_fail, obs), db))


def test_collect_failed_drill_and_suspicious_guard_verdict(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, {"webhook": ["http://127.0.0.1:9/x"]})
    path = tmp_path / "state.db"
    with StateDB(str(path)) as db, sqlite3.connect(path) as conn:
        db.record_drill(DrillRecord("docs", "nas", NOW.timestamp() - 3600, 60.0, 10, 1, "fail", "3 files differ"))
        conn.executescript(  # the guard's table (its migration may or may not be there yet)
            "CREATE TABLE IF NOT EXISTS guard_verdicts (snapshot_id TEXT, repository TEXT, asset TEXT, time REAL,"
            " verdict TEXT, summary TEXT, released REAL);"
            "INSERT INTO guard_verdicts (snapshot_id, repository, asset, time, verdict, summary) VALUES"
            f" ('abcdef0123', 'nas', 'docs', {NOW.timestamp()}, 'suspicious', '4000 files renamed to .locked'),"
            f" ('0123456789', 'nas', 'other', {NOW.timestamp()}, 'attack', 'released by hand');"
            "UPDATE guard_verdicts SET released = 1 WHERE snapshot_id = '0123456789';"
        )
        obs = good_obs()
        alerts = {a.key: a for a in collect(plan, obs, evaluate(plan, obs), db)}
    assert "3 files differ" in alerts["drill:docs:nas"].message
    assert ".locked" in alerts["guard:docs:nas:abcdef0123"].message
    assert not any(k.startswith("guard:other") for k in alerts)  # released


def test_weekly_digest_says_all_is_well(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    plan = make_plan(tmp_path, {"webhook": [http_receiver.url], "digest": "weekly mon 08:00"})
    with StateDB(":memory:") as db:
        notifier = Notifier(plan, db)
        assert notifier.digest_due(NOW)  # never sent
        msg = digest_message(plan, good_obs(), [], db)
        assert "all is well" in msg.title and "docs (high" in msg.text
        notifier.send_message(msg, DIGEST_KEY, NOW)
        assert not notifier.digest_due(NOW + timedelta(days=1))
        assert notifier.digest_due(NOW + timedelta(days=7))  # the next Monday 08:00 has passed
    assert http_receiver.requests[0].json()["kind"] == "digest"
