"""``sauvegarde web``: the dashboard (status lights, snapshots, findings, history, snapshot browser) over HTTP(S)."""

from __future__ import annotations

import os
from datetime import datetime

import click

from sauvegarde.cli.planfile import clock, plan_options
from sauvegarde.cli.serve import parse_listen, run_asgi
from sauvegarde.errors import UsageError


@click.command("web")
@plan_options
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="Address to listen on, HOST:PORT.")
@click.option(
    "--htpasswd",
    type=click.Path(dir_okay=False),
    help="Accounts (bcrypt htpasswd; add one with `sauvegarde serve adduser --htpasswd FILE USER`): login "
    "required. Mandatory beyond loopback.",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--behind-https",
    is_flag=True,
    help="A reverse proxy serves the dashboard over HTTPS: session cookies only over HTTPS, and HSTS.",
)
def command(
    plan_path: str | None,
    now: datetime | None,
    listen: str,
    htpasswd: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    behind_https: bool,
) -> None:
    """Serve the plan's dashboard: status lights per asset and repository, snapshots, findings, drill and guard
    history, charts, a snapshot browser with downloads, the DR report, Prometheus /metrics, and "run now" /
    "drill now" buttons. See docs/web.md (login, TLS, reverse proxy)."""
    from sauvegarde.plan.paths import resolve_plan_path
    from sauvegarde.web.auth import is_loopback

    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if htpasswd is not None and not os.path.isfile(htpasswd):
        raise UsageError(
            f"no htpasswd file at {htpasswd}: add users with `sauvegarde serve adduser --htpasswd FILE USER`"
        )
    if htpasswd is None and not is_loopback(host):
        raise UsageError(f"listening on {host} needs a login: pass --htpasswd FILE (or listen on 127.0.0.1)")
    from sauvegarde.web.app import WebOptions, create_app

    options = WebOptions(
        plan_path=resolve_plan_path(plan_path),
        htpasswd=htpasswd,
        https=bool(tls_cert) or behind_https,
        clock=clock(now) if now is not None else None,
    )
    from sauvegarde.server.auth import HtpasswdError

    try:
        app = create_app(options)
    except HtpasswdError as exc:
        raise UsageError(str(exc)) from None
    scheme = "https" if tls_cert else "http"  # behind a proxy: what the dashboard itself speaks
    login = "login required" if htpasswd else "no login (loopback only)"
    click.echo(f"sauvegarde: dashboard of {options.plan_path} on {scheme}://{listen} ({login})", err=True)
    try:
        run_asgi(app, host, port, tls_cert, tls_key)
    finally:
        app.state.dashboard.close()
