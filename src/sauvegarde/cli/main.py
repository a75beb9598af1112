"""Entry point: global options, command registration, and turning errors into one line and an exit code."""

from __future__ import annotations

import atexit
import gc
import importlib
import io
import os
import sys
import threading
from typing import NoReturn

import click

from sauvegarde import __version__
from sauvegarde.cli.context import AppContext
from sauvegarde.errors import EXIT_FATAL, SauvegardeError


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or help lists it): start-up stays small."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in _DERIVE_FIRST and not {"-h", "--help"} & set(args) and not ctx.resilient_parsing:
            # the global options are parsed, the command's module not yet imported (see AppContext.derive_ahead)
            p = ctx.params
            AppContext(p.get("repo"), p.get("password_file"), p.get("password_command")).derive_ahead()
        from sauvegarde.util.malloc import tune_allocator

        # One heap arena per core rather than glibc's eight: S3 first backup of /usr/share, peak 181 -> 172-174 MB.
        # After the derivation (its threads take no arena), as ctypes adds 0.6 MiB to the process it runs on.
        tune_allocator(arenas=max(2, os.cpu_count() or 2))
        return super().resolve_command(ctx, args)

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

# commands that open the repository named by the global options, with its password, whatever their arguments
_DERIVE_FIRST = frozenset(
    {"backup", "snapshots", "ls", "restore", "dump", "diff", "forget", "mount", "check", "prune", "stats"}
)

_GLOBAL_WITH_VALUE = {"-r", "--repo", "--password-file", "--password-command"}
_GLOBAL_FLAGS = {"--json", "-q", "--quiet", "-v", "-vv", "--verbose", "--no-lock"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options given after the command name in front of it, as restic accepts them anywhere."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if (name in _GLOBAL_WITH_VALUE and "=" in arg) or arg in _GLOBAL_FLAGS:
            front.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
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


def run() -> NoReturn:
    """The ``sauvegarde`` program: :func:`main`, then out of the process without tearing the interpreter down.

    Once a command has returned, every file it wrote is closed and its lock released; what a normal exit does next
    is free every object and module one by one: 35 ms after a first backup of /usr/share (1% of it), on every
    command. The steps of a normal exit that matter still run, in the same order: non-daemon threads are waited
    for (and thread pools told to end), ``atexit`` handlers run (logging, temporary directories, coverage), the
    standard streams are flushed.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    threading._shutdown()  # type: ignore[attr-defined]  # what the interpreter calls first at exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe, a closed stream: as a normal exit, the output is lost
            code = code or EXIT_FATAL
    os._exit(code)


def _exit_code(code: object) -> int:
    """The process status :class:`SystemExit` asks for (as the interpreter reads it)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
