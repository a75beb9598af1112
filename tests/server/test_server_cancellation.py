"""A request cancelled while a worker thread creates or commits its upload (uvicorn cancels the requests still
running when a shutdown outlasts ``timeout_graceful_shutdown``) leaves no temporary file and no half-done object.

The real application runs in process (no socket is needed to cancel a task); threading events hold the worker
thread at the exact point, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sauvegarde.server import app as server_app
from sauvegarde.server.app import RestServer, ServerOptions
from sauvegarde.server.files import ServedRoot, Upload

BODY = b"0123456789"


class Gate:
    """The worker thread reports ``reached`` and waits for ``release``."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        assert self.release.wait(30), "the test never released the worker thread"


def post_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(BODY)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def cancel_at_gate(server: RestServer, gate: Gate, path: str) -> None:
    """POST ``BODY`` to ``path``, cancel the request once the worker thread is held at ``gate``, then let it go."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    request = asyncio.create_task(server.app()(post_scope(path), receive, send))
    await asyncio.to_thread(gate.reached.wait, 30)
    assert gate.reached.is_set()
    request.cancel()
    await asyncio.sleep(0)  # the cancellation is delivered to the request before the thread goes on
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await request


def tmp_files(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


def new_server(root: Path, **options: Any) -> RestServer:
    server = RestServer(ServerOptions(root=str(root), no_auth=True, **options))
    server.served.create_repo(("r",))
    return server


def test_cancelled_while_creating_the_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate()

    class HeldUpload(Upload):
        def __init__(self, served: ServedRoot, repo: Sequence[str], kind: str, name: str) -> None:
            super().__init__(served, repo, kind, name)  # the temporary file exists now
            gate.hold()

    monkeypatch.setattr(server_app, "Upload", HeldUpload)
    server = new_server(tmp_path)
    asyncio.run(cancel_at_gate(server, gate, "/r/keys/k"))
    assert tmp_files(tmp_path) == []
    assert not (tmp_path / "r" / "keys" / "k").exists()


def test_cancelled_while_committing_the_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate()

    class HeldUpload(Upload):
        def commit(self) -> None:
            gate.hold()
            super().commit()  # with its descriptors still open: the request's cleanup waited

    monkeypatch.setattr(server_app, "Upload", HeldUpload)
    server = new_server(tmp_path, max_size=1000)
    asyncio.run(cancel_at_gate(server, gate, "/r/keys/k"))
    assert tmp_files(tmp_path) == []
    assert (tmp_path / "r" / "keys" / "k").read_bytes() == BODY  # committed: the thread ran to its end
    assert server.quota.used(("r",)) == len(BODY)  # and the quota still counts it
