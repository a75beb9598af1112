"""Who may see the dashboard, and proof that a form came from it.

Accounts are the server's htpasswd file of bcrypt or Argon2id hashes (:class:`sauvegarde.server.auth.Htpasswd`). A
login puts the user name in the session, a cookie signed with a secret drawn at each start (so a restart logs
everyone out). Every session carries a random CSRF token; each form sends it back in a hidden field and each POST
compares it in constant time. Wrong passwords slow further guesses for that user name (:class:`Throttle`). Listening
beyond loopback without accounts is refused by the command.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.requests import Request

from sauvegarde.server.auth import USER_PATTERN, Htpasswd, parse_basic

MAX_FORM_BYTES = 16 * 1024


class FormTooLarge(Exception):
    """A POST body beyond :data:`MAX_FORM_BYTES` (forms here are a few fields)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: str | None) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (first value of each field)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise FormTooLarge()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=32)
    return {k: v[0] for k, v in fields.items()}


class Throttle:
    """Slows password guessing: after ``free`` wrong passwords for a user name, that name is refused for ``base``
    seconds, doubling with each further failure up to ``cap``; a right password clears it. Counted per name (not
    per address: behind a proxy every visitor has the proxy's), for at most ``keep`` names."""

    def __init__(self, free: int = 5, base: float = 30.0, cap: float = 900.0, keep: int = 10_000) -> None:
        self.free, self.base, self.cap, self.keep = free, base, cap, keep
        self._failures: dict[str, tuple[int, float]] = {}  # name -> (failures, refused until: monotonic time)
        self._lock = threading.Lock()

    def wait(self, user: str) -> float:
        """Seconds before ``user`` may try again (0: now)."""
        with self._lock:
            _, until = self._failures.get(user.lower(), (0, 0.0))
        return max(0.0, until - time.monotonic())

    def failed(self, user: str) -> None:
        with self._lock:
            count, _ = self._failures.pop(user.lower(), (0, 0.0))
            count += 1
            delay = 0.0 if count < self.free else min(self.cap, self.base * 2 ** (count - self.free))
            self._failures[user.lower()] = (count, time.monotonic() + delay)
            while len(self._failures) > self.keep:  # the oldest entry first (dicts keep insertion order)
                del self._failures[next(iter(self._failures))]

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(user.lower(), None)


class Accounts:
    """Login against an htpasswd file; ``None`` path means no login (loopback only)."""

    def __init__(self, htpasswd: str | None) -> None:
        self.htpasswd = Htpasswd(htpasswd) if htpasswd else None
        self.throttle = Throttle()

    @property
    def required(self) -> bool:
        return self.htpasswd is not None

    async def check(self, user: str, password: str) -> bool:
        """Whether the password is right; a name being throttled fails without a check (see :class:`Throttle`)."""
        if self.htpasswd is None or not USER_PATTERN.match(user) or self.throttle.wait(user) > 0:
            return False
        ok = bool(await anyio.to_thread.run_sync(self.htpasswd.check, user, password))
        if ok:
            self.throttle.succeeded(user)
        else:
            self.throttle.failed(user)
        return ok

    async def user(self, request: Request) -> str | None:
        """The signed-in user (or ``"-"`` when no login is required); HTTP Basic is accepted too (scrapers)."""
        if self.htpasswd is None:
            return "-"
        name = request.session.get("user")
        if isinstance(name, str):
            return name
        creds = parse_basic(request.headers.get("authorization"))
        if creds is not None and await self.check(*creds):
            return creds[0]
        return None

    @staticmethod
    def log_in(request: Request, user: str) -> None:
        """A fresh session for ``user`` (new CSRF token: nothing from before the login is trusted)."""
        request.session.clear()
        request.session["user"] = user
        request.session["csrf"] = secrets.token_urlsafe(32)

    @staticmethod
    def log_out(request: Request) -> None:
        request.session.clear()
