"""The global options as the entry reads them before click is loaded, to derive the key first
(sauvegarde.cli.entry.global_options): what it finds must be what click will use, and anything it does not
understand must leave the derivation to the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from sauvegarde.cli.entry import first_key_file, global_options, hoist_global_options
from sauvegarde.crypto.kdf import KdfParams
from sauvegarde.repository import Repository, layout
from sauvegarde.storage.local import LocalStorage


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


def test_the_key_file_derived_ahead_is_the_one_opening_the_repository_tries_first(tmp_path: Path) -> None:
    """first_key_file reads the key directory without the storage's modules: the same first name as LocalStorage's
    listing, sorted (the order Repository.open tries key files in), temporary files left out."""
    storage = LocalStorage(str(tmp_path / "repo"))
    with Repository.init(storage, b"pw", KdfParams.cheap()) as repo:
        for _ in range(3):
            repo.add_key(b"other", KdfParams.cheap())
    keys = tmp_path / "repo" / "keys"
    (keys / ".tmp-0000").write_bytes(b"half written")
    listed = sorted(info.name for info in storage.list(layout.KEYS))
    assert len(listed) == 4
    assert first_key_file(str(keys)) == str(tmp_path / "repo" / listed[0])
    for name in listed:
        (tmp_path / "repo" / name).unlink()
    assert first_key_file(str(keys)) is None
