"""``sauvegarde plan``: check the plan against reality (``plan check``) and create its repositories (``plan init``)."""

from __future__ import annotations

from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options
from sauvegarde.crypto import KdfParams
from sauvegarde.errors import EXIT_FATAL
from sauvegarde.plan.rules import Finding, evaluate

MARK = {"fail": "FAIL", "warn": "WARN", "info": "INFO", "ok": "ok  "}


@click.group("plan")
def command() -> None:
    """The disaster-recovery plan (docs/plan.md): check it, create its repositories."""


def print_findings(app: AppContext, findings: list[Finding], show_ok: bool = True) -> None:
    for f in findings:
        if f.severity == "ok" and not show_ok:
            continue
        app.out(f"{MARK[f.severity]} [{f.rule}] {f.subject}: {f.message}")
        if f.evidence:
            app.out(f"       evidence: {f.evidence}")
        if f.fix:
            app.out(f"       fix:      {f.fix}")
    counts = {s: sum(1 for f in findings if f.severity == s) for s in MARK}
    app.out(", ".join(f"{n} {s}" for s, n in counts.items()))


@command.command("check")
@plan_options
@click.option("--only-problems", is_flag=True, help="Leave out the rules that hold.")
@click.pass_context
@pass_app
def check(
    app: AppContext, ctx: click.Context, plan_path: str | None, now: datetime | None, only_problems: bool
) -> None:
    """Evaluate the plan against the repositories and the state database; exit 1 on any failing rule."""
    from sauvegarde.plan.observe import observe

    plan = load(plan_path)
    with open_state(plan) as db:
        findings = evaluate(plan, observe(plan, db, clock(now)()))
    if app.json:
        app.emit_json({"plan": plan.source, "findings": [f.as_dict() for f in findings]})
    else:
        app.out(f"plan {plan.source}: {plan.organisation.name}")
        print_findings(app, findings, show_ok=not only_problems)
    if any(f.severity == "fail" for f in findings):
        ctx.exit(EXIT_FATAL)


@command.command("init")
@plan_options
@click.option("--kdf-memory", type=click.IntRange(64), default=KdfParams().memory_kib, hidden=True)
@click.option("--kdf-iterations", type=click.IntRange(1), default=KdfParams().iterations, hidden=True)
@pass_app
def init(app: AppContext, plan_path: str | None, now: datetime | None, kdf_memory: int, kdf_iterations: int) -> None:
    """Create every repository of the plan that does not exist yet (sharing chunker parameters, so copies
    deduplicate). Immutable S3 repositories are better created by hand with `init --immutable-days`."""
    from sauvegarde.plan.access import init_repository, opened, repository_exists

    plan = load(plan_path)
    kdf = KdfParams(memory_kib=kdf_memory, iterations=kdf_iterations, lanes=min(4, max(1, kdf_memory // 8)))
    existing = [name for name in plan.repositories if repository_exists(plan, name)]
    created = []
    for name in plan.repositories:
        if name in existing:
            app.out(f"repository {name}: exists ({plan.repositories[name].url})")
            continue
        if existing:
            with opened(plan, existing[0], lock=None, load_index=False) as first:
                repo_id = init_repository(plan, name, kdf, first)
        else:
            repo_id = init_repository(plan, name, kdf)
            existing.append(name)
        created.append({"repository": name, "id": repo_id})
        app.out(f"repository {name}: created {repo_id[:8]} at {plan.repositories[name].url}")
    if app.json:
        app.emit_json(
            {"created": created, "existing": [n for n in existing if n not in {c["repository"] for c in created}]}
        )
