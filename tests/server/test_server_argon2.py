"""Argon2id htpasswd lines: independent known-good hashes, our own ``adduser --hash argon2id``, strict parsing of
malformed lines, and a real ``sauvegarde serve`` authenticating an Argon2id account."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rest_requests import call, new_repo
from rest_server import USERS
from sauvegarde.crypto.kdf import KdfParams
from sauvegarde.server import argon2_phc
from sauvegarde.server.auth import Htpasswd, HtpasswdError, add_user

# From the reference implementation's tests (phc-winner-argon2 src/test.c: "password", "somesalt", t=2, 64 MiB).
REFERENCE = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
# Made once with argon2-cffi 25.1.0 (libargon2), outside this project: PasswordHasher(time_cost=2, memory_cost=256,
# parallelism=2).hash("correct horse battery staple", salt=b"sauvegarde-salt!").
ARGON2_CFFI = "$argon2id$v=19$m=256,t=2,p=2$c2F1dmVnYXJkZS1zYWx0IQ$SgZHf3LcgBT/ufsxyFv3L1rN0zeStyCOr9vooBZi4L8"


def htpasswd_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_hashes_made_by_other_implementations_authenticate(tmp_path: Path) -> None:
    accounts = Htpasswd(str(htpasswd_file(tmp_path, f"ref:{REFERENCE}", f"cffi:{ARGON2_CFFI}")))
    assert accounts.check("ref", "password")
    assert accounts.check("cffi", "correct horse battery staple")
    for user, wrong in [("ref", "Password"), ("ref", "password "), ("cffi", "password"), ("nobody", "password")]:
        assert not accounts.check(user, wrong), (user, wrong)


def test_our_hashes_round_trip_and_parse_back(tmp_path: Path) -> None:
    line = argon2_phc.hash_password("pw", KdfParams.cheap())
    assert line.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert argon2_phc.parse(line).encode() == line
    assert argon2_phc.parse(REFERENCE).encode() == REFERENCE
    long_password = "p" * 200  # no 72-byte limit as with bcrypt
    accounts = Htpasswd(
        str(htpasswd_file(tmp_path, f"a:{line}", f"b:{argon2_phc.hash_password(long_password, KdfParams.cheap())}"))
    )
    assert accounts.check("a", "pw") and not accounts.check("a", "pW")
    assert accounts.check("b", long_password) and not accounts.check("b", long_password[:-1])


def test_adduser_writes_an_argon2id_entry(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    add_user(str(path), "carol", "carol-bcrypt", cost=4)
    cmd = [sys.executable, "-m", "sauvegarde", "serve", "adduser", "--htpasswd", str(path), "--hash", "argon2id"]
    res = subprocess.run([*cmd, "dave"], input=b"dave's password\n", capture_output=True, check=True)
    assert b"added user dave" in res.stderr
    lines = path.read_text().splitlines()
    assert lines[0].startswith("carol:$2b$04$")
    assert lines[1].startswith("dave:$argon2id$v=19$m=65536,t=3,p=4$")
    accounts = Htpasswd(str(path))
    assert accounts.check("dave", "dave's password") and not accounts.check("dave", "wrong")
    assert accounts.check("carol", "carol-bcrypt")


SALT, HASH = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
MALFORMED = {
    "argon2i": (f"$argon2i$v=19$m=65536,t=2,p=1${SALT}${HASH}", "only argon2id"),
    "argon2d": (f"$argon2d$v=19$m=65536,t=2,p=1${SALT}${HASH}", "only argon2id"),
    "old version": (f"$argon2id$v=16$m=65536,t=2,p=1${SALT}${HASH}", "only v=19"),
    "no version": (f"$argon2id$m=65536,t=2,p=1${SALT}${HASH}", "not of the form"),
    "order": (f"$argon2id$v=19$t=2,m=65536,p=1${SALT}${HASH}", "not of the form"),
    "extra parameter": (f"$argon2id$v=19$m=65536,t=2,p=1,data=YQ${SALT}${HASH}", "not of the form"),
    "leading zero": (f"$argon2id$v=19$m=065536,t=2,p=1${SALT}${HASH}", "plain decimal"),
    "memory below 8p": (f"$argon2id$v=19$m=15,t=2,p=2${SALT}${HASH}", "m=15 is out of range"),
    "memory too large": (f"$argon2id$v=19$m=99999999,t=2,p=1${SALT}${HASH}", "m=99999999 is out of range"),
    "no iterations": (f"$argon2id$v=19$m=65536,t=0,p=1${SALT}${HASH}", "t=0 is out of range"),
    "no lanes": (f"$argon2id$v=19$m=65536,t=2,p=0${SALT}${HASH}", "p=0 is out of range"),
    "padded salt": (f"$argon2id$v=19$m=65536,t=2,p=1${SALT}=${HASH}", "not of the form"),
    "short salt": (f"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA${HASH}", "salt is shorter"),
    "non-canonical salt": (f"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR${HASH}", "not canonical"),
    "impossible base64": (f"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQab${HASH}", "not valid base64"),
    "short hash": (f"$argon2id$v=19$m=65536,t=2,p=1${SALT}$YWI", "hash is shorter"),
    "trailing field": (f"$argon2id$v=19$m=65536,t=2,p=1${SALT}${HASH}$x", "not of the form"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_argon2_lines_are_refused_at_load(tmp_path: Path, name: str) -> None:
    bad, reason = MALFORMED[name]
    with pytest.raises(argon2_phc.BadHash, match=reason):
        argon2_phc.parse(bad)
    path = htpasswd_file(tmp_path, f"ok:{REFERENCE}", f"eve:{bad}")
    with pytest.raises(HtpasswdError, match=reason) as info:
        Htpasswd(str(path))
    assert f"{path}:2: user eve: bad argon2 hash" in str(info.value)
    assert SALT not in str(info.value) and HASH not in str(info.value)  # hashes stay out of messages


def test_a_malformed_line_appearing_while_serving_matches_no_password(tmp_path: Path) -> None:
    good = argon2_phc.hash_password("pw", KdfParams.cheap())
    path = htpasswd_file(tmp_path, f"a:{good}", f"b:{good}")
    accounts = Htpasswd(str(path))
    assert accounts.check("b", "pw")
    htpasswd_file(tmp_path, f"a:{good}", f"b:{good.replace('$v=19$', '$v=16$')}", "# changed")
    assert not accounts.check("b", "pw")
    assert accounts.check("a", "pw")


def test_unknown_users_cost_a_check_against_a_real_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = Htpasswd(str(htpasswd_file(tmp_path, f"ref:{REFERENCE}")))
    checked: list[argon2_phc.Argon2idHash] = []
    verify = argon2_phc.Argon2idHash.verify

    def counting(self: argon2_phc.Argon2idHash, password: str) -> bool:
        checked.append(self)
        return verify(self, password)

    monkeypatch.setattr(argon2_phc.Argon2idHash, "verify", counting)
    assert not accounts.check("nobody", "password")  # the decoy's own password, still refused
    assert [h.encode() for h in checked] == [REFERENCE]


def test_serve_authenticates_an_argon2id_account(rest_server_factory: Any, tmp_path_factory: Any) -> None:
    root = tmp_path_factory.mktemp("rest")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"alice:{argon2_phc.hash_password(USERS['alice'], KdfParams.cheap())}\n")
    add_user(str(htpasswd), "bob", USERS["bob"], cost=4)
    server = rest_server_factory(root=root)
    repo = new_repo(server, "argon")
    assert call(server, "POST", f"{repo}/keys/k", b"by alice")[0] == 200
    assert call(server, "GET", f"{repo}/keys/k")[1] == b"by alice"
    assert call(server, "GET", f"{repo}/keys/k", user="alice", password="wrong")[0] == 401
    assert call(server, "GET", f"{repo}/keys/k", user="bob")[0] == 200


def test_serve_refuses_to_start_on_a_malformed_argon2_line(tmp_path: Path) -> None:
    htpasswd = htpasswd_file(tmp_path, f"eve:$argon2id$v=19$m=65536,t=0,p=1${SALT}${HASH}")
    cmd = [sys.executable, "-m", "sauvegarde", "serve", "--path", str(tmp_path), "--htpasswd", str(htpasswd)]
    res = subprocess.run([*cmd, "--listen", "127.0.0.1:1"], capture_output=True, timeout=60)
    assert res.returncode == 2
    assert f"{htpasswd}:1: user eve: bad argon2 hash: t=0 is out of range".encode() in res.stderr
