"""The real ``sauvegarde web`` process: HTTPS with its own certificate, a login on every address, and the refusals
of the command line."""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from web_site import PASSWORD, USER, Site

from certs import self_signed
from service_process import free_port, stop_process


def fetch(
    url: str, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None, deadline: float = 60
) -> tuple[int, Message, bytes]:
    """(status, headers, body) of a GET, retried while the server is not up yet."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


@pytest.fixture
def web() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The ``sauvegarde web`` processes a test starts, stopped at its end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        stop_process(proc, grace=15)


def test_https_with_its_own_certificate(site: Site, tmp_path: Path, web: list[subprocess.Popen[bytes]]) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    args = ["--listen", f"127.0.0.1:{port}", "--htpasswd", site.htpasswd, "--tls-cert", cert, "--tls-key", key]
    web.append(site.cli.popen("web", "--plan", site.plan, *args, stdin=subprocess.DEVNULL))
    trusted = ssl.create_default_context(cafile=str(cert))
    status, headers, _ = fetch(f"https://127.0.0.1:{port}/login", trusted)
    assert status == 200
    assert "secure" in headers["set-cookie"].lower() and "httponly" in headers["set-cookie"].lower()
    assert headers["strict-transport-security"] == "max-age=31536000"
    status, _, body = fetch(f"https://127.0.0.1:{port}/findings", trusted, auth=(USER, PASSWORD))
    assert status == 200 and b"Findings" in body
    status, _, _ = fetch(f"https://127.0.0.1:{port}/metrics", trusted)
    assert status == 401
    with pytest.raises(OSError):  # plain HTTP is not spoken (the connection is dropped)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10)


def test_every_address_with_a_login(site: Site, web: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    listen = f"0.0.0.0:{port}"
    web.append(site.cli.popen("web", "--plan", site.plan, "--listen", listen, "--htpasswd", site.htpasswd))
    status, _, body = fetch(f"http://127.0.0.1:{port}/")
    assert status == 200 and b"Log in" in body  # the login page, after the redirect
    status, _, _ = fetch(f"http://127.0.0.1:{port}/", auth=(USER, PASSWORD))
    assert status == 200


def test_command_line_refusals(site: Site, tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    res = site.cli.run("web", "--plan", site.plan, "--tls-cert", cert, check_exit=2)
    assert b"--tls-cert and --tls-key go together" in res.stderr
    res = site.cli.run("web", "--plan", site.plan, "--listen", "[::]:8099", check_exit=2)
    assert b"needs a login" in res.stderr
    res = site.cli.run("web", "--plan", site.plan, "--listen", "nonsense", check_exit=2)
    assert b"HOST:PORT" in res.stderr or b"listen" in res.stderr
