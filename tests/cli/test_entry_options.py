"""The global options as the entry reads them before click is loaded, to derive the key first
(sauvegarde.cli.entry.global_options): what it finds must be what click will use, and anything it does not
understand must leave the derivation to the command."""

from __future__ import annotations

import pytest

from sauvegarde.cli.entry import global_options, hoist_global_options


@pytest.mark.parametrize(
    ("argv", "values", "command"),
    [
        (["-r", "/r", "snapshots"], {"--repo": "/r"}, "snapshots"),
        (["snapshots", "-r", "/r", "--json"], {"--repo": "/r"}, "snapshots"),  # after the command: hoisted
        (["--repo=/r", "--password-file", "/pw", "backup", "/x"], {"--repo": "/r", "--password-file": "/pw"}, "backup"),
        (["-r/r", "check", "--read-data"], {"--repo": "/r"}, "check"),  # click's attached short form
        (["--json", "-q", "--no-lock", "-v", "check"], {}, "check"),
        (["--password-command=pass x", "restore", "latest"], {"--password-command": "pass x"}, "restore"),
        (["check"], {}, "check"),
        ([], {}, None),
        (["--help"], {}, None),
        (["-r", "/r", "check", "--help"], {"--repo": "/r"}, None),
        (["check", "-h"], {}, None),
        (["--version"], {}, None),
        (["--no-such-option", "check"], {}, None),
    ],
)
def test_global_options_are_read_as_click_will_read_them(
    argv: list[str], values: dict[str, str], command: str | None
) -> None:
    assert global_options(argv) == (values, command)


def test_global_options_after_the_command_are_hoisted_in_front() -> None:
    assert hoist_global_options(["backup", "/x", "-r", "/r", "--json", "--", "-r"]) == [
        "-r",
        "/r",
        "--json",
        "backup",
        "/x",
        "--",
        "-r",
    ]
