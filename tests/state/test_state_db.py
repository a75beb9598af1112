"""The state database: migrations from an empty file, refusing a newer schema, recording and querying steps."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from sauvegarde.errors import SauvegardeError
from sauvegarde.state.db import DrillRecord, GuardRecord, StateDB, Step
from sauvegarde.state.migrations import MIGRATIONS


def test_migrates_fresh_database_and_reopens(tmp_path: Path) -> None:
    path = str(tmp_path / "s" / "state.db")
    with StateDB(path) as db:
        assert db.version == len(MIGRATIONS)
        run = db.start_run(100.0, "run")
        db.record_step(Step(run, "docs", "nas", "backup", 100.0, 1.5, "ok", 42, "abc", 0, "fine"))
        db.record_step(Step(run, "docs", "nas", "backup", 200.0, 1.0, "failed", message="boom"))
        db.record_step(Step(run, None, "nas", "check", 150.0, 3.0, "ok"))
        db.finish_run(run, 201.0, "failed")
    with StateDB(path) as db:
        assert db.version == len(MIGRATIONS)
        last = db.last_step("backup", asset="docs")
        assert last is not None and last.outcome == "failed"
        ok = db.last_step("backup", asset="docs", outcomes=("ok",))
        assert ok is not None and ok.bytes == 42 and ok.snapshot_id == "abc"
        assert db.last_step("check", repository="nas") is not None
        assert db.last_step("prune") is None
        assert len(db.steps(run)) == 3
        db.record_drill(DrillRecord("docs", "nas", 300.0, 10.0, 1000, 3, "ok"))
        assert db.drills("docs")[0].bytes == 1000


def test_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(SauvegardeError, match="upgrade Sauvegarde"):
        StateDB(str(path))


def test_file_names_that_are_not_utf8_are_stored_visibly(tmp_path: Path) -> None:
    """A guard summary or a step message naming a file whose name is not UTF-8 (os.fsdecode gives surrogate
    escapes, which SQLite refuses) is stored with its bytes shown as \\xNN, not lost nor crashing."""
    name = os.fsdecode(b"/data/r\xe9port.pdf")
    with StateDB(str(tmp_path / "state.db")) as db:
        run = db.start_run(1.0, "run")
        db.record_step(Step(run, "docs", "nas", "backup", 1.0, 1.0, "partial", message=f"{name}: unreadable"))
        db.record_guard(GuardRecord("s1", "nas", "docs", 2.0, "attack", 0.9, f"1 file(s) look encrypted (e.g. {name})"))
        db.record_drill(DrillRecord("docs", "nas", 3.0, 1.0, 10, 1, "failed", message=f"{name}: differs"))
        assert db.last_step("backup", asset="docs").message == "/data/r\\xe9port.pdf: unreadable"  # type: ignore[union-attr]
        assert db.guard_verdicts("docs")[0].summary.endswith("(e.g. /data/r\\xe9port.pdf)")
        assert db.drills("docs")[0].message == "/data/r\\xe9port.pdf: differs"
        plain = "/data/rapport é.pdf"
        db.record_step(Step(run, "docs", "nas", "check", 4.0, 1.0, "ok", message=plain))
        assert db.last_step("check").message == plain  # type: ignore[union-attr]
