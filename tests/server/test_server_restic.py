"""restic (Debian's 0.14, a real peer) against ``sauvegarde serve``: init, backup, restore, check and forget --prune
in normal mode; in append-only mode its prune is refused while its backups and restores keep working."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rest_server import RestServer

pytestmark = pytest.mark.skipif(shutil.which("restic") is None, reason="restic not installed (scripts/test does it)")


def restic(server: RestServer, repo: str, home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "RESTIC_PASSWORD": "restic test password",
        "RESTIC_REPOSITORY": server.restic_url(repo),
        "RESTIC_CACHE_DIR": str(home / "cache"),
    }
    res = subprocess.run(["restic", *args], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == code, f"restic {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _source(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        (root / ("sub" if i % 2 else ".") / f"f{i}").write_bytes(os.urandom(200_000 + i))
    return root


def _snapshots(server: RestServer, repo: str, home: Path) -> list[Any]:
    result: list[Any] = json.loads(restic(server, repo, home, "snapshots", "--json").stdout)
    return result


def test_restic_against_our_server(rest_server: RestServer, tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    restic(rest_server, "restic-normal", tmp_path, "init")
    restic(rest_server, "restic-normal", tmp_path, "backup", str(src))
    (src / "f0").write_bytes(os.urandom(1000))
    restic(rest_server, "restic-normal", tmp_path, "backup", str(src))
    restic(rest_server, "restic-normal", tmp_path, "restore", "latest", "--target", str(tmp_path / "out"))
    assert _tree(tmp_path / "out" / src.relative_to("/")) == _tree(src)
    restic(rest_server, "restic-normal", tmp_path, "check", "--read-data")
    restic(rest_server, "restic-normal", tmp_path, "forget", "--keep-last", "1", "--prune")
    assert len(_snapshots(rest_server, "restic-normal", tmp_path)) == 1
    restic(rest_server, "restic-normal", tmp_path, "check", "--read-data")


def test_restic_prune_refused_in_append_only_mode(rest_server_factory: Any, tmp_path: Path) -> None:
    server = rest_server_factory("--append-only")
    src = _source(tmp_path / "src")
    restic(server, "restic-ao", tmp_path, "init")
    restic(server, "restic-ao", tmp_path, "backup", str(src))
    (src / "f1").write_bytes(os.urandom(1000))
    restic(server, "restic-ao", tmp_path, "backup", str(src))
    res = restic(server, "restic-ao", tmp_path, "forget", "--keep-last", "1", "--prune", code=1)
    assert "403" in res.stderr or "Forbidden" in res.stderr, res.stderr
    assert len(_snapshots(server, "restic-ao", tmp_path)) == 2
    (src / "f2").write_bytes(os.urandom(1000))
    restic(server, "restic-ao", tmp_path, "backup", str(src))  # backups keep working
    restic(server, "restic-ao", tmp_path, "restore", "latest", "--target", str(tmp_path / "out"))
    assert _tree(tmp_path / "out" / src.relative_to("/")) == _tree(src)
    restic(server, "restic-ao", tmp_path, "check")
    assert any(r.get("event") == "append-only-delete-refused" for r in server.log_records())
