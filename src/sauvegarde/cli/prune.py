"""``sauvegarde prune``: remove unreferenced data and repack mostly unused packs."""

from __future__ import annotations

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.engine.prune import PruneResult, run_prune
from sauvegarde.errors import UsageError
from sauvegarde.repository import Repository
from sauvegarde.util.units import human_bytes


def parse_fraction(text: str) -> float:
    """``5%`` or ``0.05`` as a fraction."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"invalid --max-unused {text!r}: expected a percentage such as 5%") from None
    if not 0 <= value <= 1:
        raise UsageError(f"invalid --max-unused {text!r}: must be between 0% and 100%")
    return value


@click.command("prune")
@click.option("--max-unused", default="5%", show_default=True, help="Unused space tolerated in packs that stay.")
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be done.")
@pass_app
def command(app: AppContext, max_unused: str, dry_run: bool) -> None:
    """Remove data that no snapshot references; repack packs that are mostly unused."""
    fraction = parse_fraction(max_unused)
    repo = app.open_repository(lock="exclusive")
    prune_repository(app, repo, fraction, dry_run)


def prune_repository(app: AppContext, repo: Repository, fraction: float, dry_run: bool) -> PruneResult:
    """Shared with ``forget --prune``."""
    result = run_prune(repo, fraction, dry_run, progress=None if app.quiet or app.json else app.out)
    p = result.plan
    if app.json:
        app.emit_json(
            {
                "dry_run": dry_run,
                **p.as_dict(),
                "packs_written": result.packs_written,
                "temporary_files_removed": result.temporaries,
                "temporary_bytes_removed": result.temporary_bytes,
                "warnings": result.warnings,
            }
        )
        return result
    for warning in result.warnings:
        app.warn(warning)
    app.out(f"referenced: {p.blobs_used} blobs; unreferenced: {p.blobs_unused} blobs")
    removed = len(p.remove) + len(p.unindexed)
    if dry_run:
        app.out(f"would remove {removed} pack(s), repack {len(p.repack)}, keep {len(p.keep)}")
        app.out(f"would free {human_bytes(p.bytes_freed)} of {human_bytes(p.bytes_total)}")
    else:
        app.out(
            f"removed {result.packs_deleted} pack(s) (of which {len(p.repack)} repacked into "
            f"{result.packs_written}), kept {len(p.keep)}; freed {human_bytes(p.bytes_freed)} of "
            f"{human_bytes(p.bytes_total)}"
        )
    if result.temporaries:
        what = (
            f"{result.temporaries} temporary file(s) left by killed processes ({human_bytes(result.temporary_bytes)})"
        )
        app.out(f"would remove {what}" if dry_run else f"removed {what}")
    return result
