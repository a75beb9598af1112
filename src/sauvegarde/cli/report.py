"""``sauvegarde report``: the disaster-recovery document (HTML, PDF or Markdown) from the plan and its history."""

from __future__ import annotations

import os
from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import clock, load, open_state, plan_options

FORMATS = ("html", "pdf", "md")  # as sauvegarde.report.document.FORMATS (not imported: matplotlib loads late)

SUFFIXES = {".html": "html", ".htm": "html", ".pdf": "pdf", ".md": "md", ".markdown": "md"}


@click.command("report")
@plan_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Document format (default: from the output file's suffix, else html).",
)
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="Write the document here (Markdown: charts beside it)."
)
@pass_app
def command(app: AppContext, plan_path: str | None, now: datetime | None, fmt: str | None, output: str) -> None:
    """The disaster-recovery document an auditor, a manager or a new IT provider can act on: contacts, inventory,
    where every copy lives, schedules and retention, findings with fixes, history charts, and a restore runbook per
    asset with the exact commands. Nothing secret is written: it says where passwords and keys are kept."""
    from sauvegarde.report.document import render, write

    chosen = fmt or SUFFIXES.get(os.path.splitext(output)[1].lower(), "html")
    plan = load(plan_path)
    stem = os.path.splitext(os.path.basename(output))[0] or "report"
    with open_state(plan) as db:
        rendered = render(plan, db, clock(now)(), chosen, stem=stem)  # type: ignore[arg-type]
    written = write(rendered, output)
    if app.json:
        app.emit_json({"format": chosen, "output": output, "files": written})
    elif not app.quiet:
        extra = f" and {len(written) - 1} chart(s) beside it" if len(written) > 1 else ""
        app.out(f"wrote {chosen} report {output}{extra}")
