"""Schema migrations of the state database, applied in order; ``PRAGMA user_version`` records the last one applied.

Append new migrations; never edit one that has shipped. Each runs in one transaction with the version bump.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: runs of the plan and their steps; drills (filled by the drill commands of a later version)
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,          -- seconds since the epoch (the run's clock, injectable in tests)
        finished REAL,
        trigger TEXT NOT NULL,          -- 'run', 'daemon', 'quickstart'
        outcome TEXT                    -- 'ok', 'failed', 'interrupted'; NULL while running
    );
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        asset TEXT,                     -- NULL for repository maintenance (prune, check)
        repository TEXT NOT NULL,
        kind TEXT NOT NULL,             -- 'backup', 'copy', 'forget', 'prune', 'check'
        started REAL NOT NULL,
        duration_s REAL NOT NULL,
        outcome TEXT NOT NULL,          -- 'ok', 'partial', 'failed', 'skipped'
        bytes INTEGER NOT NULL DEFAULT 0,
        snapshot_id TEXT,
        errors INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX steps_by_kind ON steps (kind, asset, repository, started);
    CREATE TABLE drills (
        id INTEGER PRIMARY KEY,
        asset TEXT NOT NULL,
        repository TEXT NOT NULL,
        started REAL NOT NULL,
        duration_s REAL NOT NULL,
        bytes INTEGER NOT NULL,
        files INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: what a drill measured and concluded (the drill command); older rows keep the defaults
    """
    ALTER TABLE drills ADD COLUMN snapshot_id TEXT;
    ALTER TABLE drills ADD COLUMN sample REAL NOT NULL DEFAULT 1.0;       -- share of the asset's bytes asked for
    ALTER TABLE drills ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;      -- files restored wrong or not at all
    ALTER TABLE drills ADD COLUMN ttfb_s REAL;                            -- drill start to first restored byte
    ALTER TABLE drills ADD COLUMN throughput REAL;                        -- restored bytes per second
    ALTER TABLE drills ADD COLUMN asset_bytes INTEGER;                    -- the snapshot's size (regular files)
    ALTER TABLE drills ADD COLUMN estimated_full_s REAL;                  -- extrapolated full restore time
    ALTER TABLE drills ADD COLUMN rto_s REAL;                             -- the asset's RTO at the time
    """,
    # 3: alerts sent (or attempted) per channel: de-duplication, rate limits and the weekly digest
    """
    CREATE TABLE alerts_sent (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,              -- what the alert is about, e.g. 'step:backup:documents:nas', 'digest'
        channel TEXT NOT NULL,          -- 'email:ADDRESS' or 'webhook:URL'
        sent REAL NOT NULL,             -- seconds since the epoch
        severity TEXT NOT NULL,         -- 'fail', 'warn', 'info'
        outcome TEXT NOT NULL,          -- 'sent' or 'failed'
        title TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alerts_sent_by_key ON alerts_sent (key, channel, sent);
    """,
    # guard: the ransomware guard's verdict per snapshot, and its release by an operator (guard release)
    """
    CREATE TABLE IF NOT EXISTS guard_verdicts (
        id INTEGER PRIMARY KEY,
        snapshot_id TEXT NOT NULL,
        repository TEXT NOT NULL,
        asset TEXT,                     -- NULL for backups not run from the plan
        time REAL NOT NULL,             -- seconds since the epoch
        verdict TEXT NOT NULL,          -- 'clean', 'suspicious', 'attack'
        score REAL NOT NULL DEFAULT 0,
        summary TEXT NOT NULL DEFAULT '',
        evidence TEXT NOT NULL DEFAULT '{}',  -- JSON, as stored in the snapshot's guard field
        released REAL,                  -- when an operator released it (a false positive, or dealt with)
        released_by TEXT,
        reason TEXT,
        released_as TEXT                -- the ID of the rewritten snapshot carrying the release
    );
    CREATE INDEX IF NOT EXISTS guard_verdicts_by_snapshot ON guard_verdicts (snapshot_id);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version reached. Refuses a database newer than this code."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        from sauvegarde.errors import SauvegardeError

        raise SauvegardeError(
            f"the state database has schema version {version}, newer than this version of Sauvegarde knows "
            f"({len(MIGRATIONS)}): upgrade Sauvegarde"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[number - 1]
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
