"""SFTP specifics beyond the shared contract: locations, host keys, authentication, errors, permissions."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from sauvegarde.errors import StorageError, TransientStorageError, UsageError
from sauvegarde.storage.capabilities import temporary_cleanup
from sauvegarde.storage.registry import open_storage
from sauvegarde.storage.sftp import SftpStorage
from sauvegarde.storage.sftp_connect import SftpLocation, parse_location
from sshd_server import SshServer, running_server


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("host:/srv/repo", SftpLocation("host", "/srv/repo")),
        ("user@host:/srv/repo", SftpLocation("host", "/srv/repo", 22, "user")),
        ("user@host:2222:/srv/repo", SftpLocation("host", "/srv/repo", 2222, "user")),
        ("host:backups/repo", SftpLocation("host", "backups/repo")),
        ("host:~/backups", SftpLocation("host", "backups")),
        ("u@[::1]:2222:/r", SftpLocation("::1", "/r", 2222, "u")),
        ("//user@host:2222/srv/repo", SftpLocation("host", "/srv/repo", 2222, "user")),
        ("//host/srv/repo", SftpLocation("host", "/srv/repo")),
        ("//host/~/repo", SftpLocation("host", "repo")),
        ("//u%40x@[::1]:23/r", SftpLocation("::1", "/r", 23, "u@x")),
    ],
)
def test_parse_location(rest: str, expected: SftpLocation) -> None:
    assert parse_location(rest) == expected


@pytest.mark.parametrize("rest", ["host", "host:", "@host:/x", "host:99999:/x", "//host", "//host/", "//:22/x"])
def test_parse_location_rejects(rest: str) -> None:
    with pytest.raises(UsageError):
        parse_location(rest)


def test_location_string_round_trips() -> None:
    loc = parse_location("user@host:2222:/srv/repo")
    assert str(loc) == "sftp:user@host:2222:/srv/repo"
    assert parse_location(str(loc).removeprefix("sftp:")) == loc
    assert loc.known_hosts_name == "[host]:2222"


def _storage(server: SshServer, path: Path) -> SftpStorage:
    return SftpStorage(parse_location(server.url(path).removeprefix("sftp:")))


def test_objects_are_0600_and_directories_0700(sftp_env: SshServer, tmp_path: Path) -> None:
    st = _storage(sftp_env, tmp_path / "repo")
    try:
        st.create()
        st.save("data/ab/ab01", b"secret")
    finally:
        st.close()
    repo = tmp_path / "repo"
    assert stat.S_IMODE(os.stat(repo / "data/ab/ab01").st_mode) == 0o600
    for d in (repo, repo / "data", repo / "data/ab"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    assert sorted(p.name for p in (repo / "data/ab").iterdir()) == ["ab01"], "no temporary file left behind"


def test_unknown_host_key_is_refused(sftp_env: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    monkeypatch.setenv("SAUVEGARDE_SFTP_KNOWN_HOSTS", str(empty))
    st = _storage(sftp_env, tmp_path / "repo")
    with pytest.raises(StorageError) as info:
        st.exists()
    msg = str(info.value)
    assert not isinstance(info.value, TransientStorageError)
    assert msg.startswith(f"unknown host key for [127.0.0.1]:{sftp_env.port} (ssh-ed25519 SHA256:")
    assert "ssh-keyscan -p" in msg and "\n" not in msg


def test_changed_host_key_is_refused(sftp_env: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forged = tmp_path / "known_hosts"
    key = "AAAAC3NzaC1lZDI1NTE5AAAAIMv+E4ihBQMz+wHULs7ZWFiDmJ/njfQEkD7MOpz5Dvz7"  # some other ed25519 key
    forged.write_text(f"[127.0.0.1]:{sftp_env.port} ssh-ed25519 {key}\n")
    monkeypatch.setenv("SAUVEGARDE_SFTP_KNOWN_HOSTS", str(forged))
    with pytest.raises(StorageError, match=r"does not match known_hosts .*man-in-the-middle") as info:
        _storage(sftp_env, tmp_path / "repo").exists()
    assert not isinstance(info.value, TransientStorageError)


def test_wrong_client_key_fails_authentication(
    sftp_env: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAUVEGARDE_SFTP_KEY", str(sftp_env.host_key))  # a valid key, but not an authorized one
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(StorageError, match=r"^authentication to sftp server 127\.0\.0\.1:\d+ as \w+ failed") as info:
        _storage(sftp_env, tmp_path / "repo").exists()
    assert not isinstance(info.value, TransientStorageError)


def test_missing_key_file_is_reported(sftp_env: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAUVEGARDE_SFTP_KEY", str(tmp_path / "nope"))
    with pytest.raises(StorageError, match=r"^SAUVEGARDE_SFTP_KEY: no key file"):
        _storage(sftp_env, tmp_path / "repo").exists()


def test_stopped_server_is_transient_then_reconnects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_server(tmp_path / "sshd") as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        st = _storage(server, tmp_path / "repo")
        st.create()
        st.save("a", b"1")
        server.stop()
        # the open connection outlives the listener; a fresh storage cannot connect
        fresh = _storage(server, tmp_path / "repo")
        with pytest.raises(TransientStorageError, match=rf"^cannot reach sftp server 127\.0\.0\.1:{server.port}: "):
            fresh.exists()
        assert st.load("a") == b"1"
        st.close()
        server.start()  # a new port: point both at it
        st = _storage(server, tmp_path / "repo")
        assert st.load("a") == b"1"
        st.close()


def test_upload_throughput(sftp_env: SshServer, tmp_path: Path) -> None:
    """Prints the loopback save/load rate of 16 MiB objects (no assertion on timing)."""
    st = _storage(sftp_env, tmp_path / "repo")
    data = os.urandom(16 * 1024 * 1024)
    try:
        st.create()
        start = time.perf_counter()
        for i in range(4):
            st.save(f"data/{i:02d}/pack", data)
        up = 4 * len(data) / (time.perf_counter() - start) / 1e6
        start = time.perf_counter()
        for i in range(4):
            assert st.load(f"data/{i:02d}/pack") == data
        down = 4 * len(data) / (time.perf_counter() - start) / 1e6
    finally:
        st.close()
    print(f"sftp loopback: save {up:.0f} MB/s, load {down:.0f} MB/s")


def test_old_temporary_files_are_removed_through_the_wrappers(sftp_env: SshServer, tmp_path: Path) -> None:
    """What a lost connection leaves (``.tmp-`` beside the object it was saving) goes when older than asked, counted
    in a dry run first; objects and newer temporaries stay. Through open_storage: found behind the wrappers."""
    repo = tmp_path / "repo"
    st = open_storage(sftp_env.url(repo))
    try:
        st.create()
        st.save("data/ab/ab01", b"object")
        old = [repo / "data" / "ab" / ".tmp-0123-ab02", repo / ".tmp-spool-x.pack"]
        recent = repo / "data" / "ab" / ".tmp-4567-ab03"
        for path in [*old, recent]:
            path.write_bytes(b"partial")
        two_hours_ago = time.time() - 7200
        for path in old:
            os.utime(path, (two_hours_ago, two_hours_ago))
        backend = temporary_cleanup(st)
        assert isinstance(backend, SftpStorage)
        assert backend.remove_temporaries(3600, dry_run=True) == (2, 14)
        assert all(p.exists() for p in old)
        assert backend.remove_temporaries(3600) == (2, 14)
        assert not any(p.exists() for p in old) and recent.exists()
        assert st.load("data/ab/ab01") == b"object"
        assert [i.name for i in st.list("")] == ["data/ab/ab01"]
    finally:
        st.close()
