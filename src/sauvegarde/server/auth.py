"""Accounts: an htpasswd file of bcrypt or Argon2id hashes, checked with HTTP Basic authentication.

Lines are ``USER:HASH``: bcrypt (``$2a$``, ``$2b$`` or ``$2y$``, as written by ``htpasswd -B``) or Argon2id in
the PHC format (``$argon2id$v=19$m=...,t=...,p=...$SALT$HASH``, see :mod:`sauvegarde.server.argon2_phc`), both
written by ``sauvegarde serve adduser``; other lines are ignored. A malformed ``$argon2`` line is refused when the
file is first loaded (:class:`HtpasswdError`, with file and line); if one appears while serving, that user matches
no password. The file is re-read when it changes. Both hashes are slow on purpose (about 0.2 s), so a successful
check is remembered for a few minutes under a keyed hash of the credentials (never the password itself); an unknown
user costs a check against another user's hash (same algorithm and cost), so timing does not reveal who exists.
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

from sauvegarde.server import argon2_phc

USER_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
CACHE_SECONDS = 300.0
SCHEMES = ("bcrypt", "argon2id")
_BCRYPT = ("$2a$", "$2b$", "$2y$")
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))


class HtpasswdError(ValueError):
    """The htpasswd file has a malformed hash (message: file, line, user and why; never the hash)."""


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


def add_user(path: str, user: str, password: str, cost: int = 12, scheme: str = "bcrypt") -> bool:
    """Add or replace ``user`` in the htpasswd file (created 0600) with a ``scheme`` hash (bcrypt at ``cost``, or
    argon2id at RFC 9106's recommended 64 MiB, t=3, p=4); True if it replaced an entry."""
    if not USER_PATTERN.match(user):
        raise ValueError(f"invalid user name {user!r} (letters, digits, '.', '_', '-')")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown hash {scheme!r} (one of {', '.join(SCHEMES)})")
    digest = hash_password(password, cost) if scheme == "bcrypt" else argon2_phc.hash_password(password)
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    entry = f"{user}:{digest}"
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


Entry = bytes | argon2_phc.Argon2idHash  # a bcrypt hash, or a parsed Argon2id one


class Htpasswd:
    """Checks credentials against an htpasswd file; thread-safe (checks run in worker threads)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._users: dict[str, Entry | None] = {}
        self._decoy: Entry = _DUMMY_HASH
        self._mtime: tuple[float, int] | None = None
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, float] = {}
        self._reload(strict=True)

    def _reload(self, strict: bool = False) -> None:
        st = os.stat(self.path)
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._mtime:
            return
        users: dict[str, Entry | None] = {}
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                user, sep, digest = line.strip().partition(":")
                if not sep:
                    continue
                if digest.startswith(_BCRYPT):
                    users[user] = digest.encode()
                elif digest.startswith(argon2_phc.PREFIX):
                    try:
                        users[user] = argon2_phc.parse(digest)
                    except argon2_phc.BadHash as exc:
                        if strict:
                            raise HtpasswdError(f"{self.path}:{lineno}: user {user}: bad argon2 hash: {exc}") from None
                        users[user] = None  # matches no password
        decoy = next((e for e in users.values() if e is not None), _DUMMY_HASH)
        with self._lock:
            self._users, self._decoy, self._mtime = users, decoy, stamp
            self._cache.clear()

    def check(self, user: str, password: str) -> bool:
        self._reload()
        token = hmac.new(self._key, f"{user}\x00{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            expires = self._cache.get(token)
            entry = self._users.get(user)
            decoy = self._decoy
        if expires is not None and expires > now and entry is not None:
            return True
        ok = _verify(entry if entry is not None else decoy, password) and entry is not None
        if ok:
            with self._lock:
                self._cache[token] = now + CACHE_SECONDS
        return ok


def _verify(entry: Entry, password: str) -> bool:
    if isinstance(entry, argon2_phc.Argon2idHash):
        return entry.verify(password)
    try:
        return bcrypt.checkpw(password.encode(), entry)
    except ValueError:  # longer than bcrypt's 72 bytes, or a malformed hash
        return False
