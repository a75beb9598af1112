"""The state database (SQLite under ``$XDG_STATE_HOME/sauvegarde/state.db``): what the plan did, and when.

History and cache only: the repositories remain the truth about snapshots. Writers are short transactions in WAL
mode, so ``run``, the daemon and ``status`` can use the database at the same time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sauvegarde.state.migrations import migrate
from sauvegarde.util import xdg


def default_path(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or xdg.state_dir(), "state.db")


@dataclass(frozen=True)
class Step:
    """One recorded step of a run."""

    run_id: int
    asset: str | None
    repository: str
    kind: str
    started: float
    duration_s: float
    outcome: str
    bytes: int = 0
    snapshot_id: str | None = None
    errors: int = 0
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class DrillRecord:
    """One restore drill: ``outcome`` is its verdict (``pass`` or ``fail``), ``message`` the reasons."""

    asset: str
    repository: str
    started: float
    duration_s: float
    bytes: int
    files: int
    outcome: str
    message: str = ""
    snapshot_id: str | None = None
    sample: float = 1.0
    errors: int = 0
    ttfb_s: float | None = None
    throughput: float | None = None
    asset_bytes: int | None = None
    estimated_full_s: float | None = None
    rto_s: float | None = None

    @property
    def passed(self) -> bool:
        return self.outcome in ("pass", "ok")

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_DRILL_COLUMNS = (
    "asset, repository, started, duration_s, bytes, files, outcome, message, snapshot_id, sample, errors, ttfb_s, "
    "throughput, asset_bytes, estimated_full_s, rto_s"
)


@dataclass(frozen=True)
class AlertSent:
    """One message (alert, digest or test) to one channel, sent or failed."""

    key: str
    channel: str
    sent: float
    severity: str
    outcome: str
    title: str = ""
    error: str = ""


@dataclass(frozen=True)
class GuardRecord:
    """The ransomware guard's verdict on one snapshot (``evidence`` is JSON)."""

    snapshot_id: str
    repository: str
    asset: str | None
    time: float
    verdict: str
    score: float = 0.0
    summary: str = ""
    evidence: str = "{}"
    released: float | None = None
    released_by: str | None = None
    reason: str | None = None
    released_as: str | None = None


_GUARD_COLUMNS = (
    "snapshot_id, repository, asset, time, verdict, score, summary, evidence, released, released_by, reason, "
    "released_as"
)


_STEP_COLUMNS = "run_id, asset, repository, kind, started, duration_s, outcome, bytes, snapshot_id, errors, message"


class StateDB:
    """An open state database; thread-safe (one connection, serialised)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self.version = migrate(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing --------------------------------------------------------------------------------------

    def start_run(self, started: float, trigger: str) -> int:
        with self._lock:
            cur = self._conn.execute("INSERT INTO runs (started, trigger) VALUES (?, ?)", (started, trigger))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, finished: float, outcome: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE runs SET finished = ?, outcome = ? WHERE id = ?", (finished, outcome, run_id))

    def record_step(self, step: Step) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(step.as_dict().values()),
            )

    def record_drill(self, d: DrillRecord) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO drills ({_DRILL_COLUMNS}) VALUES ({', '.join('?' * len(d.__dataclass_fields__))})",
                _row(d.as_dict().values()),
            )

    # ---- reading --------------------------------------------------------------------------------------

    def last_step(
        self, kind: str, repository: str | None = None, asset: str | None = None, outcomes: tuple[str, ...] = ()
    ) -> Step | None:
        """The most recent step of ``kind`` (for that repository and asset when given, with one of ``outcomes``)."""
        sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE kind = ?"
        args: list[object] = [kind]
        if repository is not None:
            sql += " AND repository = ?"
            args.append(repository)
        if asset is not None:
            sql += " AND asset = ?"
            args.append(asset)
        if outcomes:
            sql += f" AND outcome IN ({', '.join('?' for _ in outcomes)})"
            args.extend(outcomes)
        sql += " ORDER BY started DESC, id DESC LIMIT 1"
        with self._lock:
            row = self._conn.execute(sql, args).fetchone()
        return Step(*row) if row else None

    def steps(self, run_id: int | None = None) -> list[Step]:
        sql = f"SELECT {_STEP_COLUMNS} FROM steps"
        args: tuple[object, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            args = (run_id,)
        with self._lock:
            return [Step(*row) for row in self._conn.execute(sql + " ORDER BY id", args)]

    def drills(self, asset: str | None = None, repository: str | None = None) -> list[DrillRecord]:
        """Recorded drills, oldest first (of ``asset`` and from ``repository`` when given)."""
        sql = f"SELECT {_DRILL_COLUMNS} FROM drills WHERE 1"
        args: list[object] = []
        for column, value in (("asset", asset), ("repository", repository)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        with self._lock:
            return [DrillRecord(*row) for row in self._conn.execute(sql + " ORDER BY started, id", args)]

    def steps_since(self, since: float) -> list[Step]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_STEP_COLUMNS} FROM steps WHERE started >= ? ORDER BY started, id", (since,)
            ).fetchall()
        return [Step(*row) for row in rows]

    # ---- alerts sent ----------------------------------------------------------------------------------

    def record_alert(self, a: AlertSent) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts_sent (key, channel, sent, severity, outcome, title, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                _row((a.key, a.channel, a.sent, a.severity, a.outcome, a.title, a.error)),
            )

    def last_alert_sent(self, key: str, channel: str | None = None) -> float | None:
        """When ``key`` was last sent successfully (to ``channel`` when given)."""
        sql = "SELECT MAX(sent) FROM alerts_sent WHERE key = ? AND outcome = 'sent'"
        args: list[object] = [key]
        if channel is not None:
            sql += " AND channel = ?"
            args.append(channel)
        with self._lock:
            row = self._conn.execute(sql, args).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def messages_sent_since(self, channel: str, since: float) -> int:
        """Distinct messages (one per send time) that went to ``channel`` since ``since``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(DISTINCT sent) FROM alerts_sent WHERE channel = ? AND sent >= ? AND outcome = 'sent'",
                (channel, since),
            ).fetchone()
        return int(row[0])

    def alerts_sent(self) -> list[AlertSent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, channel, sent, severity, outcome, title, error FROM alerts_sent ORDER BY id"
            ).fetchall()
        return [AlertSent(*r) for r in rows]

    # ---- other modules' tables, read defensively ---------------------------------------------------------

    def table_columns(self, table: str) -> list[str]:
        """The columns of ``table``, empty when it does not exist (a newer module's results may be absent)."""
        with self._lock:
            return [str(r[1]) for r in self._conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]

    def rows(self, table: str, columns: list[str], order_by: str) -> list[dict[str, object]]:
        """Every row of ``table`` as dicts of ``columns`` (names checked against the schema first)."""
        known = set(self.table_columns(table))
        wanted = [c for c in columns if c in known]
        if not wanted:
            return []
        order = f" ORDER BY {order_by}" if order_by in known else ""
        with self._lock:
            cur = self._conn.execute(f'SELECT {", ".join(wanted)} FROM "{table}"{order}')
            return [dict(zip(wanted, r, strict=True)) for r in cur.fetchall()]

    # ---- guard verdicts -------------------------------------------------------------------------------

    def record_guard(self, g: GuardRecord) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO guard_verdicts ({_GUARD_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                _row(getattr(g, k) for k in g.__dataclass_fields__),
            )

    def release_guard(self, snapshot_id: str, when: float, by: str, reason: str, released_as: str) -> int:
        """Mark a snapshot's verdict released; returns the number of rows updated."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE guard_verdicts SET released = ?, released_by = ?, reason = ?, released_as = ? "
                "WHERE snapshot_id = ?",
                (when, by, reason, released_as, snapshot_id),
            )
            return cur.rowcount

    def guard_verdicts(self, asset: str | None = None, limit: int = 100) -> list[GuardRecord]:
        """Recorded verdicts, newest first (of ``asset`` when given)."""
        sql = f"SELECT {_GUARD_COLUMNS} FROM guard_verdicts"
        args: list[object] = []
        if asset is not None:
            sql += " WHERE asset = ?"
            args.append(asset)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY time DESC, id DESC LIMIT ?", [*args, limit]).fetchall()
        return [GuardRecord(*row) for row in rows]


def _text(value: str) -> str:
    """``value`` as valid UTF-8 for SQLite: a file name that is not UTF-8 (surrogate escapes from os.fsdecode)
    keeps its bytes visible as ``\\xe9``."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")


def _row(values: Iterable[object]) -> tuple[object, ...]:
    return tuple(_text(v) if isinstance(v, str) else v for v in values)
