"""``HOST:PORT`` listen addresses of the servers (``serve``, ``web``, ``metrics``, the daemon's metrics)."""

from __future__ import annotations


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; an empty host is 127.0.0.1) as a host and a port; ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9464 (got {text!r})")
    return host.removeprefix("[").removesuffix("]") or "127.0.0.1", int(port)
