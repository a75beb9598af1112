"""``sauvegarde forget`` end to end: retention policies, dry runs, explicit IDs, grouping, filters and --prune.

One repository with six snapshots at chosen times (``backup --time``) is built once per module and copied for each
test. Host ``alpha`` has five snapshots of the same directory, host ``beta`` one:

    a1 2024-01-01 10:00 daily   a2 2024-01-02 10:00 daily   a3 2024-01-02 18:00 prod
    a4 2024-01-03 10:00 daily   a5 2024-01-04 10:00 daily   b1 2024-01-04 12:00 daily (host beta)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_harness import CHEAP_KDF, Cli, private_env

SNAPSHOTS = {
    "a1": ("alpha", "2024-01-01T10:00:00+0000", "daily"),
    "a2": ("alpha", "2024-01-02T10:00:00+0000", "daily"),
    "a3": ("alpha", "2024-01-02T18:00:00+0000", "prod"),
    "a4": ("alpha", "2024-01-03T10:00:00+0000", "daily"),
    "a5": ("alpha", "2024-01-04T10:00:00+0000", "daily"),
    "b1": ("beta", "2024-01-04T12:00:00+0000", "daily"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A repository holding the six snapshots, and the name -> snapshot ID map."""
    base = tmp_path_factory.mktemp("forget-template")
    repo = base / "repo"
    (base / "env").mkdir()
    cli = Cli(private_env(base / "env", repo) | {"TZ": "UTC"}, base)
    data = base / "data"
    data.mkdir()
    cli.run("init", *CHEAP_KDF)
    for i, (host, when, tag) in enumerate(SNAPSHOTS.values()):
        (data / "file.txt").write_text(f"version {i}\n")
        cli.run("-q", "backup", str(data), "--host", host, "--tag", tag, "--time", when)
    listed = cli.json("snapshots")
    by_time = {s["time"][:19]: s["id"] for s in listed}
    ids = {name: by_time[when[:19]] for name, (_h, when, _t) in SNAPSHOTS.items()}
    return repo, ids


@pytest.fixture
def ids(template: tuple[Path, dict[str, str]], cli: Cli, repo_path: Path) -> dict[str, str]:
    """A private copy of the template repository at SAUVEGARDE_REPOSITORY; returns name -> snapshot ID."""
    shutil.copytree(template[0], repo_path)
    cli.env["TZ"] = "UTC"
    return template[1]


def remaining(cli: Cli, ids: dict[str, str]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    return {names[s["id"]] for s in cli.json("snapshots")}


def summary(groups: list[dict[str, Any]], ids: dict[str, str]) -> list[tuple[Any, list[Any], list[str]]]:
    """(group, [(name, reasons)...], [removed names]) for each group of ``forget --json``."""
    names = {v: k for k, v in ids.items()}
    return [
        (
            g["group"],
            [(names[k["id"]], k["reasons"]) for k in g["keep"]],
            [names[r["id"]] for r in g["remove"]],
        )
        for g in groups
    ]


def test_backup_time_sets_the_snapshot_time(cli: Cli, ids: dict[str, str]) -> None:
    snaps = {s["id"]: s for s in cli.json("snapshots")}
    for name, (host, when, tag) in SNAPSHOTS.items():
        s = snaps[ids[name]]
        assert s["time"] == f"{when[:19]}.000000000+00:00"
        assert (s["hostname"], s["tags"]) == (host, [tag])


def test_dry_run_shows_the_plan_and_removes_nothing(cli: Cli, ids: dict[str, str]) -> None:
    groups = cli.json("forget", "--keep-last", "2", "--dry-run")
    alpha = {"host": "alpha", "paths": groups[0]["group"]["paths"], "tags": None}
    assert summary(groups, ids) == [
        (alpha, [("a5", ["last snapshot"]), ("a4", ["last snapshot"])], ["a3", "a2", "a1"]),
        ({**alpha, "host": "beta"}, [("b1", ["last snapshot"])], []),
    ]
    assert remaining(cli, ids) == set(SNAPSHOTS)

    out = cli.run("forget", "--keep-last", "2", "--dry-run").stdout.decode()
    assert "Applying policy: keep 2 last snapshots" in out
    assert "snapshots for host [alpha], paths [" in out
    assert "Reasons" in out and "last snapshot" in out
    assert "remove 3 snapshot(s):" in out
    assert "would remove 3 snapshot(s) (dry run: nothing was removed)" in out
    assert remaining(cli, ids) == set(SNAPSHOTS)


def test_keep_last_removes_the_older_snapshots_of_each_group(cli: Cli, ids: dict[str, str]) -> None:
    out = cli.run("forget", "--keep-last", "2").stdout.decode()
    assert "removed 3 snapshot(s)" in out
    assert remaining(cli, ids) == {"a4", "a5", "b1"}
    # forgetting again with the same policy finds nothing more to remove
    assert "removed 0 snapshot(s)" in cli.run("forget", "--keep-last", "2").stdout.decode()
    assert remaining(cli, ids) == {"a4", "a5", "b1"}


def test_calendar_rules_and_keep_tag_list_every_reason(cli: Cli, ids: dict[str, str]) -> None:
    groups = cli.json("forget", "--keep-daily", "2", "--keep-weekly", "1", "--keep-tag", "prod", "--host", "alpha")
    ((_, keep, remove),) = summary(groups, ids)
    assert keep == [("a5", ["daily snapshot", "weekly snapshot"]), ("a4", ["daily snapshot"]), ("a3", ["tag prod"])]
    assert remove == ["a2", "a1"]
    assert remaining(cli, ids) == {"a3", "a4", "a5", "b1"}


def test_keep_within_is_measured_from_the_newest_snapshot_of_the_group(cli: Cli, ids: dict[str, str]) -> None:
    # a5 (4 Jan 10:00) minus 1d12h = 2 Jan 22:00: a4 and a5 are within; beta's only snapshot is its own newest
    groups = cli.json("forget", "--keep-within", "1d12h", "-n")
    assert [(keep, remove) for _g, keep, remove in summary(groups, ids)] == [
        ([("a5", ["within 1d12h"]), ("a4", ["within 1d12h"])], ["a3", "a2", "a1"]),
        ([("b1", ["within 1d12h"])], []),
    ]


def test_group_by_nothing_applies_the_policy_to_all_snapshots(cli: Cli, ids: dict[str, str]) -> None:
    groups = cli.json("forget", "--keep-last", "1", "--group-by", "")
    ((group, keep, remove),) = summary(groups, ids)
    assert group == {"host": None, "paths": None, "tags": None}
    assert keep == [("b1", ["last snapshot"])]
    assert sorted(remove) == ["a1", "a2", "a3", "a4", "a5"]
    assert remaining(cli, ids) == {"b1"}


def test_group_by_tags(cli: Cli, ids: dict[str, str]) -> None:
    groups = cli.json("forget", "--keep-last", "1", "--group-by", "tags", "--dry-run")
    assert [(g, [k for k, _ in keep]) for g, keep, _ in summary(groups, ids)] == [
        ({"host": None, "paths": None, "tags": ["daily"]}, ["b1"]),
        ({"host": None, "paths": None, "tags": ["prod"]}, ["a3"]),
    ]


def test_filters_choose_which_snapshots_the_policy_sees(cli: Cli, ids: dict[str, str]) -> None:
    groups = cli.json("forget", "--host", "alpha", "--tag", "daily", "--keep-last", "1")
    assert [(keep, remove) for _g, keep, remove in summary(groups, ids)] == [
        ([("a5", ["last snapshot"])], ["a4", "a2", "a1"])
    ]
    assert remaining(cli, ids) == {"a3", "a5", "b1"}


def test_forget_explicit_ids_removes_exactly_those(cli: Cli, ids: dict[str, str]) -> None:
    res = cli.run("forget", ids["a1"][:8], ids["a3"], ids["a3"][:10], "--dry-run")
    assert "would remove 2 snapshot(s)" in res.stdout.decode()
    assert remaining(cli, ids) == set(SNAPSHOTS)
    groups = cli.json("forget", ids["a1"][:8], ids["a3"])
    assert summary(groups, ids) == [(None, [], ["a1", "a3"])]
    assert remaining(cli, ids) == {"a2", "a4", "a5", "b1"}


def test_forget_latest_with_a_host_filter(cli: Cli, ids: dict[str, str]) -> None:
    cli.run("forget", "latest", "--host", "alpha")
    assert remaining(cli, ids) == {"a1", "a2", "a3", "a4", "b1"}


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        ((), 2, "empty retention policy"),
        (("--keep-last", "0"), 2, "empty retention policy"),
        (("--keep-within", "0d"), 2, "empty retention policy"),
        (("--keep-last", "-2"), 2, "--keep-last"),
        (("--keep-daily", "soon"), 2, "not a number"),
        (("--keep-within", "3 weeks"), 2, "invalid duration"),
        (("--keep-last", "1", "--group-by", "hostname"), 2, "hostname"),
        (("deadbeef",), 1, "no snapshot with ID deadbeef"),
    ],
)
def test_refusals_remove_nothing(
    cli: Cli, ids: dict[str, str], args: tuple[str, ...], exit_code: int, message: str
) -> None:
    res = cli.run("forget", *args, check_exit=exit_code)
    assert message in res.stderr.decode()
    assert remaining(cli, ids) == set(SNAPSHOTS)


def test_ids_and_a_policy_together_are_refused(cli: Cli, ids: dict[str, str]) -> None:
    res = cli.run("forget", ids["a1"], "--keep-last", "1", check_exit=2)
    assert "not both" in res.stderr.decode()
    assert remaining(cli, ids) == set(SNAPSHOTS)


def test_unlimited_keeps_everything(cli: Cli, ids: dict[str, str]) -> None:
    out = cli.run("forget", "--keep-daily", "unlimited").stdout.decode()
    assert "keep all daily snapshots" in out
    # one per day per group, plus the oldest of alpha (count left): only a2 shares its day with a newer snapshot
    assert remaining(cli, ids) == {"a1", "a3", "a4", "a5", "b1"}


def test_prune_after_forget_leaves_a_consistent_repository(cli: Cli, ids: dict[str, str]) -> None:
    cli.run("forget", "--keep-last", "1", "--prune")
    assert remaining(cli, ids) == {"a5", "b1"}
    cli.run("check")
    restore_to = cli.cwd / "restored"
    cli.run("restore", ids["a5"], "--target", str(restore_to))
    assert [p.read_text() for p in restore_to.rglob("file.txt")] == ["version 4\n"]


def test_prune_is_not_simulated_on_a_dry_run(cli: Cli, ids: dict[str, str]) -> None:
    res = cli.run("forget", "--keep-last", "1", "--prune", "--dry-run")
    assert "prune not simulated" in res.stderr.decode()
    assert remaining(cli, ids) == set(SNAPSHOTS)
