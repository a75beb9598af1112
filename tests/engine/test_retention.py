"""Retention policy (``forget --keep-*``): restic semantics, calendar edge cases, and properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sauvegarde.engine.retention import (
    Decision,
    Duration,
    GroupKey,
    RetentionPolicy,
    apply_policy,
    group_snapshots,
    parse_group_by,
    period_key,
)
from sauvegarde.errors import UsageError
from sauvegarde.repository import Snapshot

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def snap(
    when: datetime | str,
    n: int = 0,
    tags: tuple[str, ...] = (),
    host: str = "h",
    paths: tuple[str, ...] = ("/data",),
) -> Snapshot:
    t = datetime.fromisoformat(when) if isinstance(when, str) else when
    assert t.tzinfo is not None
    return Snapshot(
        time=t.isoformat(), tree="00" * 32, paths=list(paths), hostname=host, tags=list(tags), id=f"{n:064x}"
    )


def snaps(*times: str) -> list[Snapshot]:
    return [snap(t, i) for i, t in enumerate(times)]


def kept(decisions: list[Decision]) -> list[str]:
    return [d.snapshot.time for d in decisions if d.keep]


def reasons(decisions: list[Decision]) -> dict[str, tuple[str, ...]]:
    return {d.snapshot.time: d.reasons for d in decisions if d.keep}


# ---- durations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1y2m3d4h", Duration(1, 2, 3, 4)),
        ("30d", Duration(days=30)),
        ("2h", Duration(hours=2)),
        ("1y", Duration(years=1)),
        ("6m", Duration(months=6)),
        ("1d12h", Duration(days=1, hours=12)),
        ("0d", Duration()),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["", "5", "1x", "d", "1d 2h", "-1d", "1.5d", "y1"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        Duration.parse(text)


def test_duration_str_round_trips() -> None:
    for text in ["1y2m3d4h", "30d", "2h", "1y6m"]:
        assert str(Duration.parse(text)) == text


def test_duration_before_clamps_to_the_end_of_the_month() -> None:
    t = datetime(2024, 3, 31, 12, tzinfo=PARIS)
    assert Duration(months=1).before(t, PARIS) == datetime(2024, 2, 29, 12, tzinfo=PARIS)
    assert Duration(months=13).before(t, PARIS) == datetime(2023, 2, 28, 12, tzinfo=PARIS)
    assert Duration(years=1).before(datetime(2024, 2, 29, 8, tzinfo=UTC), UTC) == datetime(2023, 2, 28, 8, tzinfo=UTC)


def test_duration_before_uses_the_wall_clock_for_days_and_real_time_for_hours() -> None:
    after_spring_forward = datetime(2024, 3, 31, 12, tzinfo=PARIS)  # CEST, the day after CET
    one_day = Duration(days=1).before(after_spring_forward, PARIS)
    assert one_day == datetime(2024, 3, 30, 12, tzinfo=PARIS)
    assert after_spring_forward - one_day == timedelta(hours=23)
    assert after_spring_forward - Duration(hours=24).before(after_spring_forward, PARIS) == timedelta(hours=24)


def test_duration_before_year_one_means_everything() -> None:
    assert Duration(years=5000).before(datetime(2024, 1, 1, tzinfo=UTC), UTC) == datetime.min.replace(tzinfo=UTC)
    assert Duration(days=10**6).before(datetime(2024, 1, 1, tzinfo=UTC), UTC) == datetime.min.replace(tzinfo=UTC)


# ---- the policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        RetentionPolicy(),
        RetentionPolicy(keep_last=0, keep_daily=0),
        RetentionPolicy(keep_within=Duration()),
        RetentionPolicy(keep_within_daily=Duration()),
        RetentionPolicy(keep_tags=("", ",")),
    ],
)
def test_empty_policy_is_refused(policy: RetentionPolicy) -> None:
    assert policy.is_empty
    with pytest.raises(UsageError, match="empty"):
        apply_policy(snaps("2024-01-01T00:00:00+00:00"), policy, UTC)


def test_negative_counts_other_than_minus_one_are_refused() -> None:
    with pytest.raises(UsageError, match="keep-daily"):
        apply_policy([], RetentionPolicy(keep_daily=-2), UTC)


def test_no_snapshots_no_decisions() -> None:
    assert apply_policy([], RetentionPolicy(keep_last=3), UTC) == []


def test_keep_last_keeps_the_newest_and_orders_newest_first() -> None:
    s = snaps("2024-01-01T10:00:00+00:00", "2024-01-03T10:00:00+00:00", "2024-01-02T10:00:00+00:00")
    decisions = apply_policy(s, RetentionPolicy(keep_last=2), UTC)
    assert [d.snapshot.id for d in decisions] == [s[1].id, s[2].id, s[0].id]
    assert [d.keep for d in decisions] == [True, True, False]
    assert decisions[0].reasons == ("last snapshot",)
    assert decisions[2].reasons == ()


def test_keep_last_unlimited_keeps_everything() -> None:
    s = snaps(*(f"2024-01-0{d}T10:00:00+00:00" for d in range(1, 8)))
    assert all(d.keep for d in apply_policy(s, RetentionPolicy(keep_last=-1), UTC))


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    s = snaps(
        "2024-01-01T08:00:00+00:00",
        "2024-01-01T20:00:00+00:00",
        "2024-01-02T08:00:00+00:00",
        "2024-01-02T20:00:00+00:00",
        "2024-01-03T08:00:00+00:00",
        "2024-01-03T20:00:00+00:00",
    )
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=2), UTC)) == [
        "2024-01-03T20:00:00+00:00",
        "2024-01-02T20:00:00+00:00",
    ]


def test_a_rule_with_count_left_also_keeps_the_oldest_snapshot() -> None:
    # restic: keeping the oldest while counts remain maximises the history kept
    s = snaps("2024-01-01T08:00:00+00:00", "2024-01-01T20:00:00+00:00", "2024-01-02T20:00:00+00:00")
    r = reasons(apply_policy(s, RetentionPolicy(keep_daily=5), UTC))
    assert r == {
        "2024-01-02T20:00:00+00:00": ("daily snapshot",),
        "2024-01-01T20:00:00+00:00": ("daily snapshot",),
        "2024-01-01T08:00:00+00:00": ("daily snapshot",),
    }


def test_every_rule_that_keeps_a_snapshot_is_listed() -> None:
    s = [
        snap("2024-01-01T10:00:00+00:00", 0),
        snap("2024-01-02T10:00:00+00:00", 1, tags=("prod",)),
        snap("2024-01-02T11:00:00+00:00", 2),
    ]
    policy = RetentionPolicy(keep_last=1, keep_daily=1, keep_monthly=1, keep_tags=("prod",))
    d = apply_policy(s, policy, UTC)
    assert d[0].reasons == ("last snapshot", "daily snapshot", "monthly snapshot")
    assert d[1].reasons == ("tag prod",)
    assert not d[2].keep


def test_keep_tag_lists_need_all_their_tags() -> None:
    s = [
        snap("2024-01-01T10:00:00+00:00", 0, tags=("a",)),
        snap("2024-01-02T10:00:00+00:00", 1, tags=("a", "b")),
        snap("2024-01-03T10:00:00+00:00", 2, tags=("c",)),
        snap("2024-01-04T10:00:00+00:00", 3),
    ]
    d = apply_policy(s, RetentionPolicy(keep_tags=("a,b", "c")), UTC)
    assert [x.reasons for x in d] == [(), ("tag c",), ("tag a,b",), ()]


def test_keep_within_is_relative_to_the_newest_snapshot_by_default() -> None:
    s = snaps(
        "2020-01-01T00:00:00+00:00",
        "2020-01-20T00:00:00+00:00",
        "2020-01-21T00:00:00+00:00",  # exactly 10 days before the newest: not within (strictly after, as restic)
        "2020-01-21T00:00:01+00:00",
        "2020-01-31T00:00:00+00:00",
    )
    d = apply_policy(s, RetentionPolicy(keep_within=Duration(days=10)), UTC)
    assert kept(d) == ["2020-01-31T00:00:00+00:00", "2020-01-21T00:00:01+00:00"]
    assert d[0].reasons == ("within 10d",)


def test_keep_within_with_an_explicit_now() -> None:
    s = snaps("2020-01-01T00:00:00+00:00", "2020-01-31T00:00:00+00:00")
    now = datetime(2020, 2, 5, tzinfo=UTC)
    assert kept(apply_policy(s, RetentionPolicy(keep_within=Duration(days=10)), UTC, now=now)) == [
        "2020-01-31T00:00:00+00:00"
    ]
    assert kept(apply_policy(s, RetentionPolicy(keep_within=Duration(days=1)), UTC, now=now)) == []


def test_keep_within_months_and_leap_days() -> None:
    s = snaps(
        "2024-02-29T11:59:59+01:00",
        "2024-02-29T12:00:00+01:00",  # 31 March 12:00 CEST minus one month, clamped: not within
        "2024-02-29T12:00:01+01:00",
        "2024-03-31T12:00:00+02:00",
    )
    assert kept(apply_policy(s, RetentionPolicy(keep_within=Duration(months=1)), PARIS)) == [
        "2024-03-31T12:00:00+02:00",
        "2024-02-29T12:00:01+01:00",
    ]


def test_keep_within_years_from_a_leap_day() -> None:
    s = snaps("2023-02-28T00:00:00+00:00", "2023-02-28T00:00:01+00:00", "2024-02-29T00:00:00+00:00")
    d = apply_policy(s, RetentionPolicy(keep_within=Duration(years=1)), UTC)
    assert kept(d) == ["2024-02-29T00:00:00+00:00", "2023-02-28T00:00:01+00:00"]
    assert d[0].reasons == ("within 1y",)


def test_keep_within_daily_keeps_one_per_day_within_the_duration() -> None:
    s = snaps(
        "2024-01-01T10:00:00+00:00",
        "2024-01-08T10:00:00+00:00",
        "2024-01-09T08:00:00+00:00",
        "2024-01-09T10:00:00+00:00",
        "2024-01-10T10:00:00+00:00",
    )
    d = apply_policy(s, RetentionPolicy(keep_within_daily=Duration(days=2)), UTC)
    assert reasons(d) == {
        "2024-01-10T10:00:00+00:00": ("daily within 2d",),
        "2024-01-09T10:00:00+00:00": ("daily within 2d",),
    }


# ---- calendar edge cases -----------------------------------------------------------------------------------


def test_fall_back_the_repeated_hour_is_two_hours() -> None:
    # 27 October 2024, Paris: 03:00 CEST becomes 02:00 CET; 02:30 happens twice
    first = "2024-10-27T00:30:00+00:00"  # 02:30 CEST
    second = "2024-10-27T01:30:00+00:00"  # 02:30 CET
    assert datetime.fromisoformat(first).astimezone(PARIS).hour == datetime.fromisoformat(second).astimezone(PARIS).hour
    s = snaps("2024-10-26T23:30:00+00:00", first, second)
    assert period_key("hourly", s[1].datetime, PARIS) != period_key("hourly", s[2].datetime, PARIS)
    assert kept(apply_policy(s, RetentionPolicy(keep_hourly=2), PARIS)) == [second, first]
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=1), PARIS)) == [second]


def test_spring_forward_day_is_one_day_and_hours_stay_distinct() -> None:
    # 31 March 2024, Paris: 02:00 CET becomes 03:00 CEST
    before = "2024-03-31T00:30:00+00:00"  # 01:30 CET
    after = "2024-03-31T01:30:00+00:00"  # 03:30 CEST
    start = "2024-03-30T23:00:00+00:00"  # 00:00 CET, the first moment of the day
    s = snaps("2024-03-30T22:59:59+00:00", start, before, after)
    assert kept(apply_policy(s, RetentionPolicy(keep_hourly=2), PARIS)) == [after, before]
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=2), PARIS)) == [after, "2024-03-30T22:59:59+00:00"]


def test_iso_week_53_spans_new_year() -> None:
    dec31 = datetime(2020, 12, 31, 12, tzinfo=UTC)
    jan1 = datetime(2021, 1, 1, 12, tzinfo=UTC)
    assert period_key("weekly", dec31, UTC) == period_key("weekly", jan1, UTC) == (2020, 53)
    assert period_key("weekly", datetime(2021, 1, 4, tzinfo=UTC), UTC) == (2021, 1)
    assert period_key("yearly", dec31, UTC) != period_key("yearly", jan1, UTC)
    s = snaps("2020-12-28T12:00:00+00:00", dec31.isoformat(), jan1.isoformat())
    assert kept(apply_policy(s, RetentionPolicy(keep_weekly=1), UTC)) == [jan1.isoformat()]
    assert kept(apply_policy(s, RetentionPolicy(keep_yearly=1), UTC)) == [jan1.isoformat()]
    assert kept(apply_policy(s, RetentionPolicy(keep_yearly=2), UTC)) == [jan1.isoformat(), dec31.isoformat()]


def test_iso_week_year_differs_from_the_calendar_year() -> None:
    # 29 December 2025 is a Monday in ISO week 2026-W01
    assert period_key("weekly", datetime(2025, 12, 29, tzinfo=UTC), UTC) == (2026, 1)
    assert period_key("weekly", datetime(2025, 12, 28, tzinfo=UTC), UTC) == (2025, 52)


def test_leap_day_is_its_own_day_in_february() -> None:
    s = snaps(
        "2024-02-28T12:00:00+00:00",
        "2024-02-29T06:00:00+00:00",
        "2024-02-29T12:00:00+00:00",
        "2024-03-01T12:00:00+00:00",
    )
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=3), UTC)) == [
        "2024-03-01T12:00:00+00:00",
        "2024-02-29T12:00:00+00:00",
        "2024-02-28T12:00:00+00:00",
    ]
    assert kept(apply_policy(s, RetentionPolicy(keep_monthly=2), UTC)) == [
        "2024-03-01T12:00:00+00:00",
        "2024-02-29T12:00:00+00:00",
    ]


def test_the_time_zone_decides_the_day() -> None:
    late = datetime(2024, 1, 1, 23, 30, tzinfo=UTC)  # already 2 January in Paris
    assert period_key("daily", late, UTC) == (2024, 1, 1)
    assert period_key("daily", late, PARIS) == (2024, 1, 2)
    s = snaps("2024-01-01T12:00:00+00:00", "2024-01-01T22:30:00+00:00", late.isoformat())
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=2), PARIS)) == [late.isoformat(), s[1].time]
    assert kept(apply_policy(s, RetentionPolicy(keep_daily=2), UTC)) == [late.isoformat(), s[0].time]


def test_snapshot_offsets_do_not_matter_only_the_instant() -> None:
    same = [
        snap("2024-06-01T23:30:00+00:00", 0),
        snap("2024-06-02T01:30:00+02:00", 1),
        snap("2024-06-01T19:30:00-04:00", 2),
    ]
    keys = {period_key("daily", s.datetime, NEW_YORK) for s in same}
    assert keys == {(2024, 6, 1)}
    assert len(kept(apply_policy(same, RetentionPolicy(keep_daily=1), NEW_YORK))) == 1


# ---- grouping ------------------------------------------------------------------------------------------------


def test_group_by_host_and_paths() -> None:
    s = [
        snap("2024-01-01T00:00:00+00:00", 0, host="a", paths=("/x", "/y")),
        snap("2024-01-02T00:00:00+00:00", 1, host="a", paths=("/y", "/x")),
        snap("2024-01-03T00:00:00+00:00", 2, host="b", paths=("/x", "/y")),
        snap("2024-01-04T00:00:00+00:00", 3, host="a", paths=("/x",), tags=("t",)),
    ]
    groups = group_snapshots(s, {"host", "paths"})
    assert [g.key for g in groups] == [
        GroupKey("a", ("/x", "/y")),
        GroupKey("b", ("/x", "/y")),
        GroupKey("a", ("/x",)),
    ]
    assert [[x.id for x in g.snapshots] for g in groups] == [[s[0].id, s[1].id], [s[2].id], [s[3].id]]
    assert groups[0].key.as_dict() == {"host": "a", "paths": ["/x", "/y"], "tags": None}


def test_group_by_tags_and_by_nothing() -> None:
    s = [
        snap("2024-01-01T00:00:00+00:00", 0, tags=("b", "a")),
        snap("2024-01-02T00:00:00+00:00", 1, tags=("a", "b")),
        snap("2024-01-03T00:00:00+00:00", 2),
    ]
    assert [g.key.tags for g in group_snapshots(s, {"tags"})] == [("a", "b"), ()]
    (everything,) = group_snapshots(s, set())
    assert everything.key == GroupKey()
    assert everything.key.describe() == "all snapshots"
    assert len(everything.snapshots) == 3


def test_parse_group_by() -> None:
    assert parse_group_by("host,paths") == {"host", "paths"}
    assert parse_group_by(" tags , host ") == {"tags", "host"}
    assert parse_group_by("") == set()
    with pytest.raises(UsageError, match="hostname"):
        parse_group_by("hostname")
    with pytest.raises(UsageError):
        group_snapshots([], {"colour"})


# ---- properties ------------------------------------------------------------------------------------------

ZONES: list[tzinfo] = [UTC, PARIS, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata")]
COUNT = st.one_of(st.none(), st.just(-1), st.integers(0, 6))
DURATION = st.one_of(
    st.none(),
    st.builds(Duration, st.integers(0, 1), st.integers(0, 13), st.integers(0, 40), st.integers(0, 48)),
)


@st.composite
def snapshot_lists(draw: st.DrawFn) -> list[Snapshot]:
    times = draw(
        st.lists(
            st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
            max_size=25,
        )
    )
    # cluster some of them: many snapshots in the same hours and days make the buckets interesting
    dense = draw(
        st.lists(st.integers(0, 3 * 24 * 3600), max_size=15).map(
            lambda secs: [datetime(2024, 3, 29, tzinfo=UTC) + timedelta(seconds=s) for s in secs]
        )
    )
    tags = st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True).map(tuple)
    return [snap(t, i, tags=draw(tags)) for i, t in enumerate(times + dense)]


policies = st.builds(
    RetentionPolicy,
    keep_last=COUNT,
    keep_hourly=COUNT,
    keep_daily=COUNT,
    keep_weekly=COUNT,
    keep_monthly=COUNT,
    keep_yearly=COUNT,
    keep_within=DURATION,
    keep_within_daily=DURATION,
    keep_within_weekly=DURATION,
    keep_tags=st.lists(st.sampled_from(["a", "b", "a,b", "c"]), max_size=2).map(tuple),
)
COUNT_FIELDS = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]


def kept_ids(decisions: list[Decision]) -> set[str]:
    return {d.snapshot.id for d in decisions if d.keep}


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), policies, st.sampled_from(ZONES))
def test_every_snapshot_is_decided_once_and_kept_ones_have_reasons(
    s: list[Snapshot], policy: RetentionPolicy, tz: tzinfo
) -> None:
    assume(not policy.is_empty)
    decisions = apply_policy(s, policy, tz)
    assert sorted(d.snapshot.id for d in decisions) == sorted(x.id for x in s)
    kept_set = {d.snapshot.id for d in decisions if d.keep}
    removed = {d.snapshot.id for d in decisions if not d.keep}
    assert kept_set | removed == {x.id for x in s}
    assert not kept_set & removed
    for d in decisions:
        assert d.keep == bool(d.reasons)
    instants = [d.snapshot.datetime for d in decisions]
    assert instants == sorted(instants, reverse=True)


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), st.integers(1, 30), st.sampled_from(ZONES))
def test_keep_last_keeps_exactly_the_n_newest(s: list[Snapshot], n: int, tz: tzinfo) -> None:
    decisions = apply_policy(s, RetentionPolicy(keep_last=n), tz)
    assert [d.keep for d in decisions] == [i < n for i in range(len(s))]
    assert len(kept_ids(decisions)) == min(n, len(s))


@settings(max_examples=300, deadline=None)
@given(snapshot_lists(), policies, st.sampled_from(COUNT_FIELDS), st.integers(1, 5), st.sampled_from(ZONES))
def test_increasing_a_count_never_removes_a_kept_snapshot(
    s: list[Snapshot], policy: RetentionPolicy, name: str, more: int, tz: tzinfo
) -> None:
    assume(not policy.is_empty)
    n = getattr(policy, name)
    bigger = dataclasses.replace(policy, **{name: -1 if n == -1 else (n or 0) + more})
    unlimited = dataclasses.replace(policy, **{name: -1})
    before = kept_ids(apply_policy(s, policy, tz))
    assert before <= kept_ids(apply_policy(s, bigger, tz))
    assert before <= kept_ids(apply_policy(s, unlimited, tz))


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), policies, DURATION.filter(lambda d: d is not None), st.sampled_from(ZONES))
def test_a_longer_keep_within_never_removes_a_kept_snapshot(
    s: list[Snapshot], policy: RetentionPolicy, extra: Duration, tz: tzinfo
) -> None:
    assume(not policy.is_empty)
    w = policy.keep_within or Duration()
    longer = Duration(w.years + extra.years, w.months + extra.months, w.days + extra.days, w.hours + extra.hours)
    assert kept_ids(apply_policy(s, policy, tz)) <= kept_ids(
        apply_policy(s, dataclasses.replace(policy, keep_within=longer), tz)
    )


@settings(max_examples=200, deadline=None)
@given(snapshot_lists(), st.sampled_from(["hourly", "daily", "weekly", "monthly", "yearly"]), st.integers(1, 8))
def test_a_period_rule_keeps_at_most_n_and_one_per_period_besides_the_oldest(
    s: list[Snapshot], period: str, n: int
) -> None:
    decisions = apply_policy(s, RetentionPolicy(**{f"keep_{period}": n}), PARIS)
    chosen = [d for d in decisions if d.keep]
    assert len(chosen) <= n
    oldest = decisions[-1].snapshot.id if decisions else None
    keys = [period_key(period, d.snapshot.datetime, PARIS) for d in chosen if d.snapshot.id != oldest]
    assert len(keys) == len(set(keys))
    # the newest snapshot of each of the first periods is the one kept
    if decisions:
        assert decisions[0].keep


@settings(max_examples=100, deadline=None)
@given(snapshot_lists(), policies, st.randoms(use_true_random=False))
def test_input_order_does_not_matter(s: list[Snapshot], policy: RetentionPolicy, rnd: object) -> None:
    assume(not policy.is_empty)
    shuffled = list(s)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert apply_policy(s, policy, PARIS) == apply_policy(shuffled, policy, PARIS)
