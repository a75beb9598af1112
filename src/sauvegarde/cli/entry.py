"""The ``sauvegarde`` program: the repository key derived before anything heavy is loaded, the command run
(:mod:`sauvegarde.cli.main`), and the exit.

Argon2id takes 64 MiB while it runs, on top of whatever the process holds. Reading the global options from the
command line here, without click, and deriving the key of a local repository whose password comes from a file or
the environment before click, the command's module, the repository package and even typing are imported, puts
those 64 MiB on an 11.5 MiB process instead of 20-21 (the peak of ``check`` and of a restore of one large file).
Up to the derivation, this module and those it imports are kept to JSON and libargon2's bindings. Opening the
repository then takes the key (:func:`sauvegarde.crypto.kdf.derive_ahead`). Best effort only: a remote
repository, a password that only a command or a prompt gives, an option this reading misses, or anything
unexpected, and the command derives the key itself as before (and reports what is wrong).
"""

from __future__ import annotations

import atexit
import os
import sys

from sauvegarde.errors import EXIT_FATAL, SauvegardeError
from sauvegarde.util import xdg

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing, threading, and the modules of a local storage, are imported after the derivation
    from typing import NoReturn

GLOBAL_WITH_VALUE = frozenset({"-r", "--repo", "--password-file", "--password-command"})
GLOBAL_FLAGS = frozenset({"--json", "-q", "--quiet", "-v", "-vv", "--verbose", "--no-lock"})

# commands that open the repository named by the global options, with its password, whatever their arguments
_DERIVE_FIRST = frozenset(
    {"backup", "snapshots", "ls", "restore", "dump", "diff", "forget", "mount", "check", "prune", "stats"}
)


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
        if (name in GLOBAL_WITH_VALUE and "=" in arg) or arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def global_options(argv: list[str]) -> tuple[dict[str, str], str | None]:
    """The global options with a value (``--repo`` for ``-r`` too) and the command name, as click will read them
    from the hoisted command line; the command is None when help is asked for or the line is not understood."""
    values: dict[str, str] = {}
    args = hoist_global_options(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in GLOBAL_WITH_VALUE and eq:
            values["--repo" if name == "-r" else name] = value
        elif arg in GLOBAL_WITH_VALUE and i + 1 < len(args):
            values["--repo" if arg == "-r" else arg] = args[i + 1]
            i += 1
        elif arg.startswith("-r") and len(arg) > 2 and not arg.startswith("--"):
            values["--repo"] = arg[2:]  # click's -rVALUE
        elif arg in GLOBAL_FLAGS:
            pass
        elif arg.startswith("-"):
            return values, None  # --help, --version, or an option this reading does not know
        else:
            return values, (None if {"-h", "--help"} & set(args[i + 1 :]) else arg)
        i += 1
    return values, None


def derive_first(argv: list[str]) -> None:
    """Derive the key the command will open its repository with, if it is a local one and the password comes from a
    file or the environment (see the module's docstring)."""
    values, command = global_options(argv)
    if command not in _DERIVE_FIRST:
        return
    given = values.get("--repo") or os.environ.get("SAUVEGARDE_REPOSITORY") or None
    try:
        location = given or xdg.default_repository()
        if ":" in location and not location.startswith("/"):
            return  # perhaps SCHEME:...; a remote store is opened once, by the command
        from sauvegarde.cli.password import password_from_sources

        password = password_from_sources(
            values.get("--password-file"), values.get("--password-command"), given is None, run_command=False
        )
        if not password:
            return
        from sauvegarde.crypto.kdf import derive_ahead
        from sauvegarde.repository import keyheader, layout

        first = first_key_file(os.path.join(os.path.abspath(location), layout.KEYS))
        if first is not None:
            with open(first, "rb") as f:
                derive_ahead(password.encode(), *keyheader.kdf_inputs(f.read()))
    except (SauvegardeError, OSError, ValueError):
        return


def first_key_file(keys: str) -> str | None:
    """The key file of a local repository that opening it tries first (the first name that LocalStorage.list gives
    under ``keys/``, sorted), read without the storage's modules; None if there is none."""
    names = sorted(entry.name for entry in os.scandir(keys) if entry.is_file() and not entry.name.startswith(".tmp-"))
    return os.path.join(keys, names[0]) if names else None


def run() -> NoReturn:
    """The ``sauvegarde`` program: the key derived first, :func:`sauvegarde.cli.main.main`, then out of the process
    without tearing the interpreter down.

    Once a command has returned, every file it wrote is closed and its lock released; what a normal exit does next
    is free every object and module one by one: 35 ms after a first backup of /usr/share (1% of it), on every
    command. The steps of a normal exit that matter still run, in the same order: non-daemon threads are waited
    for (and thread pools told to end), ``atexit`` handlers run (logging, temporary directories, coverage), the
    standard streams are flushed.
    """
    try:
        try:
            derive_first(sys.argv[1:])
        except KeyboardInterrupt:
            print("sauvegarde: interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        from sauvegarde.cli.main import main

        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    import threading

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
