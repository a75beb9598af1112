"""The local time zone as a real zone (with its DST rules), not just today's UTC offset."""

from __future__ import annotations

import os
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_LOCALTIME = "/etc/localtime"


def local_timezone() -> tzinfo:
    """``$TZ`` if it names a zone, else ``/etc/localtime``, else the current fixed UTC offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open(_LOCALTIME, "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        pass
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone
