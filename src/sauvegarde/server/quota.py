"""``--max-size``: a quota of stored bytes per user (``--private-repos``) or per repository.

The usage of a scope is measured once by walking its directory, then kept up to date as objects are written and
deleted. Bytes are reserved while they arrive, so concurrent uploads cannot overshoot together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class QuotaExceeded(Exception):
    """``too_large`` when the body alone exceeds the quota (413), else the scope is full (507)."""

    def __init__(self, too_large: bool) -> None:
        super().__init__("request body larger than the quota" if too_large else "quota exceeded")
        self.too_large = too_large


class Quota:
    def __init__(self, max_bytes: int | None, measure: Callable[[tuple[str, ...]], int]) -> None:
        self.max_bytes = max_bytes
        self._measure = measure
        self._lock = threading.Lock()
        self._used: dict[tuple[str, ...], int] = {}

    def used(self, scope: tuple[str, ...]) -> int:
        with self._lock:
            if scope in self._used:
                return self._used[scope]
        measured = self._measure(scope)  # outside the lock: a walk of the directory
        with self._lock:
            return self._used.setdefault(scope, measured)

    def reserve(self, scope: tuple[str, ...], nbytes: int, body_so_far: int) -> None:
        """Count ``nbytes`` more against ``scope``; ``body_so_far`` is the request's total including them."""
        if self.max_bytes is None:
            return
        if body_so_far > self.max_bytes:
            raise QuotaExceeded(too_large=True)
        self.used(scope)
        with self._lock:
            if self._used[scope] + nbytes > self.max_bytes:
                raise QuotaExceeded(too_large=False)
            self._used[scope] += nbytes

    def release(self, scope: tuple[str, ...], nbytes: int) -> None:
        if self.max_bytes is None or nbytes == 0:
            return
        with self._lock:
            if scope in self._used:
                self._used[scope] = max(0, self._used[scope] - nbytes)
