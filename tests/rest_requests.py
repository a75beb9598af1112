"""Raw requests to a test ``sauvegarde serve`` (:mod:`rest_server`): one call with Basic credentials by user name,
repository creation, hand-made upload headers, and the server's leftover temporary files."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path
from typing import Any

from rest_server import USERS, RestServer

Reply = tuple[int, bytes, Any]
PACK = "ab" + "0" * 62


def call(
    server: RestServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    user: str | None = "alice",
    password: str | None = None,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    h = dict(headers or {})
    if user is not None:
        token = base64.b64encode(f"{user}:{USERS[user] if password is None else password}".encode()).decode()
        h["Authorization"] = f"Basic {token}"
    try:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


def new_repo(server: RestServer, name: str, user: str = "alice") -> str:
    assert call(server, "POST", f"/{name}/?create=true", user=user)[0] == 200
    return f"/{name}"


def tmp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".tmp-*")]


def raw_headers(server: RestServer, path: str, length: int, user: str = "alice") -> bytes:
    token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
