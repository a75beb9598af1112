"""The ASGI application of ``sauvegarde web``: routes, the login gate, security headers and page rendering.

Pages are rendered on the server with Jinja2 (autoescaped) and one stylesheet; there is no script at all, so the
Content-Security-Policy forbids every script. Pages carry ``Cache-Control: no-store`` (they show backup data), the
stylesheet may be cached. Everything is read-only except two POST actions, each checked against the session's
CSRF token. The page handlers are in :mod:`sauvegarde.web.views`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sauvegarde.plan.load import load_plan
from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.report.document import render_html
from sauvegarde.report.metrics import Facts, exposition
from sauvegarde.state.db import StateDB, default_path
from sauvegarde.util.units import human_bytes
from sauvegarde.web.actions import Jobs, drill_available
from sauvegarde.web.auth import Accounts, csrf_token
from sauvegarde.web.browse import path_url
from sauvegarde.web.data import Clock, OverviewCache, RepositoryPool, when

HERE = os.path.dirname(__file__)
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# the DR document is standalone HTML (its own inline styles, charts as data: images); still no script
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SESSION_COOKIE = "sauvegarde_web"
SESSION_HOURS = 12

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Handler = Callable[[Request], Awaitable[Response]]


class AnyPathConvertor(Convertor[str]):
    """Like ``path``, but matching names with a newline too (``.`` alone stops at one); the handlers parse the
    raw path themselves."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())


@dataclass
class WebOptions:
    plan_path: str
    htpasswd: str | None = None  # None: no login (the command allows it on loopback only)
    https: bool = False  # served over HTTPS (itself or a proxy): Secure cookies and HSTS
    clock: Clock | None = None  # the real clock unless given (tests, ``--now``)
    status_ttl: float = 15.0


class SecurityHeaders:
    """Adds the security headers to every response, and ``no-store`` to everything but the stylesheet."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):  # the report sets its own
                    headers.append((b"content-security-policy", CSP.encode()))
                headers += [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),  # not no-referrer: it makes form POSTs send Origin: null
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                if self.https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_name(host: str) -> str:
    """The name in a ``Host`` header value (``[::1]:8080`` -> ``::1``, ``Example.org:80`` -> ``example.org``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    """Refuses what a browser would only send when tricked.

    Without login (loopback only), a ``Host`` other than a loopback name means a page elsewhere resolved its own
    name to 127.0.0.1 (DNS rebinding) and is reading the dashboard: 421. A POST whose ``Origin`` names another host
    (``null`` included: a sandboxed or file page), or that the browser marks ``Sec-Fetch-Site: cross-site``, is
    refused (403) before the CSRF check.
    """

    def __init__(self, app: ASGIApp, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "")
            refusal: Response | None = None
            if self.loopback_only and host_name(host) not in LOOPBACK_HOSTS:
                refusal = PlainTextResponse("this dashboard answers on its loopback address only\n", 421)
            elif scope.get("method") == "POST":
                origin = headers.get("origin")
                if origin is not None and host_name(urlsplit(origin).netloc) != host_name(host):
                    refusal = PlainTextResponse("cross-origin request refused\n", 403)
                elif headers.get("sec-fetch-site") == "cross-site":
                    refusal = PlainTextResponse("cross-site request refused\n", 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Dashboard:
    """The dashboard's shared state: plan, state database, caches, actions, accounts, templates."""

    def __init__(self, options: WebOptions) -> None:
        from datetime import UTC

        self.options = options
        self.plan = load_plan(options.plan_path)
        self.db = StateDB(default_path(self.plan.settings.state_dir))
        self.clock: Clock = options.clock or (lambda: datetime.now(UTC))
        self.overview = OverviewCache(self.plan, self.db, self.clock, options.status_ttl)
        self.pool = RepositoryPool(self.plan)
        self.jobs = Jobs(options.plan_path, on_done=self.changed)
        self.accounts = Accounts(options.htpasswd)
        self.drill = drill_available()
        self.report: Callable[[Plan, StateDB, datetime], str] = render_html
        self.env = Environment(
            loader=FileSystemLoader(os.path.join(HERE, "templates")),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["path_url"] = path_url
        self.env.filters.update(
            bytes=lambda n: human_bytes(float(n or 0)),
            when=when,
            duration=lambda s: "—" if s is None else format_duration_s(float(s)),
        )

    def metrics(self) -> bytes:
        """The Prometheus exposition of the current overview (the same gathering the pages show)."""
        ov = self.overview.get()
        return exposition(Facts(self.plan, ov.observation, ov.findings, self.db))

    def changed(self) -> None:
        """An action ended: the next page gathers afresh."""
        self.overview.invalidate()

    def close(self) -> None:
        self.jobs.wait_all(0)
        self.pool.close()
        self.db.close()

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        start = time.perf_counter()
        html = self.env.get_template(template).render(
            csrf=csrf_token(request),
            user=getattr(request.state, "user", None),
            login=self.accounts.required,
            plan=self.plan,
            drill=self.drill,
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status)
        response.headers["server-timing"] = f"render;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response

    def gate(self, handler: Handler) -> Handler:
        """``handler`` behind the login: pages redirect to /login, anything else gets 401."""

        async def gated(request: Request) -> Response:
            user = await self.accounts.user(request)
            if user is None:
                if request.method == "GET" and not request.url.path.startswith(("/download/", "/metrics")):
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"/login?next={target}", status_code=303)
                return PlainTextResponse(
                    "login required\n", 401, headers={"WWW-Authenticate": 'Basic realm="sauvegarde web"'}
                )
            request.state.user = user
            return await handler(request)

        return gated


def format_duration_s(seconds: float) -> str:
    from datetime import timedelta

    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds >= 3600:  # an age in hours needs no seconds
        return format_duration(timedelta(minutes=round(seconds / 60)))
    return format_duration(timedelta(seconds=round(seconds)))


def create_app(options: WebOptions) -> Starlette:
    from sauvegarde.web import views

    dash = Dashboard(options)
    g = dash.gate
    routes = [
        Route("/login", views.login_form(dash), methods=["GET"]),
        Route("/login", views.login(dash), methods=["POST"]),
        Route("/logout", views.logout(dash), methods=["POST"]),
        Route("/healthz", views.healthz, methods=["GET"]),
        Route("/", g(views.status(dash)), methods=["GET"]),
        Route("/findings", g(views.findings(dash)), methods=["GET"]),
        Route("/history", g(views.history_page(dash)), methods=["GET"]),
        Route("/repositories/{name}", g(views.repository(dash)), methods=["GET"]),
        Route("/browse/{rest:anypath}", g(views.browse(dash)), methods=["GET"]),
        Route("/download/{rest:anypath}", g(views.download(dash)), methods=["GET"]),
        Route("/actions/{kind}", g(views.action(dash)), methods=["POST"]),
        Route("/metrics", g(views.metrics(dash)), methods=["GET"]),
        Route("/report", g(views.report(dash)), methods=["GET"]),
        Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders, https=options.https),
        Middleware(RequestGuard, loopback_only=not dash.accounts.required),
        Middleware(
            SessionMiddleware,
            secret_key=secrets.token_urlsafe(32),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="strict",
            https_only=options.https,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.dashboard = dash
    return app
