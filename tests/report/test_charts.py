"""Charts and the copies diagram from hand-made history: valid PNGs of a sensible size when there is data, a note
instead when there is none, and the RPO saw tooth and its share of time within the RPO computed right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sauvegarde.plan.model import Plan
from sauvegarde.plan.observed import Observation, RepositoryState, SnapshotFact
from sauvegarde.report.charts import byte_unit, charts, seconds_text
from sauvegarde.report.diagram import diagram
from sauvegarde.report.history import Compliance, DrillPoint, History, Verdict, compliance
from sauvegarde.state.db import StateDB, Step

T0 = datetime(2025, 3, 1, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG)
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def plan(repos: dict[str, dict[str, Any]], assets: dict[str, list[str]]) -> Plan:
    return Plan.model_validate(
        {
            "organisation": {"name": "A rather long organisation name, to see that it fits"},
            "repositories": {
                n: {"url": f"/r/{n}", "password_env": "PW", "medium": "disk"} | r for n, r in repos.items()
            },
            "assets": {
                a: {
                    "paths": ["/data"],
                    "criticality": "high",
                    "rpo": "4h",
                    "rto": "1h",
                    "schedule": "hourly",
                    "retention": {"keep_daily": 40},
                    "repositories": rs,
                }
                for a, rs in assets.items()
            },
        }
    )


def full_history() -> History:
    t = [T0 + timedelta(hours=6 * i) for i in range(12)]
    return History(
        stored={
            "nas": [(x, 1e9 + i * 5e7) for i, x in enumerate(t)],
            "cloud": [(x, 9e8 + i * 5e7) for i, x in enumerate(t)],
        },
        measured={"nas": (t[-1], 1.6e9)},
        durations={"docs": [(x, 30.0 + i, i != 4) for i, x in enumerate(t)]},
        compliance=[Compliance("docs", 4 * 3600, [(t[0], 0.0), (t[1], 6 * 3600.0), (t[1], 0.0)], 0.8)],
        drills=[
            DrillPoint(t[2], "docs", "cloud", 12.0, 900.0, 3600.0, True),
            DrillPoint(t[8], "docs", "cloud", 15.0, 5000.0, 3600.0, False),
        ],
        verdicts=[Verdict(x, "docs", "clean", False) for x in t[:5]] + [Verdict(t[6], "docs", "suspicious", True)],
    )


def test_every_chart_is_a_png_when_there_is_history() -> None:
    drawn = charts(full_history(), None)
    assert [c.name for c in drawn] == ["stored-size", "backup-durations", "rpo-compliance", "drills", "guard"]
    for c in drawn:
        assert c.png is not None, c.name
        width, height = size(c.png)
        assert width >= 900 and 150 <= height <= 500, (c.name, width, height)
    assert "docs: within its RPO 80% of the time" in drawn[2].caption


def test_without_history_notes_replace_the_charts() -> None:
    drawn = charts(History(), None)
    assert all(c.png is None for c in drawn)
    assert "No restore drill recorded yet" in drawn[3].caption


def test_the_rpo_saw_tooth_and_time_within(tmp_path: Any) -> None:
    p = plan({"nas": {"failure_domain": "same-site"}}, {"docs": ["nas"]})
    now = T0 + timedelta(hours=10)
    obs = Observation(now, {"nas": RepositoryState("nas", snapshots={"docs": [SnapshotFact(T0 + timedelta(hours=8))]})})
    with StateDB(str(tmp_path / "s.db")) as db:
        db.record_step(Step(1, "docs", "nas", "backup", T0.timestamp(), 5.0, "ok"))
        db.record_step(Step(1, "docs", "nas", "backup", (T0 + timedelta(hours=2)).timestamp(), 5.0, "failed"))
        (c,) = compliance(p, obs, db)
    hours = [(round((t - T0).total_seconds() / 3600, 2), round(age / 3600, 2)) for t, age in c.points]
    assert hours == [(0, 0), (8, 8), (8, 0), (10, 2)]  # the failed backup at 2h does not count
    assert c.share_within == 0.6  # 4h of the first 8 were within the RPO, and the last 2


def test_units_and_durations_read_well() -> None:
    assert byte_unit(3 * 1024**3) == (1024**3, "GiB") and byte_unit(10) == (1.0, "bytes")
    assert [seconds_text(s) for s in (0.05, 5, 42, 600, 7200, 5400, 3 * 86400)] == [
        "0.05s",
        "5.0s",
        "42s",
        "10m",
        "2h",
        "1.5h",
        "3d",
    ]


def test_diagram_of_every_failure_domain() -> None:
    p = plan(
        {
            "local": {"failure_domain": "same-host"},
            "nas": {"failure_domain": "same-site", "medium": "nas", "key_escrow": "safe"},
            "nas2": {"failure_domain": "same-site", "medium": "nas", "key_escrow": "safe"},
            "usb": {"failure_domain": "off-site", "medium": "removable-disk", "offline": True, "key_escrow": "x"},
            "cloud": {"failure_domain": "cloud", "medium": "object-storage", "immutable": True, "key_escrow": "x"},
        },
        {"a": ["local", "nas", "cloud"], "b": ["nas", "nas2", "usb"], "c": ["usb", "local"]},
    )
    width, height = size(diagram(p))
    assert width > height > 200
    small = plan({"only": {"failure_domain": "same-site"}}, {"a": ["only"]})
    size(diagram(small))
