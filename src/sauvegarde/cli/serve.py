"""``sauvegarde serve``: host repositories over restic's REST protocol; ``serve adduser`` manages the htpasswd file."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import click

from sauvegarde.errors import UsageError
from sauvegarde.util.listen import parse_listen as listen_address


def parse_listen(text: str) -> tuple[str, int]:
    """``--listen HOST:PORT`` as a host and a port (a usage error otherwise)."""
    try:
        return listen_address(text)
    except ValueError:
        raise UsageError(f"invalid --listen {text!r}: expected HOST:PORT") from None


def run_asgi(app: Any, host: str, port: int, tls_cert: str | None, tls_key: str | None, **extra: Any) -> None:
    """Run an ASGI app with uvicorn until SIGTERM/SIGINT: h11, optional TLS, no access log or server header of
    uvicorn's own (the apps log and set their headers themselves)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="h11",
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        **extra,
    )
    uvicorn.Server(config).run()


def _json_lines(stream: TextIO) -> Any:
    def write(record: dict[str, Any]) -> None:
        stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        stream.flush()

    return write


@click.group("serve", invoke_without_command=True)
@click.option("--path", "root", type=click.Path(file_okay=False), help="Directory holding the repositories.")
@click.option("--listen", default="127.0.0.1:8000", show_default=True, help="Address to listen on, HOST:PORT.")
@click.option("--append-only", is_flag=True, help="Objects can be created and read, never deleted (locks excepted).")
@click.option("--private-repos", is_flag=True, help="Confine each user to repositories under /USER/.")
@click.option(
    "--htpasswd",
    type=click.Path(dir_okay=False),
    help="htpasswd file of bcrypt or argon2id hashes (default PATH/.htpasswd).",
)
@click.option("--no-auth", is_flag=True, help="Serve without authentication (anyone who can connect gets access).")
@click.option(
    "--max-size", type=click.IntRange(min=1), help="Quota in bytes per user (per repository without --private-repos)."
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--access-log", type=click.Path(dir_okay=False), help="Write the JSON access log here (default stderr).")
@click.option("--metrics-no-auth", is_flag=True, help="Serve /metrics without authentication.")
@click.option(
    "--metrics-user",
    "metrics_users",
    multiple=True,
    help="Only this user may read /metrics (repeatable); by default any user can, and sees only their own series"
    " with --private-repos.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds a client may stall mid-upload.",
)
@click.pass_context
def command(
    ctx: click.Context,
    root: str | None,
    listen: str,
    append_only: bool,
    private_repos: bool,
    htpasswd: str | None,
    no_auth: bool,
    max_size: int | None,
    tls_cert: str | None,
    tls_key: str | None,
    access_log: str | None,
    metrics_no_auth: bool,
    metrics_users: tuple[str, ...],
    idle_timeout: float,
) -> None:
    """Serve repositories over HTTP(S) with restic's REST protocol (restic and `rest:` clients)."""
    if ctx.invoked_subcommand is not None:
        return
    import os

    if root is None:
        raise UsageError("serve needs --path DIR")
    if not os.path.isdir(root):
        raise UsageError(f"--path {root}: no such directory")
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if no_auth and private_repos:
        raise UsageError("--private-repos needs authentication (drop --no-auth)")
    _check_metrics_users(metrics_users, no_auth or metrics_no_auth)
    if not no_auth:
        htpasswd = htpasswd or os.path.join(root, ".htpasswd")
        if not os.path.isfile(htpasswd):
            raise UsageError(
                f"no htpasswd file at {htpasswd}: add users with `sauvegarde serve adduser --htpasswd {htpasswd} USER`"
                " (or pass --no-auth explicitly)"
            )
    host, port = parse_listen(listen)
    from sauvegarde.server.app import RestServer, ServerOptions
    from sauvegarde.server.auth import HtpasswdError

    log_stream: TextIO = open(access_log, "a", encoding="utf-8") if access_log else sys.stderr  # noqa: SIM115
    options = ServerOptions(
        root=root,
        append_only=append_only,
        private_repos=private_repos,
        htpasswd=None if no_auth else htpasswd,
        no_auth=no_auth,
        max_size=max_size,
        access_log=_json_lines(log_stream),
        metrics_no_auth=metrics_no_auth,
        metrics_users=tuple(metrics_users),
        idle_timeout=idle_timeout,
    )
    try:
        server = RestServer(options)
    except HtpasswdError as exc:
        raise UsageError(str(exc)) from None
    stale = server.remove_stale_uploads()
    if stale:
        click.echo(f"sauvegarde: removed {stale} stale temporary upload file(s) under {root}", err=True)
    app = server.app()
    scheme = "https" if tls_cert else "http"
    mode = ", append-only" if append_only else ""
    click.echo(f"sauvegarde: serving {os.path.abspath(root)} on {scheme}://{listen}{mode}", err=True)
    run_asgi(app, host, port, tls_cert, tls_key, timeout_keep_alive=30)


def _check_metrics_users(users: tuple[str, ...], metrics_open: bool) -> None:
    from sauvegarde.server.auth import USER_PATTERN

    if users and metrics_open:
        raise UsageError("--metrics-user needs authentication on /metrics (drop --no-auth and --metrics-no-auth)")
    for name in users:
        if not USER_PATTERN.match(name):
            raise UsageError(f"invalid --metrics-user {name!r} (letters, digits, '.', '_', '-')")


@command.command("adduser")
@click.option("--htpasswd", "path", required=True, type=click.Path(dir_okay=False), help="The htpasswd file.")
@click.option("--cost", type=click.IntRange(4, 16), default=12, show_default=True, help="bcrypt cost.")
@click.option(
    "--hash",
    "scheme",
    type=click.Choice(["bcrypt", "argon2id"]),
    default="bcrypt",
    show_default=True,
    help="Hash to store: bcrypt (at --cost), or argon2id (64 MiB, t=3, p=4; no 72-byte password limit).",
)
@click.argument("user")
def adduser(path: str, cost: int, scheme: str, user: str) -> None:
    """Add USER (or change its password) in an htpasswd file; the password is prompted or read from stdin."""
    from sauvegarde.server.auth import add_user

    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("empty password")
    try:
        replaced = add_user(path, user, password, cost, scheme)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    click.echo(f"sauvegarde: {'updated' if replaced else 'added'} user {user} in {path}", err=True)
