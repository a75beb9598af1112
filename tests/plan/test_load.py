"""Plan files with every kind of mistake get precise errors: file, line, field and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauvegarde.plan.load import PlanInvalid, key_lines, load_plan, parse_plan

GOOD = """\
[organisation]
name = "Test"

[[organisation.contacts]]
name = "A"
phone = "1"

[repositories.local]
url = "/srv/repo"
password_file = "pw"
failure_domain = "same-site"
medium = "nas"

[assets.docs]
paths = [
  "/home/docs",
  "/home/more",
]
criticality = "high"
rpo = "4h"
rto = "1d"
schedule = "daily 02:00"
retention = { keep_daily = 30 }
repositories = ["local"]
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(PlanInvalid) as info:
        parse_plan(text, "/etc/plan.toml")
    return info.value.problems


def test_good_plan_loads() -> None:
    plan = parse_plan(GOOD)
    assert plan.assets["docs"].rpo.total_seconds() == 4 * 3600
    assert plan.assets["docs"].retention.policy().keep_daily == 30


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('rpo = "4h"', 'rpo = "soon"', "/etc/plan.toml:20: assets.docs.rpo: expected a duration such as 30m"),
        ('rto = "1d"', "rto = 4", "/etc/plan.toml:21: assets.docs.rto: expected a duration"),
        ('schedule = "daily 02:00"', 'schedule = "daily 25:00"', "/etc/plan.toml:22: assets.docs.schedule: invalid"),
        ('schedule = "daily 02:00"', 'schedule = "61 * * * *"', "/etc/plan.toml:22: assets.docs.schedule: minute"),
        ('"/home/more"', '"relative/more"', "/etc/plan.toml:17: assets.docs.paths.1: expected an absolute path"),
        ('criticality = "high"', 'criticality = "huge"', "/etc/plan.toml:19: assets.docs.criticality: expected"),
        ('medium = "nas"', 'medium = "floppy"', "/etc/plan.toml:12: repositories.local.medium: expected 'disk'"),
        ('failure_domain = "same-site"', "", "/etc/plan.toml:8: repositories.local.failure_domain: required"),
        ('rpo = "4h"', 'rpo = "4h"\nrpoo = "1h"', "/etc/plan.toml:21: assets.docs.rpoo: unknown field"),
        ('password_file = "pw"', 'password_file = "pw"\npassword_env = "X"', "/etc/plan.toml:8: repositories.local:"),
        ('repositories = ["local"]', 'repositories = ["local", "nowhere"]', "assets.docs.repositories: unknown repo"),
        ("{ keep_daily = 30 }", "{ keep_daily = 0 }", "/etc/plan.toml:23: assets.docs.retention: a retention that"),
        ("{ keep_daily = 30 }", "{ keep_dayly = 30 }", "/etc/plan.toml:23: assets.docs.retention.keep_dayly: unknown"),
        ('phone = "1"', "", "/etc/plan.toml:4: organisation.contacts.0: contact 'A' needs a phone or an email"),
        ('name = "Test"', "", "/etc/plan.toml:1: organisation.name: required field missing"),
        ("[assets.docs]", "[assets.'bad name']", "invalid asset name 'bad name'"),
    ],
)
def test_mistakes_are_named_precisely(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    problems = _errors(GOOD.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_every_problem_is_listed() -> None:
    text = GOOD.replace('rpo = "4h"', 'rpo = "x"').replace('medium = "nas"', 'medium = "y"')
    problems = _errors(text)
    assert len(problems) == 2
    assert problems[0].startswith("/etc/plan.toml:12: repositories.local.medium")


def test_not_toml_names_the_line() -> None:
    problems = _errors(GOOD.replace('rto = "1d"', "rto = "))
    assert problems[0].startswith("/etc/plan.toml:21: not valid TOML"), problems


def test_drill_and_canary_references() -> None:
    text = GOOD + '\n[[drills]]\nasset = "docs"\nrepository = "other"\nschedule = "monthly 1 09:00"\n'
    text += '\n[[canaries]]\nasset = "ghost"\npath = "/x"\n'
    problems = _errors(text)
    assert any(p.startswith("/etc/plan.toml:28: drills.0.repository: asset 'docs' has no copy") for p in problems)
    assert any(p.startswith("/etc/plan.toml:32: canaries.0.asset: unknown asset 'ghost'") for p in problems)


def test_alerts_validated() -> None:
    problems = _errors(GOOD + '\n[alerts]\nemail = ["nobody"]\non = ["panic"]\n')
    assert any("alerts.email: expected an email address" in p for p in problems)
    assert any("alerts.on.0: expected 'fail'" in p for p in problems)


def test_missing_plan_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="quickstart"):
        load_plan(str(tmp_path / "nope.toml"))


def test_key_lines_maps_tables_keys_and_elements() -> None:
    lines = key_lines(GOOD)
    assert lines[("organisation", "contacts", 0)] == 4
    assert lines[("organisation", "contacts", 0, "phone")] == 6
    assert lines[("assets", "docs", "paths", 0)] == 16
    assert lines[("assets", "docs", "paths", 1)] == 17
    assert lines[("assets", "docs", "retention")] == 23
