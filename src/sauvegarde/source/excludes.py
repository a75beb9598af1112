"""Exclude patterns, restic style.

A pattern without ``/`` matches any path component (``*.tmp``, ``.cache``); a pattern with ``/`` matches the whole
absolute path or one of its prefixes (``/home/*/Downloads``); ``**`` matches across directories. A pattern starting
with ``!`` re-includes what an earlier pattern excluded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache

from sauvegarde.errors import UsageError


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole directories: "/a/**/b" must not match "/a/xb"
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise UsageError(f"invalid pattern {pattern!r}: unclosed [")
            body = pattern[i + 1 : j].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:  # e.g. "[]" or "[z-a]"
        raise UsageError(f"invalid pattern {pattern!r}: {exc}") from None


class Excluder:
    """Decides whether an absolute path is excluded."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.rules: list[tuple[bool, bool, re.Pattern[str]]] = []
        for raw in patterns:
            p = raw.strip()
            if not p or p.startswith("#"):
                continue
            negate = p.startswith("!")
            if negate:
                p = p[1:]
            anchored = "/" in p.rstrip("/")
            p = p.rstrip("/") or "/"
            self.rules.append((negate, anchored, _compile(p)))

    @classmethod
    def from_files(cls, patterns: Iterable[str], files: Iterable[str]) -> Excluder:
        lines = list(patterns)
        for f in files:
            try:
                with open(f, encoding="utf-8", errors="surrogateescape") as fh:
                    lines.extend(fh.read().splitlines())
            except OSError as exc:
                raise UsageError(f"cannot read exclude file {f}: {exc.strerror}") from None
        return cls(lines)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def excluded(self, path: bytes | str) -> bool:
        text = os.fsdecode(path)
        result = False
        for negate, anchored, rx in self.rules:
            if result == (not negate):
                continue  # this rule cannot change the outcome
            if _matches(rx, anchored, text):
                result = not negate
        return result


def _matches(rx: re.Pattern[str], anchored: bool, path: str) -> bool:
    if not anchored:
        return any(rx.match(part) for part in path.split("/") if part)
    if rx.match(path):
        return True
    # a pattern matching a parent directory excludes everything below it
    idx = path.rfind("/")
    while idx > 0:
        path = path[:idx]
        if rx.match(path):
            return True
        idx = path.rfind("/")
    return False
