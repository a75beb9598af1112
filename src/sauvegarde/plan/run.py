"""Carrying out the plan: back up each due asset to its first repository, copy it to the others, apply its
retention, then prune and check the repositories when their schedules say so.

Every step is recorded in the state database with its outcome, duration and bytes. A failing step is recorded and
the work goes on: a later copy still runs when a backup failed (it copies what exists), and other assets and
repositories are not held up. A file lock per asset (under the state directory) keeps two runs of one asset, from
the daemon and from ``run``, from overlapping. The clock is injected: tests choose what "now" is, and snapshots are
dated by it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sauvegarde.drill.plan import DrillTarget, due_drills, run_drill
from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.check import ReadSubset, check_repository
from sauvegarde.engine.copy import Copier, oldest_first
from sauvegarde.engine.prune import run_prune
from sauvegarde.engine.retention import apply_policy
from sauvegarde.errors import SauvegardeError
from sauvegarde.guard.guard import ENFORCE, Guard, is_suspect
from sauvegarde.guard.protect import protect_decisions
from sauvegarde.guard.release import record as record_verdict
from sauvegarde.plan.access import opened
from sauvegarde.plan.model import Asset, Plan
from sauvegarde.plan.observe import asset_of, asset_tag
from sauvegarde.plan.schedule import Schedule
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.source import Excluder
from sauvegarde.state.db import StateDB, Step
from sauvegarde.util.timezone import local_timezone
from sauvegarde.util.units import human_bytes

Clock = Callable[[], datetime]


@dataclass
class RunReport:
    run_id: int
    steps: list[Step] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failures(self) -> list[Step]:
        return [s for s in self.steps if s.outcome == "failed"]

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "interrupted": self.interrupted,
            "failures": len(self.failures),
            "steps": [s.as_dict() for s in self.steps],
        }


class StepFailed(Exception):
    """A step's own failure, with the message to record."""


@dataclass
class _Outcome:
    outcome: str = "ok"
    bytes: int = 0
    snapshot_id: str | None = None
    errors: int = 0
    message: str = ""


class PlanRunner:
    """Runs the plan's work against its repositories, recording each step in ``db``."""

    def __init__(
        self,
        plan: Plan,
        db: StateDB,
        clock: Clock,
        say: Callable[[str], None] = lambda _line: None,
        should_stop: Callable[[], bool] = lambda: False,
        lock_dir: str | None = None,
    ) -> None:
        self.plan = plan
        self.db = db
        self.clock = clock
        self.say = say
        self.should_stop = should_stop
        self.lock_dir = lock_dir or os.path.join(os.path.dirname(db.path) if db.path != ":memory:" else "/tmp", "locks")
        self.tz = plan.tz() or local_timezone()

    # ---- what is due ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock().astimezone(self.tz)

    def backup_due(self, asset: str, now: datetime | None = None) -> bool:
        """Due unless a backup was attempted since the schedule last fired (a never-run asset is due)."""
        now = now or self.now()
        last = self.db.last_step("backup", asset=asset, outcomes=("ok", "partial", "failed"))
        if last is None:
            return True
        fired = self.plan.assets[asset].schedule.previous_at_or_before(now, self.tz)
        return last.started < fired.timestamp()

    def maintenance_due(self, kind: str, repository: str, now: datetime | None = None) -> bool:
        schedule: Schedule | None = getattr(self.plan.repositories[repository], kind)
        if schedule is None:
            return False
        now = now or self.now()
        last = self.db.last_step(kind, repository=repository, outcomes=("ok", "failed"))
        if last is None:
            return True
        return last.started < schedule.previous_at_or_before(now, self.tz).timestamp()

    # ---- running --------------------------------------------------------------------------------------

    def run(self, assets: list[str] | None = None, force: bool = False, trigger: str = "run") -> RunReport:
        """One pass: every selected asset that is due (all of them with ``force``), then due maintenance of the
        repositories they use."""
        names = assets or list(self.plan.assets)
        report = RunReport(self.db.start_run(self.clock().timestamp(), trigger))
        touched: list[str] = []
        for name in names:
            if self.should_stop():
                report.interrupted = True
                break
            if not force and not self.backup_due(name):
                self.say(f"{name}: not due (schedule {self.plan.assets[name].schedule})")
                continue
            self.run_asset(name, report)
            touched += [r for r in self.plan.assets[name].repositories if r not in touched]
        for repo in touched:
            for kind in ("prune", "check"):
                if self.should_stop():
                    report.interrupted = True
                    break
                if self.maintenance_due(kind, repo):
                    self._step(report, None, repo, kind, functools.partial(self._maintain, kind, repo))
        self._run_due_drills(names, report)
        outcome = "interrupted" if report.interrupted else "failed" if report.failures else "ok"
        self.db.finish_run(report.run_id, self.clock().timestamp(), outcome)
        return report

    def _run_due_drills(self, names: list[str], report: RunReport) -> None:
        """The plan's drills of these assets whose schedule fired since they last ran, after the backups (so they
        drill the fresh snapshots). TODO: the daemon only gets here when one of the asset's backups runs, so a
        drill fires at the asset's first run after its own schedule; give drills their own entries in
        :class:`sauvegarde.plan.daemon.Scheduler` if an asset runs less often than its drill."""
        for target in due_drills(self.plan, self.db, self.now(), names):
            if self.should_stop():
                report.interrupted = True
                return
            self._step(report, target.asset, target.repository, "drill", functools.partial(self._drill, target))

    def _drill(self, target: DrillTarget) -> _Outcome:
        result = run_drill(self.plan, target, self.clock())
        self.db.record_drill(result.record())
        share = "full" if target.sample >= 1 else f"{target.sample:.0%} sample"
        message = f"{result.verdict} ({share}): {result.files} file(s), {human_bytes(result.bytes)}"
        if result.reasons:
            message += "; " + "; ".join(result.reasons[:3])
        outcome = "ok" if result.passed else "failed"
        return _Outcome(outcome, result.bytes, result.snapshot_id or None, len(result.errors), message)

    def run_asset(self, name: str, report: RunReport) -> None:
        asset = self.plan.assets[name]
        first, others = asset.repositories[0], asset.repositories[1:]
        with self._asset_lock(name) as locked:
            if not locked:
                self._record(
                    report,
                    name,
                    first,
                    "backup",
                    self.clock().timestamp(),
                    0.0,
                    _Outcome("skipped", message="another run of this asset is in progress"),
                )
                return
            self._step(report, name, first, "backup", lambda: self._backup(name, asset, first))
            for other in others:
                if self.should_stop():
                    report.interrupted = True
                    return
                self._step(report, name, other, "copy", functools.partial(self._copy, name, first, other))
            for repo in asset.repositories:
                if self.should_stop():
                    report.interrupted = True
                    return
                self._step(report, name, repo, "forget", functools.partial(self._forget, name, asset, repo))

    def _step(self, report: RunReport, asset: str | None, repo: str, kind: str, work: Callable[[], _Outcome]) -> None:
        started = self.clock().timestamp()
        t0 = time.monotonic()
        try:
            out = work()
        except (SauvegardeError, StepFailed, OSError) as exc:
            out = _Outcome("failed", message=str(exc) or type(exc).__name__)
        self._record(report, asset, repo, kind, started, round(time.monotonic() - t0, 3), out)

    def _record(
        self, report: RunReport, asset: str | None, repo: str, kind: str, started: float, duration: float, out: _Outcome
    ) -> None:
        step = Step(
            report.run_id,
            asset,
            repo,
            kind,
            started,
            duration,
            out.outcome,
            out.bytes,
            out.snapshot_id,
            out.errors,
            out.message,
        )
        self.db.record_step(step)
        report.steps.append(step)
        who = f"{asset} -> {repo}" if asset else repo
        detail = f": {out.message}" if out.message else ""
        self.say(f"{kind} {who}: {out.outcome}{detail}")

    # ---- the steps ------------------------------------------------------------------------------------

    def _backup(self, name: str, asset: Asset, repo_name: str) -> _Outcome:
        opts = BackupOptions(
            paths=asset.expanded_paths(),
            excluder=Excluder(asset.exclude),
            one_file_system=asset.one_file_system,
            tags=[asset_tag(name)],
            time=self.clock(),
        )
        if asset.command is None:
            opts.observer = Guard(ENFORCE, [c.path for c in self.plan.canaries if c.asset == name])
        with opened(self.plan, repo_name) as repo:
            snap = Backup(repo, opts).run() if asset.command is None else _backup_command(repo, name, asset, opts)
        summary = snap.summary
        errors = int(summary.get("errors", 0))
        added = int(summary.get("bytes_added", 0))
        message = f"snapshot {snap.id[:8]}, {human_bytes(added)} added"
        if errors:
            message += f", {errors} file(s) unreadable"
        record_verdict(self.db, snap, repo_name, name)
        if is_suspect(snap):  # the snapshot stays, as evidence; the step fails so that alerts go out
            return _Outcome("failed", added, snap.id, errors, f"{message}; {snap.extra['guard']['summary']}")
        return _Outcome("partial" if errors else "ok", added, snap.id, errors, message)

    def _copy(self, name: str, first: str, other: str) -> _Outcome:
        with opened(self.plan, first) as src, opened(self.plan, other) as dst:
            snaps = [s for s in src.snapshots() if asset_of(s) == name]
            copier = Copier(src, dst)
            results = [copier.copy_snapshot(s) for s in oldest_first(snaps)]
            copied = [r for r in results if r.copied]
            added = sum(r.bytes_added for r in copied)
            return _Outcome("ok", added, message=f"{len(copied)} snapshot(s) copied, {human_bytes(added)} added")

    def _forget(self, name: str, asset: Asset, repo_name: str) -> _Outcome:
        with opened(self.plan, repo_name, lock="exclusive", load_index=False) as repo:
            snaps = [s for s in repo.snapshots() if asset_of(s) == name]
            decisions = protect_decisions(apply_policy(snaps, asset.retention.policy(), self.tz))
            removed = [d.snapshot for d in decisions if not d.keep]
            for s in removed:
                repo.delete_snapshot(s.id)
            return _Outcome("ok", message=f"kept {len(decisions) - len(removed)}, removed {len(removed)} snapshot(s)")

    def _maintain(self, kind: str, repo_name: str) -> _Outcome:
        repo_plan = self.plan.repositories[repo_name]
        if kind == "prune":
            with opened(self.plan, repo_name, lock="exclusive") as repo:
                result = run_prune(repo, repo_plan.max_unused)
                freed = result.plan.bytes_freed
                if result.warnings:  # damaged copies found (their other copies kept): worth an alert
                    found = f"{len(result.warnings)} damaged blob copy(ies): {result.warnings[0]}"
                    return _Outcome(
                        "partial", freed, errors=len(result.warnings), message=f"freed {human_bytes(freed)}; {found}"
                    )
                return _Outcome("ok", freed, message=f"freed {human_bytes(freed)}")
        with opened(self.plan, repo_name, lock="shared", load_index=False) as repo:
            subset = ReadSubset.parse(repo_plan.check_read_data_subset) if repo_plan.check_read_data_subset else None
            check = check_repository(repo, subset)
            errors = len(check.errors)
            return _Outcome(
                "failed" if errors else "ok",
                check.bytes_read,
                errors=errors,
                message=f"{errors} error(s) in {check.snapshots} snapshot(s), {check.packs} pack(s)",
            )

    @contextlib.contextmanager
    def _asset_lock(self, name: str) -> Iterator[bool]:
        os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.lock_dir, f"asset-{name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _backup_command(repo: Repository, name: str, asset: Asset, opts: BackupOptions) -> Snapshot:
    """Back up a command's standard output; the snapshot is removed again when the command fails."""
    assert asset.command is not None
    proc = subprocess.Popen(["/bin/sh", "-c", asset.command], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    opts.paths = []
    opts.stdin = proc.stdout  # type: ignore[assignment]  # a pipe is a binary file
    opts.stdin_filename = asset.filename or name
    try:
        snap = Backup(repo, opts).run()
    finally:
        proc.stdout.close()
        status = proc.wait()
    if status != 0:
        repo.delete_snapshot(snap.id)
        raise StepFailed(f"command exited with status {status}; its snapshot {snap.id[:8]} was removed")
    return snap
