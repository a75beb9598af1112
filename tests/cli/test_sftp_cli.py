"""The CLI end to end on an SFTP repository served by a private sshd: init, backup, restore, check, forget/prune,
copy from a local repository, and the one-line errors of an unknown host key and a stopped server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshd_server import SshServer, running_server

PASSWORD = "sftp test password"
CHEAP_KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")


class Sauvegarde:
    """Runs ``python -m sauvegarde`` in a private environment aimed at one repository."""

    def __init__(self, tmp_path: Path, repo: str, extra_env: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUVEGARDE_", "XDG_", "SSH_"))}
        base = tmp_path / "env"
        for name in ("home", "config", "data", "state", "cache"):
            (base / name).mkdir(parents=True, exist_ok=True)
        env.update(
            HOME=str(base / "home"),
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_DATA_HOME=str(base / "data"),
            XDG_STATE_HOME=str(base / "state"),
            XDG_CACHE_HOME=str(base / "cache"),
            SAUVEGARDE_PASSWORD=PASSWORD,
            SAUVEGARDE_REPOSITORY=repo,
            LC_ALL="C.UTF-8",
            **extra_env,
        )
        self.env = env

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [sys.executable, "-m", "sauvegarde", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert res.returncode == code, f"{args}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
        return res

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.run("--json", *args, env=env).stdout)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _make_data(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    big = os.urandom(3 * 1024 * 1024)
    (root / "big.bin").write_bytes(big)
    (root / "sub" / "deeper" / "same-as-big.bin").write_bytes(big)
    (root / "sub" / "note.txt").write_bytes(b"remember the milk\n")
    (root / "empty").write_bytes(b"")


def _has_command(cli: Sauvegarde, name: str) -> bool:
    res = subprocess.run(
        [sys.executable, "-m", "sauvegarde", name, "--help"], env=cli.env, capture_output=True, timeout=60
    )
    return res.returncode == 0


def test_cli_end_to_end_on_sftp(sshd_server: SshServer, tmp_path: Path) -> None:
    repo_dir = tmp_path / "sftp-repo"
    cli = Sauvegarde(tmp_path, sshd_server.url(repo_dir), sshd_server.env())
    cli.run("init", *CHEAP_KDF)
    assert (repo_dir / "config").is_file()
    assert oct(repo_dir.stat().st_mode & 0o777) == "0o700"

    data = tmp_path / "data"
    data.mkdir()
    _make_data(data)
    first = cli.json("backup", str(data))
    (data / "sub" / "note.txt").write_bytes(b"changed\n")
    (data / "later.txt").write_bytes(b"added later\n")
    second = cli.json("backup", str(data))
    assert first["snapshot_id"] != second["snapshot_id"]
    assert len(cli.json("snapshots")) == 2

    target = tmp_path / "restore"
    cli.run("restore", "latest", "--target", str(target))
    assert _tree(target / data.relative_to("/")) == _tree(data)

    cli.run("check", "--read-data")

    if _has_command(cli, "forget"):
        cli.run("forget", "--keep-last", "1", "--prune")
    else:
        cli.run("prune")
    snaps = cli.json("snapshots")
    if _has_command(cli, "forget"):
        assert [s["id"] for s in snaps] == [second["snapshot_id"]]
    cli.run("check", "--read-data")
    target2 = tmp_path / "restore2"
    cli.run("restore", "latest", "--target", str(target2))
    assert _tree(target2 / data.relative_to("/")) == _tree(data)


def test_cli_copy_from_local_to_sftp(sshd_server: SshServer, tmp_path: Path) -> None:
    local = tmp_path / "local-repo"
    src_env = {"SAUVEGARDE_REPOSITORY": str(local)}
    cli = Sauvegarde(tmp_path, sshd_server.url(tmp_path / "sftp-repo"), sshd_server.env())
    cli.run("init", *CHEAP_KDF, env=src_env)
    data = tmp_path / "data"
    data.mkdir()
    _make_data(data)
    snap = cli.json("backup", str(data), env=src_env)

    cli.run("init", *CHEAP_KDF)
    copied = cli.json("copy", "--from-repo", str(local), env={"SAUVEGARDE_FROM_PASSWORD": PASSWORD})
    assert [r["status"] for r in copied] == ["copied"]
    assert copied[0]["source_id"] == snap["snapshot_id"]
    cli.run("check", "--read-data")
    target = tmp_path / "restore"
    cli.run("restore", "latest", "--target", str(target))
    assert _tree(target / data.relative_to("/")) == _tree(data)


def test_cli_unknown_host_key_is_one_line_error(sshd_server: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    env = {**sshd_server.env(), "SAUVEGARDE_SFTP_KNOWN_HOSTS": str(empty)}
    cli = Sauvegarde(tmp_path, sshd_server.url(tmp_path / "sftp-repo"), env)
    res = cli.run("init", *CHEAP_KDF, code=1)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"sauvegarde: error: unknown host key for [127.0.0.1]:{sshd_server.port} (ssh-ed25519")
    assert "ssh-keyscan" in lines[0]
    assert not (tmp_path / "sftp-repo").exists()


@pytest.mark.parametrize("command", ["backup", "snapshots"])
def test_cli_stopped_server_is_one_line_error(tmp_path: Path, command: str) -> None:
    with running_server(tmp_path / "sshd") as server:
        cli = Sauvegarde(
            tmp_path, server.url(tmp_path / "sftp-repo"), {**server.env(), "SAUVEGARDE_STORAGE_RETRIES": "1"}
        )
        cli.run("init", *CHEAP_KDF)
        server.stop()
        args = ["backup", str(tmp_path / "env")] if command == "backup" else [command]
        res = cli.run(*args, code=1)
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f"sauvegarde: error: cannot reach sftp server 127.0.0.1:{server.port}: connection refused "
        "(gave up after 2 attempts)"
    ], res.stderr
