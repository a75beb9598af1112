"""Drill results in the state database: the migration adds the measurements, old rows keep defaults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sauvegarde.state.db import DrillRecord, StateDB
from sauvegarde.state.migrations import MIGRATIONS, migrate


def test_drill_measurements_round_trip(tmp_path: Path) -> None:
    with StateDB(str(tmp_path / "state.db")) as db:
        rec = DrillRecord(
            "docs", "offsite", 100.0, 2.5, 4096, 3, "fail", "rto exceeded", "ab" * 32, 0.1, 1, 0.25, 1638.4,
            40960, 25.25, 20.0,
        )  # fmt: skip
        db.record_drill(rec)
        db.record_drill(DrillRecord("docs", "local", 200.0, 1.0, 1, 1, "pass"))
        assert db.drills("docs", "offsite") == [rec]
        assert [d.repository for d in db.drills("docs")] == ["offsite", "local"]
        assert not rec.passed and db.drills(repository="local")[0].passed


def test_rows_written_before_the_drill_migration_keep_defaults(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute(
        "INSERT INTO drills (asset, repository, started, duration_s, bytes, files, outcome) "
        "VALUES ('docs', 'nas', 1.0, 2.0, 3, 4, 'ok')"
    )
    assert migrate(conn) == len(MIGRATIONS)
    conn.close()
    with StateDB(path) as db:
        (old,) = db.drills()
        assert old.passed and old.errors == 0 and old.sample == 1.0 and old.ttfb_s is None
