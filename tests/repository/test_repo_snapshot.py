"""Snapshot objects and their RFC 3339 nanosecond timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.errors import FormatError
from sauvegarde.repository.snapshot import Snapshot, format_time, parse_time

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)


def _snap(**kw: object) -> Snapshot:
    base: dict[str, object] = {"time": "2026-11-25T05:46:44.123456789+00:00", "tree": "ab" * 32, "paths": ["/"]}
    base["hostname"] = "h"
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_encode_decode_round_trip() -> None:
    snap = _snap(tags=["a", "b"], parent="cd" * 32, summary={"files_new": 3}, uid=1000, extra={"new_field": 1})
    back = Snapshot.decode(snap.encode(), "ef" * 32)
    assert back == snap
    assert back.id == "ef" * 32
    assert back.extra == {"new_field": 1}


def test_wire_format_is_flat_json_with_version() -> None:
    body = json.loads(_snap(extra={"x": 1}).encode())
    assert body["v"] == 1
    assert body["x"] == 1
    assert "id" not in body and "extra" not in body


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"v": 2, "time": "t", "tree": "t", "paths": [], "hostname": "h"}', b'{"v": 1}'],
)
def test_malformed_snapshot_is_a_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        Snapshot.decode(raw, "ab" * 32)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T05:46:44Z", datetime(2026, 11, 25, 5, 46, 44, tzinfo=UTC)),
        ("2026-11-25T05:46:44.5Z", datetime(2026, 11, 25, 5, 46, 44, 500000, tzinfo=UTC)),
        ("2026-11-25T05:46:44.123456789Z", datetime(2026, 11, 25, 5, 46, 44, 123456, tzinfo=UTC)),
        ("2026-11-25T05:46:44.123456789+00:00", datetime(2026, 11, 25, 5, 46, 44, 123456, tzinfo=UTC)),
        (
            "2026-11-25T06:46:44.000000002+01:00",
            datetime(2026, 11, 25, 6, 46, 44, 0, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            "2026-11-25T00:16:44.999999999-05:30",
            datetime(2026, 11, 25, 0, 16, 44, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        ),
    ],
)
def test_parse_time_keeps_the_offset(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_times_in_different_offsets_order_by_instant() -> None:
    # around a DST change: the later instant has the earlier wall-clock time
    a = _snap(time="2026-10-25T02:30:00.000000000+02:00")
    b = _snap(time="2026-10-25T02:10:00.000000000+01:00")
    assert a.datetime < b.datetime


@PROPERTY
@given(
    ns=st.integers(0, 4_000_000_000 * 10**9),
    offset_min=st.integers(-14 * 60, 14 * 60),
)
def test_format_then_parse_round_trip(ns: int, offset_min: int) -> None:
    tz = datetime.now(timezone(timedelta(minutes=offset_min)))
    text = format_time(ns, tz)
    _main, frac_and_tz = text.split(".")
    assert len(frac_and_tz[:9]) == 9 and frac_and_tz[:9].isdigit()
    parsed = parse_time(text)
    assert parsed.utcoffset() == timedelta(minutes=offset_min)
    assert parsed == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
