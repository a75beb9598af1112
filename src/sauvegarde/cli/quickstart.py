"""``sauvegarde quickstart [PATH]``: a plan protecting PATH, carried out once and proven by a restore.

Writes ``$XDG_CONFIG_HOME/sauvegarde/plan.toml`` (unless a plan exists: then it is used as it is) with one asset and
one local repository under ``$XDG_DATA_HOME/sauvegarde/`` whose strong generated password is kept 0600 beside the
plan, creates the repository, runs the plan (the first backup), restores the newest snapshot into a scratch
directory verifying every byte, and prints the status and the ``plan check`` findings. Running it again changes
nothing that exists: the plan, password and repository are reused, and the backup runs only when due.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.plan import print_findings
from sauvegarde.cli.planfile import open_state
from sauvegarde.cli.progress import Progress, wanted
from sauvegarde.cli.status import print_status
from sauvegarde.crypto import KdfParams
from sauvegarde.engine.restore import Restore, RestoreOptions
from sauvegarde.errors import EXIT_FATAL
from sauvegarde.plan.access import init_repository, opened, password_file_path, repository_exists
from sauvegarde.plan.load import load_plan
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import asset_of, observe
from sauvegarde.plan.paths import resolve_plan_path
from sauvegarde.plan.rules import evaluate
from sauvegarde.plan.run import PlanRunner
from sauvegarde.plan.starter import asset_name_for, starter_plan, write_new_password
from sauvegarde.plan.status import asset_status
from sauvegarde.util import xdg
from sauvegarde.util.units import human_bytes, human_duration


def _password_line(app: AppContext, plan_dir: str) -> tuple[str, str | None]:
    """How the plan finds the repository's password; the password file generated, if any."""
    explicit_file = app.password_file or os.environ.get("SAUVEGARDE_PASSWORD_FILE")
    if explicit_file:
        return f"password_file = {_q(os.path.abspath(explicit_file))}", None
    command = app.password_command or os.environ.get("SAUVEGARDE_PASSWORD_COMMAND")
    if command:
        return f"password_command = {_q(command)}", None
    if os.environ.get("SAUVEGARDE_PASSWORD") and not app.uses_default_repository:
        return 'password_env = "SAUVEGARDE_PASSWORD"', None
    pw_file = xdg.default_password_file()
    created = write_new_password(pw_file)
    rel = os.path.relpath(pw_file, plan_dir) if os.path.dirname(pw_file) == plan_dir else pw_file
    return f"password_file = {_q(rel)}", pw_file if created else None


def _q(text: str) -> str:
    return json.dumps(text)


@click.command("quickstart")
@click.argument("path", required=False, type=click.Path(exists=True))
@click.pass_context
@pass_app
def command(app: AppContext, ctx: click.Context, path: str | None) -> None:
    """Protect PATH (default: the current directory) with a plan, back it up, and prove it restores."""
    path = os.path.abspath(path or os.getcwd())
    plan_path = resolve_plan_path(None)
    generated = None
    if os.path.exists(plan_path):
        app.out(f"plan:       {plan_path} (exists: used as it is)")
    else:
        plan_dir = os.path.dirname(plan_path)
        os.makedirs(plan_dir, mode=0o700, exist_ok=True)
        password_line, generated = _password_line(app, plan_dir)
        text = starter_plan(asset_name_for(path), path, app.location, password_line)
        fd = os.open(plan_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        app.out(f"plan:       wrote {plan_path} (edit it: docs/plan.md explains every field)")
    plan = load_plan(plan_path)
    asset = next((n for n, a in plan.assets.items() if path in a.expanded_paths()), None)
    if asset is None:
        asset = next(iter(plan.assets))
        app.warn(f"warning: the plan does not protect {path}; using its asset {asset} (add {path} to the plan)")
    first = plan.assets[asset].repositories[0]
    for name in plan.assets[asset].repositories:
        if not repository_exists(plan, name):
            repo_id = init_repository(plan, name, KdfParams())
            app.out(f"repository: created {name} ({repo_id[:8]}) at {plan.repositories[name].url}")
        else:
            app.out(f"repository: {name} at {plan.repositories[name].url} (exists)")
    if generated:
        app.out(f"password:   generated in {generated} (mode 0600)")
    with open_state(plan) as db:
        report = PlanRunner(plan, db, lambda: datetime.now(UTC), say=lambda line: app.out(f"run:        {line}")).run(
            [asset], trigger="quickstart"
        )
        ok = not report.failures and _verify(app, plan, asset, first)
        obs = observe(plan, db, datetime.now(UTC))
    findings = evaluate(plan, obs)
    app.out()
    app.out("status:")
    print_status(app, asset_status(plan, obs, findings))
    app.out("plan check (what this plan still lacks):")
    print_findings(app, findings, show_ok=False)
    app.out()
    app.out("Next steps:")
    app.out("  1. Export the recovery key and keep it away from this machine (without it, or the password, the")
    app.out("     backups cannot be read once this machine is lost):")
    pw = password_file_path(plan, plan.repositories[first])
    pw_opt = f" --password-file {pw}" if pw else ""
    app.out(f"       sauvegarde key export --repo {plan.repositories[first].url}{pw_opt} > recovery-sheet.txt")
    app.out("     print it, store it in a safe, delete the file, and record where in the plan (key_escrow).")
    app.out("  2. Add a second repository on another disk or NAS and one off-site or immutable (docs/plan.md),")
    app.out("     then `sauvegarde plan init`, `sauvegarde run` and `sauvegarde plan check`.")
    app.out("  3. Keep it running: `sauvegarde install-service` (systemd) or `sauvegarde daemon`.")
    if app.json:
        app.emit_json(
            {
                "plan": plan.source,
                "asset": asset,
                "password_file": generated,
                "steps": [s.as_dict() for s in report.steps],
                "ok": ok,
                "findings": [f.as_dict() for f in findings],
            }
        )
    if not ok:
        ctx.exit(EXIT_FATAL)


def _verify(app: AppContext, plan: Plan, asset: str, repo_name: str) -> bool:
    """Restore the asset's newest snapshot into a scratch directory, verifying every byte."""
    with opened(plan, repo_name) as repo:
        snaps = sorted((s for s in repo.snapshots() if asset_of(s) == asset), key=lambda s: s.datetime)
        if not snaps:
            app.warn(f"error: no snapshot of {asset} in {repo_name} to verify")
            return False
        snap = snaps[-1]
        scratch = tempfile.mkdtemp(prefix="sauvegarde-quickstart-")
        try:
            restore = Restore(repo, snap, RestoreOptions(target=scratch, verify=True))
            with Progress(restore.counters, "verify", wanted(app.quiet, app.json)):
                r = restore.run()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    ok = not r.errors
    app.out(
        f"restore:    snapshot {snap.short_id}: {r.verified} of {r.files} files ({human_bytes(r.bytes)}) restored and "
        f"verified byte for byte in {human_duration(r.duration_s)}: {'OK' if ok else 'FAILED'}"
    )
    for e in r.errors[:20]:
        app.warn(f"error: {e}")
    return ok
