"""``sauvegarde drill``: restore (a sample of) an asset's latest snapshot, verify it, measure it against the RTO."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from click.core import ParameterSource

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.errors import EXIT_FATAL, UsageError
from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.util.units import human_bytes


@click.command("drill")
@plan_options
@click.option("--asset", metavar="NAME", help="Drill this asset (default: the plan's [[drills]], else every asset).")
@click.option("--repo", "repository", metavar="NAME", help="From this repository of the plan (e.g. the off-site copy).")
@click.option("--sample", metavar="N%", help="Restore a random sample of about N% of the asset's bytes.")
@click.option("--full", is_flag=True, help="Restore everything (the default without a declared sample).")
@click.option("--seed", type=int, help="Seed of the random sample (to repeat a drill).")
@click.option("--json", "json_", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
@pass_app
def command(
    app: AppContext,
    ctx: click.Context,
    plan_path: str | None,
    now: datetime | None,
    asset: str | None,
    repository: str | None,
    sample: str | None,
    full: bool,
    seed: int | None,
    json_: bool,
) -> None:
    """Restore the latest snapshot of an asset (or a sample of its files) into a scratch directory, verify every
    byte and its metadata, measure throughput and time to first byte, estimate the full restore time against the
    RTO, and record the result for `plan check` and `status`. Exit 1 if any drill fails."""
    from sauvegarde.drill.plan import run_drill, targets
    from sauvegarde.drill.sample import parse_sample

    app.json = app.json or json_
    if sample is not None and full:
        raise UsageError("give --sample or --full, not both")
    plan = load(plan_path)
    repository = repository or _hoisted_repo(app, ctx, plan)
    if asset is not None and asset not in plan.assets:
        raise UsageError(f"no asset {asset} in the plan (assets: {', '.join(plan.assets)})")
    if repository is not None:
        if repository not in plan.repositories:
            raise UsageError(f"no repository {repository} in the plan (repositories: {', '.join(plan.repositories)})")
        if asset is not None and repository not in plan.assets[asset].repositories:
            raise UsageError(f"asset {asset} has no copy in repository {repository}")
    try:
        fraction = 1.0 if full else parse_sample(sample) if sample is not None else None
    except ValueError as exc:
        raise UsageError(f"--sample: {exc}") from None
    chosen = targets(plan, asset, repository, fraction)
    chosen = [t for t in chosen if t.repository in plan.assets[t.asset].repositories]
    if not chosen:
        raise UsageError("nothing to drill: no asset of the plan has a copy in that repository")
    results = []
    with open_state(plan) as db:
        for target in chosen:
            result = run_drill(plan, target, clock(now)(), seed)
            db.record_drill(result.record())
            results.append(result)
            print_result(app, result)
    if app.json:
        app.emit_json({"plan": plan.source, "drills": [r.as_dict() for r in results]})
    if not all(r.passed for r in results):
        ctx.exit(EXIT_FATAL)


def _hoisted_repo(app: AppContext, ctx: click.Context, plan: Plan) -> str | None:
    """``drill --repo R`` arrives as the global ``--repo`` (global options are hoisted in front of the command):
    take it when given on the command line (not from $SAUVEGARDE_REPOSITORY), as a plan name or a plan URL."""
    parent = ctx.parent
    if app.repo is None or parent is None or parent.get_parameter_source("repo") != ParameterSource.COMMANDLINE:
        return None
    by_url = [name for name, r in plan.repositories.items() if r.url == app.repo]
    return by_url[0] if by_url and app.repo not in plan.repositories else app.repo


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f}s" if s < 60 else format_duration(timedelta(seconds=round(s)))


def print_result(app: AppContext, r: object) -> None:
    from sauvegarde.drill.run import DrillResult

    assert isinstance(r, DrillResult)
    share = "full" if r.sample >= 1 else f"sample {r.sample:.0%} (seed {r.seed})"
    app.out(f"drill of {r.asset} from {r.repository}, snapshot {r.snapshot_id[:8] or '-'}, {share}")
    app.out(
        f"  restored {r.files} of {r.asset_files} file(s), {human_bytes(r.bytes)} of {human_bytes(r.asset_bytes)}, "
        f"{len(r.errors)} error(s)"
    )
    rate = f"{human_bytes(int(r.throughput))}/s" if r.throughput else "-"
    app.out(
        f"  time to first byte {_seconds(r.ttfb_s)}, throughput {rate}, restore {_seconds(r.restore_s)}, "
        f"verify {_seconds(r.verify_s)}, drill {_seconds(r.seconds)}"
    )
    rto = _seconds(r.rto_s)
    app.out(f"  estimated full restore {_seconds(r.estimated_full_s)} (RTO {rto})")
    if r.passed:
        app.out("  PASS")
        return
    app.out("  FAIL:")
    for reason in r.reasons:
        app.out(f"    {reason}")
