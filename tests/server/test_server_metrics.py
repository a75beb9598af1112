"""Who reads what on ``/metrics`` of a real ``sauvegarde serve``: every series for anyone authenticated by default,
only one's own series under ``--private-repos``, everything for the ``--metrics-user`` accounts and nobody else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from rest_requests import call
from rest_server import RestServer

OPS = "user0"  # the monitoring account of these tests


def two_clients(server: RestServer) -> None:
    """alice and bob each store an object in their repository; bob also tries alice's (403 with --private-repos)."""
    for user in ("alice", "bob"):
        assert call(server, "POST", f"/{user}/r/?create=true", user=user)[0] == 200
        assert call(server, "POST", f"/{user}/r/keys/k", b"data", user=user)[0] == 200
    call(server, "GET", "/alice/r/keys/k", user="bob")
    call(server, "GET", "/alice/r/keys/k", user="mallory", password="guess")  # 401: user "-"


def scrape(server: RestServer, user: str | None) -> tuple[int, str]:
    status, body, _ = call(server, "GET", "/metrics", user=user)
    return status, body.decode()


def series_users(text: str) -> set[str]:
    return {line.split('user="', 1)[1].split('"', 1)[0] for line in text.splitlines() if 'user="' in line}


def test_private_repos_scrapes_show_only_ones_own_series(rest_server_factory: Any) -> None:
    server = rest_server_factory("--private-repos")
    two_clients(server)
    status, alice = scrape(server, "alice")
    assert status == 200
    assert series_users(alice) == {"alice"}
    assert 'sauvegarde_server_requests_total{method="POST",repo="/alice/r",status="200",user="alice"} 2.0' in alice
    assert 'sauvegarde_server_received_bytes_total{repo="/alice/r",user="alice"} 4.0' in alice
    assert "bob" not in alice and "/bob/" not in alice
    assert "# TYPE sauvegarde_server_errors_total counter" in alice  # families stay, emptied of others' series
    status, bob = scrape(server, "bob")
    assert status == 200 and series_users(bob) == {"bob"}
    assert 'user="alice"' not in bob  # bob's own refused attempt shows, alice's requests do not
    assert scrape(server, None)[0] == 401


def test_metrics_users_alone_read_metrics(rest_server_factory: Any) -> None:
    server = rest_server_factory("--private-repos", "--metrics-user", OPS, "--metrics-user", "user1")
    two_clients(server)
    for user in (OPS, "user1"):
        status, text = scrape(server, user)
        assert status == 200 and series_users(text) == {"alice", "bob", "-"}, user
    for user in ("alice", "bob"):
        status, body = scrape(server, user)
        assert status == 403 and "--metrics-user" in body and "alice/r" not in body
    assert scrape(server, None)[0] == 401


def test_without_private_repos_every_user_reads_every_series(rest_server_factory: Any) -> None:
    server = rest_server_factory()
    two_clients(server)
    for user in ("alice", "bob"):
        status, text = scrape(server, user)
        assert status == 200 and {"alice", "bob"} <= series_users(text), user


def test_metrics_no_auth_still_opens_metrics_to_anyone(rest_server_factory: Any) -> None:
    server = rest_server_factory("--private-repos", "--metrics-no-auth")
    two_clients(server)
    status, text = scrape(server, None)
    assert status == 200 and {"alice", "bob"} <= series_users(text)


def test_metrics_user_refuses_unauthenticated_metrics(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "sauvegarde", "serve", "--path", str(tmp_path), "--listen", "127.0.0.1:1"]
    for extra, message in [
        (["--no-auth", "--metrics-user", OPS], b"--metrics-user needs authentication"),
        (["--metrics-no-auth", "--metrics-user", OPS], b"--metrics-user needs authentication"),
        (["--metrics-user", "bad/name"], b"invalid --metrics-user 'bad/name'"),
    ]:
        res = subprocess.run([*base, *extra], capture_output=True, timeout=60)
        assert res.returncode == 2 and message in res.stderr, (extra, res.stderr)
