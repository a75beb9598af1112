"""Attacks on ``sauvegarde serve`` over loopback: authentication, path traversal, symlinks, quotas, bodies, ranges.

Each request is sent raw (``http.client`` or a socket), so the server sees exactly the bytes an attacker would send.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from certs import self_signed
from rest_requests import PACK, call, new_repo, raw_headers, tmp_files
from rest_server import USERS, RestServer
from sauvegarde.errors import StorageError, TransientStorageError, UsageError
from sauvegarde.server.auth import Htpasswd
from sauvegarde.storage.rest import RestStorage

# ---- authentication -------------------------------------------------------------------------------------


def test_unauthenticated_and_wrong_credentials_get_401(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "auth-r")
    for user, password in [(None, None), ("alice", "wrong"), ("mallory", "x"), ("alice", "")]:
        status, _body, headers = call(rest_server, "GET", f"{repo}/keys/", user=user, password=password)
        assert status == 401, (user, password)
        assert headers["WWW-Authenticate"].startswith("Basic")
    status, _, _ = call(rest_server, "GET", f"{repo}/keys/", user=None, headers={"Authorization": "Basic !!!"})
    assert status == 401
    assert call(rest_server, "POST", f"{repo}/keys/k", b"x", user=None)[0] == 401
    assert not (rest_server.data / "auth-r" / "keys" / "k").exists()
    log = rest_server.access_log.read_text()
    assert all(pw not in log for pw in USERS.values())  # credentials never logged


def test_private_repos_confine_each_user(rest_server_factory: Any) -> None:
    server = rest_server_factory("--private-repos")
    new_repo(server, "alice/r")
    new_repo(server, "bob/r", user="bob")
    assert call(server, "POST", "/alice/r/keys/k", b"secret")[0] == 200
    for method, body in [("GET", None), ("HEAD", None), ("DELETE", None), ("POST", b"x")]:
        assert call(server, method, "/alice/r/keys/k", body, user="bob")[0] == 403
    assert call(server, "GET", "/alice/r/keys/", user="bob")[0] == 403
    assert call(server, "POST", "/alice/other/?create=true", user="bob")[0] == 403
    assert call(server, "POST", "/?create=true")[0] == 403  # the root is nobody's
    assert call(server, "GET", "/bob/r/keys/", user="bob")[0] == 200
    assert (server.data / "alice" / "r" / "keys" / "k").read_bytes() == b"secret"


# ---- names and paths ------------------------------------------------------------------------------------

TRAVERSALS = [
    "/../outside/keys/x",
    "/%2e%2e/outside/keys/x",
    "/%2E%2E/%2e%2e/etc/passwd",
    "/%252e%252e/outside/keys/x",
    "/trav/keys/..",
    "/trav/keys/%2e%2e",
    "/trav/keys/%252e%252e",
    "/trav/data/..%2f..%2foutside",
    "/trav/data/%2e%2e%2f%2e%2e%2fpasswd",
    "//etc/passwd",
    "/trav//keys/x",
    "/trav/keys/%2Fetc%2Fpasswd",
    "/trav/keys/.tmp-x",
    "/trav/data/..abc",
    "/trav/keys/a%5c..%5c..%5cx",
    "/trav/keys/a%00b",
    "/trav/keys/%c3%a9",
    "/trav/../../outside/config",
    "/trav/./keys/x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(rest_server: RestServer, path: str) -> None:
    new_repo(rest_server, "trav")
    outside = rest_server.root / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "config").write_bytes(b"do not touch")
    before = sorted(p.name for p in outside.iterdir())
    for method, body in [("POST", b"evil"), ("GET", None), ("HEAD", None), ("DELETE", None)]:
        status, data, _ = call(rest_server, method, path, body)
        assert status in (400, 404, 405), (method, path, status)
        assert b"root:" not in data and b"do not touch" not in data
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (outside / "config").read_bytes() == b"do not touch"
    assert not (rest_server.root / "x").exists() and not Path("/etc/keys").exists()


def test_symlinks_planted_in_the_data_directory_are_never_followed(rest_server: RestServer, tmp_path: Path) -> None:
    repo = new_repo(rest_server, "links")
    base = rest_server.data / "links"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"outside secret")
    (base / "keys" / "evil").symlink_to(outside / "secret")
    (base / "data" / "ab").symlink_to(outside, target_is_directory=True)
    (base / "config").symlink_to(outside / "secret")
    (rest_server.data / "evilrepo").symlink_to(outside, target_is_directory=True)

    for path in (f"{repo}/keys/evil", f"{repo}/config", f"{repo}/data/{PACK}"):
        assert call(rest_server, "GET", path)[0] == 404, path
        assert call(rest_server, "HEAD", path)[0] == 404, path
        assert call(rest_server, "DELETE", path)[0] == 404, path
    assert call(rest_server, "POST", f"{repo}/keys/evil", b"overwrite")[0] == 409  # the name is taken
    assert call(rest_server, "POST", f"{repo}/config", b"overwrite")[0] == 409
    assert call(rest_server, "POST", f"{repo}/data/{PACK}", b"through a link")[0] == 404
    assert b"evil" not in call(rest_server, "GET", f"{repo}/keys/")[1]
    assert call(rest_server, "GET", f"{repo}/data/")[1] == b"[]"
    assert call(rest_server, "GET", "/evilrepo/keys/")[0] == 404
    assert call(rest_server, "POST", "/evilrepo/keys/k", b"x")[0] == 404
    assert call(rest_server, "POST", "/evilrepo/?create=true")[0] == 409
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"outside secret"


# ---- bodies ---------------------------------------------------------------------------------------------


def test_write_once_and_ranges(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "ranges")
    obj = f"{repo}/keys/k1"
    assert call(rest_server, "POST", obj, b"0123456789")[0] == 200
    assert call(rest_server, "POST", obj, b"other")[0] == 409
    assert call(rest_server, "GET", obj)[1] == b"0123456789"
    assert call(rest_server, "HEAD", obj)[2]["Content-Length"] == "10"
    status, data, headers = call(rest_server, "GET", obj, headers={"Range": "bytes=2-4"})
    assert (status, data, headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert call(rest_server, "GET", obj, headers={"Range": "bytes=-3"})[1] == b"789"
    assert call(rest_server, "GET", obj, headers={"Range": "bytes=7-"})[1] == b"789"
    for bad in ["bytes=abc", "bytes=5-2", "bytes=0-1,3-4", "lines=0-1", "bytes=-", "bytes=1-2-3", "bytes=" + "9" * 30]:
        assert call(rest_server, "GET", obj, headers={"Range": bad})[0] == 400, bad
    for unsatisfiable in ["bytes=10-", "bytes=100-200", "bytes=-0"]:
        status, _, headers = call(rest_server, "GET", obj, headers={"Range": unsatisfiable})
        assert status == 416, unsatisfiable
    assert call(rest_server, "GET", obj, headers={"Range": "bytes=100-"})[2]["Content-Range"] == "bytes */10"
    assert call(rest_server, "GET", obj)[1] == b"0123456789"


def test_quota_refuses_oversized_bodies_and_full_users(rest_server_factory: Any) -> None:
    server = rest_server_factory("--private-repos", "--max-size", "100000")
    new_repo(server, "alice/r")
    new_repo(server, "bob/r", user="bob")
    assert call(server, "POST", "/alice/r/data/" + PACK, os.urandom(150_000))[0] == 413
    assert call(server, "POST", "/alice/r/keys/a", os.urandom(60_000))[0] == 200
    assert call(server, "POST", "/alice/r/keys/b", os.urandom(60_000))[0] == 507
    assert call(server, "POST", "/bob/r/keys/a", os.urandom(60_000), user="bob")[0] == 200  # quotas are per user
    assert call(server, "DELETE", "/alice/r/keys/a")[0] == 200  # deleting frees space
    assert call(server, "POST", "/alice/r/keys/b", os.urandom(60_000))[0] == 200
    client = RestStorage(server.url("alice/r").removeprefix("rest:"))
    with pytest.raises(StorageError, match="quota exceeded"):
        client.save("keys/c", os.urandom(60_000))
    assert {i.name for i in client.list("keys/")} == {"keys/b"}
    assert tmp_files(server.data) == []


def test_truncated_body_leaves_no_object(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "trunc")
    with socket.create_connection(("127.0.0.1", rest_server.port)) as s:
        s.sendall(raw_headers(rest_server, f"{repo}/keys/t", 100_000) + b"x" * 1000)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(20)
        with contextlib.suppress(OSError):
            s.recv(1000)  # the server closes as soon as it reads our EOF, maybe before the request even started
    assert_upload_ended_clean(rest_server, f"{repo}/keys/t")
    assert call(rest_server, "HEAD", f"{repo}/keys/t")[0] == 404
    assert call(rest_server, "GET", f"{repo}/keys/")[1] == b"[]"


def test_body_longer_than_content_length_is_not_stored_beyond_it(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "longer")
    with socket.create_connection(("127.0.0.1", rest_server.port)) as s:
        s.sendall(raw_headers(rest_server, f"{repo}/keys/l", 10) + b"0123456789EXTRA-GARBAGE")
        s.settimeout(5)
        s.recv(1000)
    # the object holds exactly the announced bytes; the rest is a malformed next request
    assert call(rest_server, "GET", f"{repo}/keys/l")[1] == b"0123456789"


def test_client_killed_mid_upload_leaves_no_partial_object(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "killed")
    script = (
        "import socket, sys, time\n"
        f"s = socket.create_connection(('127.0.0.1', {rest_server.port}))\n"
        f"s.sendall({raw_headers(rest_server, f'{repo}/data/{PACK}', 8_000_000)!r} + b'x' * 3_000_000)\n"
        "print('sent', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"sent"
        deadline = time.monotonic() + 10
        while not tmp_files(rest_server.data / "killed") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tmp_files(rest_server.data / "killed"), "upload in progress"
    finally:
        child.kill()  # SIGKILL to our own child, by PID
        child.wait()
    assert_upload_ended_clean(rest_server, f"{repo}/data/{PACK}")
    assert call(rest_server, "HEAD", f"{repo}/data/{PACK}")[0] == 404
    assert call(rest_server, "GET", f"{repo}/data/")[1] == b"[]"


def test_slow_client_times_out_and_leaves_nothing(rest_server_factory: Any) -> None:
    server = rest_server_factory("--idle-timeout", "1")
    repo = new_repo(server, "slow")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(raw_headers(server, f"{repo}/keys/s", 10_000) + b"x" * 100)
        s.settimeout(10)
        start = time.monotonic()
        reply = s.recv(1000)
        assert time.monotonic() - start < 8
    assert reply.startswith(b"HTTP/1.1 408")
    assert_upload_ended_clean(server, f"{repo}/keys/s")
    assert call(server, "HEAD", f"{repo}/keys/s")[0] == 404


def test_stale_temporary_files_of_a_killed_server_are_removed_at_start(
    rest_server_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("rest")
    repo = root / "data" / "site" / "r"
    for kind in ("keys", "data/ab"):
        (repo / kind).mkdir(parents=True)
    outside = tmp_path_factory.mktemp("outside") / ".tmp-outside"
    outside.write_bytes(b"not the server's")
    two_hours_ago = time.time() - 7200
    old = [repo / "keys" / ".tmp-old", repo / "data" / "ab" / ".tmp-old", repo / ".tmp-config"]
    kept = [repo / "keys" / ".tmp-live", repo / "keys" / "k1", repo / "config"]
    for path in old + kept:
        path.write_bytes(b"x")
    for path in old + kept[1:]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    (repo / "keys" / ".tmp-link").symlink_to(outside)
    os.utime(repo / "keys" / ".tmp-link", (two_hours_ago, two_hours_ago), follow_symlinks=False)

    server = rest_server_factory(root=root)  # ready means the sweep is over: it runs before listening
    assert [p for p in old if p.exists()] == []
    assert all(p.exists() for p in kept)  # recent temporaries (a live upload's?) and objects stay
    assert (repo / "keys" / ".tmp-link").is_symlink() and outside.read_bytes() == b"not the server's"
    assert "removed 3 stale temporary upload file(s)" in server.log_tail()


def assert_upload_ended_clean(server: RestServer, path: str, timeout: float = 30) -> None:
    """Wait for the access-log record of the POST to ``path`` (written once the request is over, after its
    temporary file was removed), then check that no temporary file is left.

    Waiting for the temporary file to vanish instead would race its creation: the server closes a connection as
    soon as it reads the client's EOF, possibly before the request task has created the file at all.
    """
    deadline = time.monotonic() + timeout
    while not _logged(server, "POST", path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _logged(server, "POST", path), f"no access-log record for POST {path}"
    assert tmp_files(server.data / path.split("/")[1]) == []


def _logged(server: RestServer, method: str, path: str) -> bool:
    return any(r["method"] == method and r["path"] == path for r in server.log_records())


# ---- append-only, observability, accounts, TLS ----------------------------------------------------------


def test_append_only_refuses_deletes_except_locks_and_logs_them(rest_server_factory: Any) -> None:
    server = rest_server_factory("--append-only")
    repo = new_repo(server, "ao")
    for path in ("config", "snapshots/s1", "locks/l1", f"data/{PACK}"):
        assert call(server, "POST", f"{repo}/{path}", b"x")[0] == 200
    for path in ("config", "snapshots/s1", f"data/{PACK}"):
        status, body, _ = call(server, "DELETE", f"{repo}/{path}")
        assert status == 403 and b"append-only" in body
        assert call(server, "GET", f"{repo}/{path}")[1] == b"x"
    assert call(server, "DELETE", f"{repo}/locks/l1")[0] == 200
    assert call(server, "POST", f"{repo}/snapshots/s1", b"y")[0] == 409  # no overwriting either
    refused = [r for r in server.log_records() if r.get("event") == "append-only-delete-refused"]
    assert len(refused) == 3 and {r["user"] for r in refused} == {"alice"}


def test_metrics_and_healthz(rest_server: RestServer) -> None:
    repo = new_repo(rest_server, "metrics-r")
    call(rest_server, "POST", f"{repo}/keys/m", b"12345")
    assert call(rest_server, "GET", "/healthz", user=None)[0] == 200
    assert call(rest_server, "GET", "/metrics", user=None)[0] == 401
    status, text, _ = call(rest_server, "GET", "/metrics")
    assert status == 200
    assert b'sauvegarde_server_requests_total{method="POST",repo="/metrics-r",status="200",user="alice"}' in text
    assert b'sauvegarde_server_received_bytes_total{repo="/metrics-r",user="alice"}' in text
    assert b"sauvegarde_server_last_write_timestamp_seconds" in text
    record = next(r for r in rest_server.log_records() if r["path"] == f"{repo}/keys/m")
    assert record["status"] == 200 and record["bytes_in"] == 5 and record["user"] == "alice"


def test_adduser_writes_a_bcrypt_entry(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    cmd = [sys.executable, "-m", "sauvegarde", "serve", "adduser", "--htpasswd", str(path), "--cost", "4", "carol"]
    res = subprocess.run(cmd, input=b"carol's password\n", capture_output=True, check=True)
    assert b"added user carol" in res.stderr
    assert path.read_text().startswith("carol:$2b$04$")
    assert Htpasswd(str(path)).check("carol", "carol's password")
    assert not Htpasswd(str(path)).check("carol", "wrong")


def test_serve_refuses_to_start_without_accounts(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "sauvegarde", "serve", "--path", str(tmp_path), "--listen", "127.0.0.1:1"]
    res = subprocess.run(cmd, capture_output=True, timeout=30)
    assert res.returncode == 2 and b"no htpasswd file" in res.stderr and b"--no-auth" in res.stderr


def test_credentials_never_appear_in_locations_or_errors() -> None:
    client = RestStorage("http://alice:top-secret@127.0.0.1:1/r")
    assert "top-secret" not in client.location and client.location == "rest:http://alice@127.0.0.1:1/r"
    with pytest.raises(TransientStorageError) as info:
        client.load("config")
    assert "top-secret" not in str(info.value)
    with pytest.raises(UsageError) as bad:
        RestStorage("ftp://alice:top-secret@host/r")
    assert "top-secret" not in str(bad.value)


def test_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    server = RestServer(tmp_path / "srv", ("--tls-cert", str(cert), "--tls-key", str(key)), scheme="https")
    server.extra_env["SAUVEGARDE_REST_CACERT"] = str(cert)
    server.start()
    try:
        with pytest.raises(StorageError, match="TLS"):
            RestStorage(server.url("tls-r").removeprefix("rest:")).create()
        monkeypatch.setenv("SAUVEGARDE_REST_CACERT", str(cert))
        client = RestStorage(server.url("tls-r").removeprefix("rest:"))
        client.create()
        client.save("keys/k", b"over tls")
        assert client.load("keys/k") == b"over tls"
    finally:
        server.stop()
