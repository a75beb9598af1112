"""A private ``sauvegarde serve`` (restic's REST protocol) for tests, started on 127.0.0.1 and stopped by its PID.

Each server gets a fresh data directory, an htpasswd file with :data:`USERS` (bcrypt cost 4, so checks are cheap)
and a free port; ready means ``/healthz`` answers. The JSON access log goes to ``access.log`` beside the data.

Fixtures: ``rest_server`` (one per session and worker, normal mode with authentication) and ``rest_server_factory``
(servers with other flags, stopped at the end of the test).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sauvegarde.server.auth import add_user
from service_process import free_port, running, stop_process

USERS = {"alice": "alice-secret", "bob": "bob-secret", **{f"user{i}": f"pw-{i}" for i in range(8)}}


@dataclass
class RestServer:
    """One ``sauvegarde serve`` process over ``root/data``."""

    root: Path
    flags: tuple[str, ...] = ()
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    scheme: str = "http"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def htpasswd(self) -> Path:
        return self.root / "htpasswd"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, repo: str, user: str | None = "alice", password: str | None = None) -> str:
        """``rest:`` location of ``repo`` as ``user`` (None: no credentials)."""
        if user is None:
            return f"rest:{self.base}/{repo}"
        pw = USERS[user] if password is None else password
        return f"rest:{self.scheme}://{user}:{pw}@127.0.0.1:{self.port}/{repo}"

    def restic_url(self, repo: str, user: str = "alice") -> str:
        return f"rest:{self.scheme}://{user}:{USERS[user]}@127.0.0.1:{self.port}/{repo}"

    def log_records(self) -> list[dict[str, Any]]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line.startswith("{")]

    def start(self, timeout: float = 20.0) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        if not self.htpasswd.exists():
            for user, password in USERS.items():
                add_user(str(self.htpasswd), user, password, cost=4)
        for _ in range(3):  # another process may take the port between the probe and the bind
            self.port = free_port()
            with (self.root / "serve.log").open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "sauvegarde",
                        "serve",
                        "--path",
                        str(self.data),
                        "--listen",
                        f"127.0.0.1:{self.port}",
                        "--htpasswd",
                        str(self.htpasswd),
                        "--access-log",
                        str(self.access_log),
                        *self.flags,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            if self._wait_ready(timeout):
                return
            self.stop()
        raise RuntimeError(f"sauvegarde serve did not start: {self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                ctx = None
                if self.scheme == "https":
                    import ssl

                    ctx = ssl.create_default_context(cafile=self.extra_env.get("SAUVEGARDE_REST_CACERT"))
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1, context=ctx) as resp:
                    if resp.status == 200:
                        return True
            time.sleep(0.05)
        return False

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "serve.log").read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        """SIGTERM to our server's PID, a bounded wait, then SIGKILL."""
        proc, self.proc = self.proc, None
        stop_process(proc)


def running_server(root: Path, flags: tuple[str, ...] = ()) -> contextlib.AbstractContextManager[RestServer]:
    return running(RestServer(root, flags))


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    """A server shared by the tests of this session (and xdist worker): authentication on, normal mode."""
    with running_server(tmp_path_factory.mktemp("rest")) as server:
        yield server


@pytest.fixture
def rest_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RestServer]]:
    """``start(*flags)``: a fresh server with these ``serve`` flags, stopped after the test."""
    servers: list[RestServer] = []

    def start(*flags: str, root: Path | None = None) -> RestServer:
        server = RestServer(root or tmp_path_factory.mktemp("rest"), tuple(flags))
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
