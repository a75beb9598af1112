"""``sauvegarde guard``: the ransomware guard's verdicts: ``show`` the evidence, ``release`` a flagged snapshot."""

from __future__ import annotations

import getpass
import json
import sqlite3

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import state_path
from sauvegarde.engine.find import find_snapshot
from sauvegarde.errors import SauvegardeError, UsageError
from sauvegarde.guard.guard import is_suspect, verdict_of
from sauvegarde.repository import Snapshot
from sauvegarde.state.db import StateDB


def record_verdict(app: AppContext, snap: Snapshot, asset: str | None = None) -> None:
    """Record a snapshot's verdict in the state database; a database problem is a warning, not a failure."""
    from sauvegarde.guard.release import record

    try:
        with StateDB(state_path()) as db:
            record(db, snap, app.location, asset)
    except (sqlite3.Error, OSError, SauvegardeError) as exc:
        app.warn(f"warning: guard verdict not recorded in the state database: {exc}")


@click.group("guard")
def command() -> None:
    """The ransomware guard's verdicts on snapshots (see docs/guard.md)."""


@command.command("show")
@click.argument("snapshot_id", default="latest")
@pass_app
def show(app: AppContext, snapshot_id: str) -> None:
    """Show the guard's verdict and evidence for a snapshot (default: the latest)."""
    repo = app.open_repository(lock=None, load_index=False)
    snap = find_snapshot(repo, snapshot_id)
    g = snap.extra.get("guard")
    if app.json:
        app.emit_json({"id": snap.id, "guard": g})
        return
    if not isinstance(g, dict):
        app.out(f"snapshot {snap.short_id}: not checked by the guard")
        return
    app.out(f"snapshot {snap.short_id}: {verdict_of(snap)} (score {g.get('score')}, mode {g.get('mode')})")
    app.out(f"  {g.get('summary')}")
    if g.get("released"):
        r = g["released"]
        app.out(f"  released by {r.get('by')}: {r.get('reason')} (was snapshot {str(r.get('was'))[:8]})")
    if g.get("rules"):
        app.out("  rules: " + ", ".join(f"{k} x{v}" for k, v in sorted(g["rules"].items())))
    for f in g.get("files", []):
        app.out(f"  {f.get('score')}  {f.get('path')}: {', '.join(f.get('rules', []))}  {f.get('detail', '')}".rstrip())
    for d in g.get("dirs", []):
        counts = {k: v for k, v in d.items() if k not in ("path", "rule")}
        app.out(f"  folder {d.get('path')}: {d.get('rule')} {json.dumps(counts)}")
    app.out("  stats: " + json.dumps(g.get("stats", {})))


@command.command("release")
@click.argument("snapshot_id")
@click.option("--reason", required=True, help="Why: a false positive, or the incident was dealt with.")
@click.option(
    "--plan",
    "plan_path",
    metavar="FILE",
    help="Record the release in this plan's state database (default: $SAUVEGARDE_PLAN or the default plan, if any).",
)
@pass_app
def release_cmd(app: AppContext, snapshot_id: str, reason: str, plan_path: str | None) -> None:
    """Release a snapshot flagged suspicious or attack: retention and forget treat it as clean again.

    The snapshot is rewritten with the release (who, when, why) next to the unchanged evidence; its ID changes.
    """
    from sauvegarde.guard.release import release

    db_path = state_path(plan_path)  # a plan that cannot be read stops here, before anything is rewritten
    repo = app.open_repository(lock="exclusive", load_index=False)
    snap = find_snapshot(repo, snapshot_id)
    if not is_suspect(snap):
        raise UsageError(f"snapshot {snap.short_id} is not flagged by the guard ({verdict_of(snap) or 'unchecked'})")
    by = _user()
    new = release(repo, snap, by, reason)
    try:
        with StateDB(db_path) as db:
            if not db.release_guard(snap.id, new.extra["guard"]["released"]["time"], by, reason, new.id):
                from sauvegarde.guard.release import record

                record(db, snap, app.location)
                db.release_guard(snap.id, new.extra["guard"]["released"]["time"], by, reason, new.id)
    except (sqlite3.Error, OSError, SauvegardeError) as exc:
        app.warn(f"warning: release not recorded in the state database: {exc}")
    app.out(f"snapshot {snap.short_id} released (now {new.short_id}): {reason}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
