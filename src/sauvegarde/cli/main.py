"""The click group: global options, command registration, and turning errors into one line and an exit code (the
program starts in :mod:`sauvegarde.cli.entry`)."""

from __future__ import annotations

import gc
import importlib
import io
import os
import sys

import click

from sauvegarde import __version__
from sauvegarde.cli.context import AppContext
from sauvegarde.cli.entry import hoist_global_options
from sauvegarde.errors import EXIT_FATAL, SauvegardeError
from sauvegarde.util.malloc import tune_allocator


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it): start-up stays small."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        command = importlib.import_module(f"sauvegarde.cli.{cmd_name.replace('-', '_')}").command
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "-r",
    "--repo",
    envvar="SAUVEGARDE_REPOSITORY",
    metavar="LOCATION",
    help="Repository path or URL (default: $XDG_DATA_HOME/sauvegarde/repository).",
)
@click.option("--password-file", metavar="FILE", help="Read the password from FILE (or SAUVEGARDE_PASSWORD_FILE).")
@click.option("--password-command", metavar="CMD", help="Run CMD and use its first output line as the password.")
@click.option("--json", "json_", is_flag=True, help="Machine-readable JSON output.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("-v", "--verbose", count=True, help="More output.")
@click.option("--no-lock", is_flag=True, help="Do not lock the repository (read-only commands only).")
@click.version_option(__version__, prog_name="sauvegarde")
@click.pass_context
def cli(
    ctx: click.Context,
    repo: str | None,
    password_file: str | None,
    password_command: str | None,
    json_: bool,
    quiet: bool,
    verbose: int,
    no_lock: bool,
) -> None:
    """Sauvegarde: deduplicated, compressed, encrypted backups, and the plan to recover from disaster."""
    app = AppContext(
        repo=repo,
        password_file=password_file,
        password_command=password_command,
        json=json_,
        quiet=quiet,
        verbose=verbose,
        no_lock=no_lock,
    )
    ctx.obj = app
    ctx.call_on_close(app.close)


# one module per command, each exposing ``command``
COMMANDS = [
    "init",
    "backup",
    "snapshots",
    "guard",
    "ls",
    "restore",
    "dump",
    "diff",
    "forget",
    "mount",
    "copy",
    "key",
    "check",
    "unlock",
    "prune",
    "retention",
    "repair",
    "stats",
    "quickstart",
    "serve",
    "plan",
    "run",
    "daemon",
    "install-service",
    "status",
    "alerts",
    "metrics",
    "drill",
    "web",
    "report",
]


def main() -> None:
    # one heap arena per core rather than glibc's eight: S3 first backup of /usr/share, peak 181 -> 172-174 MB
    tune_allocator(arenas=max(2, os.cpu_count() or 2))
    # NumPy (the index) does no linear algebra here, yet its OpenBLAS would start a thread per core that spins for
    # a while after the import: 3% of a check's CPU. Before NumPy is imported (lazily, see sauvegarde.util.lazy).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The objects made by imports live as long as the process: keep the cyclic GC from scanning them again and
    # again, and let it run less often (a backup allocates millions of short-lived, acyclic objects; collections
    # cost about 4% of a first backup's CPU).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # File names need not be UTF-8: print their bytes as they are, as ls(1) does, whatever the locale.
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        code = cli.main(args=hoist_global_options(sys.argv[1:]), prog_name="sauvegarde", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sauvegarde: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # one line, like every other error; the command's --help has the rest
        where = f"sauvegarde {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else ""
        hint = f" (see `{where or 'sauvegarde'} --help`)"
        click.echo(f"sauvegarde: error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SauvegardeError as exc:
        click.echo(f"sauvegarde: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("sauvegarde: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_FATAL)
    except Exception as exc:
        if os.environ.get("SAUVEGARDE_DEBUG"):
            raise
        click.echo(
            f"sauvegarde: internal error: {type(exc).__name__}: {exc} (set SAUVEGARDE_DEBUG=1 for details)", err=True
        )
        sys.exit(EXIT_FATAL)
    sys.exit(code if isinstance(code, int) else 0)
