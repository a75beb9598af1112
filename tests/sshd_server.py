"""A private OpenSSH server (Debian ``openssh-server``) for SFTP tests, per ../shared/ENVIRONMENT.md.

Each server gets a fresh directory with its own ed25519 host key, a generated client key as the only authorized
key, and a config listening on 127.0.0.1 at a free port (``StrictModes no`` because the keys live under a temp
dir, ``UsePAM no``). It runs in the foreground (``sshd -D -e``) and is stopped by its own PID. Clients find the
host key through a generated known_hosts file (``SAUVEGARDE_SFTP_KNOWN_HOSTS``) and the client key through
``SAUVEGARDE_SFTP_KEY``: :meth:`SshServer.env` gives both.

Fixtures: ``sshd_server`` (one per test session and worker) and ``sftp_env`` (that server's variables set in
``os.environ`` for one test).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service_process import free_port, running, stop_process

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = "/run/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sauvegarde-test", "-f", str(path)], check=True
    )


def skip_without_sshd() -> None:
    """Skip when sshd is not installed here (scripts/test installs it; CI always has it)."""
    if not os.access(SSHD, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{SSHD} is missing in CI: scripts/test should have installed openssh-server")
        pytest.skip(f"{SSHD} not installed (apt-get install openssh-server, or run scripts/test)")


@dataclass
class SshServer:
    """One private sshd; ``start`` and ``stop`` it, address it with :meth:`url` and :meth:`env`."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def url(self, path: str | os.PathLike[str]) -> str:
        """The repository location of absolute ``path`` on this server."""
        return f"sftp:{self.user}@{self.host}:{self.port}:{os.fspath(path)}"

    def env(self) -> dict[str, str]:
        return {"SAUVEGARDE_SFTP_KNOWN_HOSTS": str(self.known_hosts), "SAUVEGARDE_SFTP_KEY": str(self.client_key)}

    def prepare(self) -> None:
        """Keys, authorized_keys, known_hosts and sshd_config in ``root``; a fresh port."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            _keygen(self.host_key)
            _keygen(self.client_key)
        (self.root / "authorized_keys").write_bytes(self.client_key.with_suffix(".pub").read_bytes())
        self.port = free_port()
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (self.root / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "MaxSessions 64",
                    "MaxStartups 64:30:128",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start sshd (on a new free port each try) and wait until it accepts connections."""
        skip_without_sshd()
        if not os.path.isdir(PRIVSEP_DIR):
            res = subprocess.run(["install", "-d", "-m0755", PRIVSEP_DIR], capture_output=True)
            if res.returncode != 0:
                pytest.skip(f"sshd needs {PRIVSEP_DIR}, which cannot be created here: {res.stderr.decode().strip()}")
        for _ in range(3):  # another process may grab the port between the probe and sshd's bind
            self.prepare()
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._wait_ready(timeout):
                return
            self.stop()
        raise RuntimeError(f"sshd did not start on {self.host}:{self.port}: {self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return True
            time.sleep(0.05)
        return False

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])
        return ""

    def stop(self) -> None:
        """SIGTERM to our sshd's PID, a wait, then SIGKILL; connections already open end with their clients."""
        proc, self.proc = self.proc, None
        stop_process(proc)


def running_server(root: Path) -> contextlib.AbstractContextManager[SshServer]:
    return running(SshServer(root))


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A private sshd shared by the tests of this session (and xdist worker)."""
    skip_without_sshd()
    with running_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sftp_env(sshd_server: SshServer, monkeypatch: pytest.MonkeyPatch) -> SshServer:
    """The session's sshd, with its known_hosts and client key set in the environment for this test."""
    for name, value in sshd_server.env().items():
        monkeypatch.setenv(name, value)
    return sshd_server
