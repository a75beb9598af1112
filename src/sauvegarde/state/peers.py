"""Results other modules write to the state database (restore drills, ransomware-guard verdicts), read defensively.

The drill and guard modules own their tables and may add them in later migrations: a missing table or column means
"no results yet", never an error. Readers here return plain records for alerts, metrics and the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sauvegarde.state.db import StateDB

GUARD_TABLES = ("guard_verdicts", "guard_results", "guard")
_TIME = ("time", "started", "created", "checked", "at")
_VERDICT = ("verdict", "outcome", "result", "status")
_SUSPICIOUS = {"suspicious", "attack", "alarm", "fail", "failed", "ransomware"}


@dataclass(frozen=True)
class GuardVerdict:
    time: float
    asset: str
    repository: str
    snapshot_id: str
    verdict: str  # as the guard wrote it (clean, suspicious, attack); ``suspicious`` tells whether it alarms
    message: str = ""
    released: bool = False  # an operator released it (false positive, or dealt with)

    @property
    def suspicious(self) -> bool:
        return self.verdict.lower() in _SUSPICIOUS and not self.released


def _first(row: dict[str, object], names: tuple[str, ...], default: object = "") -> object:
    for n in names:
        if row.get(n) is not None:
            return row[n]
    return default


def guard_verdicts(db: StateDB) -> list[GuardVerdict]:
    """Every guard verdict recorded, oldest first (empty when the guard has not written any)."""
    for table in GUARD_TABLES:
        columns = db.table_columns(table)
        if not columns:
            continue
        time_col = next((c for c in _TIME if c in columns), "")
        wanted = ["asset", "repository", "snapshot_id", "snapshot", "summary", "message", "released", *_TIME, *_VERDICT]
        out = []
        for row in db.rows(table, wanted, time_col):
            out.append(
                GuardVerdict(
                    time=float(_first(row, _TIME, 0.0)),  # type: ignore[arg-type]
                    asset=str(_first(row, ("asset",))),
                    repository=str(_first(row, ("repository",))),
                    snapshot_id=str(_first(row, ("snapshot_id", "snapshot"))),
                    verdict=str(_first(row, _VERDICT, "unknown")),
                    message=str(_first(row, ("summary", "message"))),
                    released=row.get("released") is not None,
                )
            )
        return out
    return []
