"""Helpers for the report tests: a plan full of secrets (password file, variable, command, a URL with a password,
an SMTP password, a Slack-style webhook), its repositories created and backed up at three different times, a drill
and a suspicious guard verdict recorded: everything the document shows, and everything it must not."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sauvegarde.crypto import KdfParams
from sauvegarde.drill.plan import DrillTarget, run_drill
from sauvegarde.plan.access import init_repository, opened
from sauvegarde.plan.load import load_plan
from sauvegarde.plan.model import Plan
from sauvegarde.plan.run import PlanRunner
from sauvegarde.state.db import GuardRecord, StateDB

T0 = datetime(2025, 3, 8, 2, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
SECRETS = {
    "nas password file": "Nas-Secret-0e8d1c3b",
    "offsite password variable": "Env-Secret-6a2f9b71",
    "command password": "Cmd-Secret-93c4d0e5",
    "password in the URL": "Url-Secret-17be44a2",
    "SMTP password": "Smtp-Secret-c01d2f8e",
    "webhook token": "Hook-Secret-5b7a90d3",
}
OFFSITE_ENV = "SAUVEGARDE_REPORT_TEST_OFFSITE_PW"


@dataclass
class ReportEnv:
    tmp: Path
    plan: Plan
    data: Path

    def db(self) -> StateDB:
        return StateDB(str(self.tmp / "state" / "state.db"))

    def repo_url(self, name: str) -> str:
        return self.plan.repositories[name].url


def plan_text(tmp: Path, data: Path) -> str:
    return f"""
[organisation]
name = "Les Tilleuls"
[[organisation.contacts]]
name = "Claire Martin"
role = "director"
phone = "+33 4 72 00 00 01"
[[organisation.contacts]]
name = "Hugo Bernard"
role = "head nurse"
phone = "+33 4 72 00 00 02"
[[organisation.contacts]]
name = "Zoé Arnaud"
role = "accountant"
email = "compta@tilleuls.example"
[organisation.provider]
name = "Rhône Informatique"
phone = "+33 4 72 99 99 99"

[settings]
timezone = "UTC"
jitter = "0s"
state_dir = "{tmp / "state"}"

[repositories.nas]
url = "{tmp / "repo-nas"}"
password_file = "nas.password"
failure_domain = "same-site"
medium = "nas"
key_escrow = "recovery sheet in the director's safe"

[repositories.offsite]
url = "{tmp / "repo-offsite"}"
password_env = "{OFFSITE_ENV}"
failure_domain = "off-site"
medium = "removable-disk"
offline = true
key_escrow = "recovery sheet at the provider's office"

[repositories.server]
url = "rest:http://backup:{SECRETS["password in the URL"]}@127.0.0.1:9/tilleuls"
password_command = "cat {tmp / "cmd.secret"}"
failure_domain = "cloud"
medium = "server"

[assets.documents]
description = "shared office documents"
paths = ["{data}"]
criticality = "high"
rpo = "1d"
rto = "4h"
schedule = "daily 02:00"
retention = {{ keep_daily = 40 }}
repositories = ["nas", "offsite"]

[assets.care-db]
description = "care records database"
command = "cat {data / "letter.txt"}"
filename = "care.pgdump"
criticality = "critical"
rpo = "4h"
rto = "2h"
schedule = "hourly"
retention = {{ keep_hourly = 48, keep_daily = 40 }}
repositories = ["nas"]

[[drills]]
asset = "documents"
repository = "offsite"
schedule = "monthly 1 09:00"

[alerts]
email = ["direction@tilleuls.example"]
webhook = [{{ url = "https://hooks.slack.example/services/T0/B0/{SECRETS["webhook token"]}", format = "slack" }}]
[alerts.smtp]
host = "smtp.tilleuls.example"
port = 587
starttls = true
username = "alerts"
password_file = "smtp.password"
"""


def make_data(data: Path) -> None:
    rng = random.Random(11)
    (data / "sub").mkdir(parents=True)
    for i in range(6):
        (data / "sub" / f"f{i}.bin").write_bytes(rng.randbytes(50_000))
    (data / "letter.txt").write_text("Dear families,\n" * 100)


def make_env(tmp_path: Path) -> ReportEnv:
    data = tmp_path / "data"
    make_data(data)
    (tmp_path / "nas.password").write_text(SECRETS["nas password file"] + "\n")
    (tmp_path / "smtp.password").write_text(SECRETS["SMTP password"] + "\n")
    (tmp_path / "cmd.secret").write_text(SECRETS["command password"] + "\n")
    path = tmp_path / "plan.toml"
    path.write_text(plan_text(tmp_path, data))
    plan = load_plan(str(path))
    init_repository(plan, "nas", KdfParams.cheap())
    with opened(plan, "nas", lock=None, load_index=False) as first:
        init_repository(plan, "offsite", KdfParams.cheap(), first)
    env = ReportEnv(tmp_path, plan, data)
    with env.db() as db:
        for day in range(3):
            when = T0 + timedelta(days=day)
            (data / f"new-{day}.txt").write_text(f"day {day}\n" * 5000)
            report = PlanRunner(plan, db, lambda when=when: when).run(force=True)
            assert not [s for s in report.failures if s.repository != "server"], report.failures
        db.record_drill(run_drill(plan, DrillTarget("documents", "offsite", 1.0), NOW - timedelta(hours=2)).record())
        db.record_guard(
            GuardRecord(
                "ab" * 32,
                "nas",
                "documents",
                (NOW - timedelta(hours=5)).timestamp(),
                "suspicious",
                0.8,
                "12 file(s) look encrypted",
            )
        )
    return env
