"""Exit codes and error messages: one line on stderr that says what went wrong, and the documented code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import CHEAP_KDF, Cli
from cli_trees import write_file


def _one_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("sauvegarde: error: "), lines
    return lines[0]


def test_no_repository_is_10(cli: Cli, tmp_path: Path) -> None:
    for args in (("snapshots",), ("backup", str(tmp_path)), ("ls", "latest"), ("key", "list")):
        res = cli.run("-r", tmp_path / "nothing-here", *args, check_exit=10)
        assert "no repository" in _one_line(res.stderr)
    # an existing directory that is not a repository
    (tmp_path / "empty").mkdir()
    res = cli.run("-r", tmp_path / "empty", "snapshots", check_exit=10)
    _one_line(res.stderr)


def test_wrong_password_is_12(cli: Cli, repo: Path) -> None:
    res = cli.run("snapshots", env={"SAUVEGARDE_PASSWORD": "not the password"}, check_exit=12)
    assert "wrong password" in _one_line(res.stderr)
    pwfile = repo.parent / "wrong.pw"
    pwfile.write_text("also wrong\n")
    res = cli.run("--password-file", pwfile, "snapshots", env={"SAUVEGARDE_PASSWORD": None}, check_exit=12)
    _one_line(res.stderr)


def test_usage_errors_are_2(cli: Cli, repo: Path, tmp_path: Path) -> None:
    res = cli.run("snapshots", "--no-such-option", check_exit=2)
    err = _one_line(res.stderr)
    assert "No such option" in err and "--no-such-option" in err and "sauvegarde snapshots --help" in err
    assert "No such command" in _one_line(cli.run("no-such-command", check_exit=2).stderr)
    res = cli.run("restore", "latest", check_exit=2)  # --target is required
    assert "--target" in _one_line(res.stderr)
    # usage errors found by sauvegarde itself are one line
    res = cli.run("backup", check_exit=2)
    assert "nothing to back up" in _one_line(res.stderr)
    res = cli.run("backup", tmp_path / "does-not-exist", check_exit=2)
    assert "no such file or directory" in _one_line(res.stderr)
    res = cli.run("backup", "--stdin", tmp_path, check_exit=2)
    _one_line(res.stderr)


def test_fatal_errors_are_1(cli: Cli, repo: Path, tmp_path: Path) -> None:
    res = cli.run("ls", "latest", check_exit=1)  # no snapshot yet
    assert "no snapshot" in _one_line(res.stderr)
    (tmp_path / "src").mkdir()
    cli.run("backup", tmp_path / "src")
    res = cli.run("restore", "00000000", "--target", tmp_path / "t", check_exit=1)
    assert "no snapshot with ID 00000000" in _one_line(res.stderr)
    res = cli.run("init", *CHEAP_KDF, check_exit=1)
    assert "already exists" in _one_line(res.stderr)
    # a damaged snapshot object
    snap = next((repo / "snapshots").iterdir())
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 2] ^= 1
    snap.chmod(0o600)
    snap.write_bytes(bytes(raw))
    res = cli.run("snapshots", check_exit=1)
    assert snap.name in _one_line(res.stderr)


# ---- locks --------------------------------------------------------------------------------------------

_HOLD_LOCK = """
import os, sys
from sauvegarde.repository import Repository
from sauvegarde.storage import open_storage
repo = Repository.open(open_storage(sys.argv[1]), os.environb[b"SAUVEGARDE_PASSWORD"], load_index=False)
repo.lock(exclusive=True)
print("locked", flush=True)
sys.stdin.read()
repo.close()
"""


@pytest.fixture
def lock_holder(cli: Cli, repo: Path) -> Iterator[subprocess.Popen[str]]:
    """Another live process holding an exclusive lock on the repository until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(repo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=cli.env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_locked_repository_is_11_and_names_the_holder(
    cli: Cli, repo: Path, tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    (tmp_path / "src").mkdir()
    write_file(tmp_path / "src" / "f", b"data")
    res = cli.run("backup", tmp_path / "src", check_exit=11)
    line = _one_line(res.stderr)
    assert "exclusive lock" in line and f"pid {lock_holder.pid}" in line
    # nothing was saved, and the failed client removed its own lock
    assert cli.json("--no-lock", "snapshots") == []
    assert len(list((repo / "locks").iterdir())) == 1
    # the holder finishes: its lock goes, and backups work again
    assert lock_holder.stdin is not None
    lock_holder.stdin.close()
    assert lock_holder.wait(timeout=30) == 0
    assert list((repo / "locks").iterdir()) == []
    cli.run("backup", tmp_path / "src")


def test_lock_of_a_dead_process_is_stale(
    cli: Cli, repo: Path, tmp_path: Path, lock_holder: subprocess.Popen[str]
) -> None:
    (tmp_path / "src").mkdir()
    lock_holder.send_signal(signal.SIGKILL)
    lock_holder.wait()
    assert len(list((repo / "locks").iterdir())) == 1  # left behind by the killed process
    cli.run("backup", tmp_path / "src")


# ---- unreadable files ---------------------------------------------------------------------------------


def _without_root_powers() -> tuple[str, ...]:
    """A command prefix under which mode 000 files are unreadable, even for root: ``unshare --user`` keeps uid 0
    but gives up the capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) over files outside the namespace."""
    if os.geteuid() != 0:
        return ()
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root and unshare(1) is missing: cannot make a file unreadable")
    probe = subprocess.run([unshare, "--user", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"running as root and user namespaces are unavailable: {probe.stderr.decode().strip()}")
    return (unshare, "--user")


def test_unreadable_file_is_3_and_the_snapshot_is_saved(cli: Cli, repo: Path, tmp_path: Path) -> None:
    prefix = _without_root_powers()
    src = tmp_path / "src"
    src.mkdir()
    write_file(src / "readable.txt", b"fine\n")
    write_file(src / "secret.txt", b"no one may read this\n")
    (src / "secret.txt").chmod(0)
    (src / "closed-dir").mkdir()
    write_file(src / "closed-dir" / "inside", b"x")
    (src / "closed-dir").chmod(0)
    try:
        res = cli.run("backup", src, prefix=prefix, check_exit=3)
        err = res.stderr.decode()
        assert f"{src}/secret.txt" in err and "Permission denied" in err
        assert f"{src}/closed-dir" in err
        assert "2 file(s) could not be read" in err
        snaps = cli.json("snapshots")
        assert len(snaps) == 1 and snaps[0]["summary"]["errors"] == 2
        listing = cli.run("ls", "latest").stdout.decode().splitlines()
        assert f"{src}/readable.txt" in listing
        assert f"{src}/secret.txt" not in listing
        # the JSON summary lists each unreadable file
        res = cli.run("--json", "backup", src, prefix=prefix, check_exit=3)
        errors = [e["path"] for e in json.loads(res.stdout.splitlines()[-1])["errors"]]
        assert sorted(errors) == [f"{src}/closed-dir", f"{src}/secret.txt"]
    finally:
        (src / "closed-dir").chmod(0o755)  # so that pytest can clean up tmp_path without root
