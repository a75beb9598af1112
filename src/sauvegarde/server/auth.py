"""Accounts: an htpasswd file of bcrypt hashes, checked with HTTP Basic authentication.

Lines are ``USER:HASH`` (``$2a$``, ``$2b$`` or ``$2y$`` bcrypt, as written by ``htpasswd -B`` or ``sauvegarde
serve adduser``); other lines are ignored. The file is re-read when it changes. bcrypt is slow on purpose (about
0.2 s at cost 12), so a successful check is remembered for a few minutes under a keyed hash of the credentials
(never the password itself); unknown users cost a bcrypt check too, so timing does not reveal who exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time

import bcrypt

USER_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
CACHE_SECONDS = 300.0
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))


def hash_password(password: str, cost: int = 12) -> str:
    if len(password.encode()) > 72:
        raise ValueError("bcrypt passwords are limited to 72 bytes")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def add_user(path: str, user: str, password: str, cost: int = 12) -> bool:
    """Add or replace ``user`` in the htpasswd file (created 0600); True if it replaced an entry."""
    if not USER_PATTERN.match(user):
        raise ValueError(f"invalid user name {user!r} (letters, digits, '.', '_', '-')")
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    entry = f"{user}:{hash_password(password, cost)}"
    replaced = any(line.split(":", 1)[0] == user for line in lines)
    lines = [entry if line.split(":", 1)[0] == user else line for line in lines]
    if not replaced:
        lines.append(entry)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return replaced


class Htpasswd:
    """Checks credentials against an htpasswd file; thread-safe (checks run in worker threads)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._users: dict[str, bytes] = {}
        self._mtime: tuple[float, int] | None = None
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, float] = {}
        self._reload()

    def _reload(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._mtime:
            return
        users: dict[str, bytes] = {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                user, sep, digest = line.strip().partition(":")
                if sep and digest.startswith(("$2a$", "$2b$", "$2y$")):
                    users[user] = digest.encode()
        with self._lock:
            self._users, self._mtime = users, stamp
            self._cache.clear()

    def check(self, user: str, password: str) -> bool:
        self._reload()
        token = hmac.new(self._key, f"{user}\x00{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            expires = self._cache.get(token)
            digest = self._users.get(user)
        if expires is not None and expires > now and digest is not None:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), digest or _DUMMY_HASH) and digest is not None
        except ValueError:  # longer than bcrypt's 72 bytes, or a malformed hash
            ok = False
        if ok:
            with self._lock:
                self._cache[token] = now + CACHE_SECONDS
        return ok
