"""Snapshot objects: the root tree of one backup and what describes it.

Stored as sealed JSON under ``snapshots/<id>``; the ID is the BLAKE3 hash of the stored bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sauvegarde.errors import FormatError


@dataclass
class Snapshot:
    time: str  # RFC 3339 with nanoseconds and offset
    tree: str  # hex ID of the root tree blob
    paths: list[str]
    hostname: str
    username: str = ""
    uid: int = 0
    gid: int = 0
    tags: list[str] = field(default_factory=list)
    parent: str | None = None
    original: str | None = None  # set by `copy`: the ID of the snapshot this one copies (stored only when set)
    program_version: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = field(default="", compare=False)  # not stored: the storage name

    def encode(self) -> bytes:
        d = asdict(self)
        d.pop("id")
        extra = d.pop("extra")
        if d["original"] is None:
            del d["original"]  # snapshots that are not copies keep their original shape
        return json.dumps({"v": 1, **d, **extra}, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes, snap_id: str) -> Snapshot:
        try:
            d = json.loads(data)
            if d.pop("v", None) != 1:
                raise ValueError("unknown snapshot version")
            known = {f for f in cls.__dataclass_fields__ if f not in ("id", "extra")}
            fields = {k: v for k, v in d.items() if k in known}
            extra = {k: v for k, v in d.items() if k not in known}
            return cls(**fields, extra=extra, id=snap_id)
        except (ValueError, TypeError) as exc:
            raise FormatError(f"snapshot {snap_id[:8]}: malformed ({exc})") from None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def files(self) -> int:
        """Files in the snapshot by its summary: new, changed and unmodified (0 where the summary has none)."""
        summary = self.summary or {}
        values = (summary.get(k, 0) for k in ("files_new", "files_changed", "files_unmodified"))
        return sum(int(v) for v in values if isinstance(v, int | float))

    @property
    def datetime(self) -> datetime:
        return parse_time(self.time)


def parse_time(text: str) -> datetime:
    """Parse our RFC 3339 timestamps (nanoseconds are truncated to microseconds)."""
    main, _, rest = text.partition(".")
    if rest:
        n = len(rest) - len(rest.lstrip("0123456789"))  # the fraction; what follows is the offset
        digits, tz = rest[:n], rest[n:]
        text = f"{main}.{digits[:6]:0<6}{tz}"
    return datetime.fromisoformat(text)


def format_time(ns: int, tz: datetime) -> str:
    """RFC 3339 time with nanoseconds for ``ns`` since the epoch, in the offset of ``tz``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz.tzinfo).isoformat(timespec="seconds")
    return f"{base[:19]}.{frac:09d}{base[19:]}"
