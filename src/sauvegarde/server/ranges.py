"""HTTP ``Range`` headers: the single byte ranges restic and our client send, anything else refused."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


class RangeError(Exception):
    """``status`` is 400 for a malformed header, 416 for a range the object cannot satisfy."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive, clipped to ``size``) of a ``Range`` header, or None for the whole object."""
    if header is None:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        raise RangeError(400, "malformed Range header (expected bytes=START-[END] or bytes=-SUFFIX)")
    if not m[1]:
        suffix = int(m[2])
        if suffix == 0:
            raise RangeError(416, "empty suffix range")
        return max(0, size - suffix), size
    start = int(m[1])
    if m[2] and int(m[2]) < start:
        raise RangeError(400, "malformed Range header (end before start)")
    if start >= size:
        raise RangeError(416, f"range starts at or past the end of the object ({size} bytes)")
    end = min(size, int(m[2]) + 1) if m[2] else size
    return start, end
