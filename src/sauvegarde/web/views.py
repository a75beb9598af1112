"""The dashboard's pages and actions, each a factory taking the :class:`Dashboard` and returning a handler.

Blocking work (opening repositories, reading trees, SQLite) runs in Starlette's thread pool.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.rules import SEVERITIES
from sauvegarde.repository.tree import DIR, FILE
from sauvegarde.state.peers import GuardVerdict, guard_verdicts
from sauvegarde.web import browse as paths
from sauvegarde.web.app import REPORT_CSP
from sauvegarde.web.auth import FormTooLarge, csrf_ok, read_form
from sauvegarde.web.charts import line_chart
from sauvegarde.web.data import SnapshotRow, history

if TYPE_CHECKING:
    from sauvegarde.web.app import Dashboard, Handler


def _raw_path(request: Request) -> bytes:
    raw = request.scope.get("raw_path")
    return raw.split(b"?", 1)[0] if isinstance(raw, bytes) else request.url.path.encode()


def _safe_next(target: str | None) -> str:
    """Where to go after login: a local path only (no ``//host`` nor scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def checked_form(request: Request) -> dict[str, str] | Response:
    """A POSTed form that carries the session's CSRF token, or the response refusing it (413, 403)."""
    try:
        form = await read_form(request)
    except FormTooLarge:
        return PlainTextResponse("form too large\n", 413)
    if not csrf_ok(request, form.get("csrf")):
        return PlainTextResponse("invalid or missing CSRF token: reload the page\n", 403)
    return form


def login_form(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        if not dash.accounts.required:
            return RedirectResponse("/", 303)
        return dash.page(request, "login.html", next=_safe_next(request.query_params.get("next")), error=None)

    return handler


def login(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        form = await checked_form(request)
        if isinstance(form, Response):
            return form
        target = _safe_next(form.get("next"))
        user = form.get("user", "")
        wait = dash.accounts.throttle.wait(user)
        if dash.accounts.required and wait > 0:
            error = f"Too many wrong passwords for this user: try again in {wait:.0f} seconds."
            response = dash.page(request, "login.html", status=429, next=target, error=error)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if not dash.accounts.required or await dash.accounts.check(user, form.get("password", "")):
            dash.accounts.log_in(request, user or "-")
            return RedirectResponse(target, 303)
        return dash.page(request, "login.html", status=401, next=target, error="Wrong user name or password.")

    return handler


def logout(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        form = await checked_form(request)
        if isinstance(form, Response):
            return form
        dash.accounts.log_out(request)
        return RedirectResponse("/login" if dash.accounts.required else "/", 303)

    return handler


def latest_guard(dash: Dashboard) -> dict[str, GuardVerdict]:
    """The newest guard verdict of each asset."""
    return {v.asset: v for v in guard_verdicts(dash.db)}  # oldest first: the newest wins


def status(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        ov = await run_in_threadpool(dash.overview.get)
        guard = await run_in_threadpool(latest_guard, dash)
        counts = {s: sum(1 for f in ov.findings if f.severity == s) for s in SEVERITIES}
        return dash.page(
            request,
            "status.html",
            overview=ov,
            guard=guard,
            counts=counts,
            jobs=dash.jobs.recent(),
            running={k: dash.jobs.running(k) is not None for k in ("run", "drill")},
        )

    return handler


def findings(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        ov = await run_in_threadpool(dash.overview.get)
        order = {s: i for i, s in enumerate(SEVERITIES)}
        rows = sorted(ov.findings, key=lambda f: (order.get(f.severity, 99), f.rule, f.subject))
        return dash.page(request, "findings.html", findings=rows, overview=ov)

    return handler


def repository(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in dash.plan.repositories:
            return dash.page(request, "error.html", status=404, message=f"no repository {name} in the plan")
        rows: list[SnapshotRow] = []
        error = None
        try:
            rows = await run_in_threadpool(dash.pool.snapshots, name)
        except (SauvegardeError, OSError) as exc:
            error = str(exc)
        return dash.page(request, "repository.html", name=name, rp=dash.plan.repositories[name], rows=rows, error=error)

    return handler


def _charts(dash: Dashboard) -> dict[str, Any]:
    """The history page's data: charts of stored data and backup durations, drills and guard verdicts."""
    hist = history(dash.db)
    ov = dash.overview.get()
    stored: dict[str, list[tuple[float, float]]] = {}
    for name in dash.plan.repositories:
        try:
            rows = dash.pool.snapshots(name, refresh=False)
        except (SauvegardeError, OSError):
            continue
        total = 0.0
        for row in reversed(rows):  # oldest first
            total += row.added
            stored.setdefault(name, []).append((row.snap.datetime.timestamp(), total))
    sizes = {
        asset: [
            (s.time.timestamp(), float(s.size))
            for s in ov.observation.repository(a.repositories[0]).snapshots.get(asset, [])
        ]
        for asset, a in dash.plan.assets.items()
    }
    durations: dict[str, list[tuple[float, float]]] = {}
    for step in hist.backups:
        durations.setdefault(step.asset or "?", []).append((step.started, step.duration_s))

    restores: dict[str, list[tuple[float, float]]] = {}
    for d in hist.drills:
        took = d.estimated_full_s if d.estimated_full_s is not None else d.duration_s
        restores.setdefault(d.asset, []).append((d.started, took))

    def size_fmt(v: float) -> str:
        return _short_bytes(v)

    return {
        "charts": [
            line_chart("Data stored per repository (added by backups and copies, before prune)", stored, size_fmt),
            line_chart("Asset size at each snapshot", sizes, size_fmt),
            line_chart("Backup duration", durations, seconds_label),
            line_chart("Full restore time measured by drills (estimated from samples)", restores, seconds_label),
        ],
        "drills": list(reversed(hist.drills)),
        "guard": list(reversed(hist.guard)),
        "backups": list(reversed(hist.backups))[:50],
    }


def seconds_label(v: float) -> str:
    """An axis label: ``40ms``, ``2.5s``, ``45s``, ``12m``, ``3.5h``."""
    if v < 1:
        return f"{v * 1000:.0f}ms"
    if v >= 3600:
        return f"{v / 3600:.1f}h"
    if v >= 120:
        return f"{v / 60:.0f}m"
    return f"{v:.0f}s" if v >= 10 else f"{v:.1f}s"


def _short_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" or n >= 10 else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.0f}"


def history_page(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        data = await run_in_threadpool(_charts, dash)
        return dash.page(request, "history.html", **data)

    return handler


def _not_found(dash: Dashboard, request: Request, exc: OSError) -> Response:
    code = 404 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 500
    return dash.page(request, "error.html", status=code, message="no such file or directory in the snapshot")


def browse(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            loc = paths.parse(_raw_path(request), b"/browse/")
        except paths.BadPath as exc:
            return dash.page(request, "error.html", status=400, message=f"bad path: {exc}")
        if loc.repository not in dash.plan.repositories:
            return dash.page(request, "error.html", status=404, message=f"no repository {loc.repository}")
        try:
            browser = await run_in_threadpool(dash.pool.browser, loc.repository)
            node = await run_in_threadpool(browser.lookup, loc.browser_path)
            if node.type == DIR:
                nodes = await run_in_threadpool(browser.listdir, loc.browser_path)
                entries = [paths.entry(loc, n) for n in nodes]
                return dash.page(request, "browse.html", loc=loc, entries=entries, crumbs=loc.crumbs())
        except OSError as exc:
            return _not_found(dash, request, exc)
        except SauvegardeError as exc:
            dash.pool.drop(loc.repository)
            return dash.page(request, "error.html", status=502, message=str(exc))
        return dash.page(
            request,
            "file.html",
            loc=loc,
            name=paths.display(node.name),
            rows=paths.metadata(node),
            crumbs=loc.crumbs()[:-1],
            download=loc.url("download") if node.type == FILE else None,
        )

    return handler


def download(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            loc = paths.parse(_raw_path(request), b"/download/")
        except paths.BadPath as exc:
            return PlainTextResponse(f"bad path: {exc}\n", 400)
        if loc.repository not in dash.plan.repositories or not loc.parts:
            return PlainTextResponse("not found\n", 404)
        try:
            browser = await run_in_threadpool(dash.pool.browser, loc.repository)
            node = await run_in_threadpool(browser.lookup, loc.browser_path)
            if node.type != FILE:
                return PlainTextResponse("not a regular file\n", 404)
            content = await run_in_threadpool(browser.open, node)
        except OSError:
            return PlainTextResponse("not found\n", 404)
        except SauvegardeError as exc:
            dash.pool.drop(loc.repository)
            return PlainTextResponse(f"{exc}\n", 502)
        headers = {
            "Content-Disposition": paths.content_disposition(node.name),
            "Content-Length": str(content.size),
        }
        return StreamingResponse(paths.chunks(content), headers=headers, media_type="application/octet-stream")

    return handler


def action(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        form = await checked_form(request)
        if isinstance(form, Response):
            return form
        kind = request.path_params["kind"]
        if kind not in ("run", "drill") or (kind == "drill" and not dash.drill):
            return PlainTextResponse("no such action\n", 404)
        asset = form.get("asset") or None
        if asset is not None and asset not in dash.plan.assets:
            return PlainTextResponse("no such asset\n", 400)
        await run_in_threadpool(dash.jobs.start, kind, asset, str(getattr(request.state, "user", "-")))
        return RedirectResponse("/", 303)

    return handler


def metrics(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        body = await run_in_threadpool(dash.metrics)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return handler


def report(dash: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        try:
            html = await run_in_threadpool(dash.report, dash.plan, dash.db, dash.clock())
        except Exception as exc:  # the page says what failed; the rest of the dashboard goes on
            message = f"the report could not be built: {type(exc).__name__}: {exc}"
            return dash.page(request, "error.html", status=500, heading="Report failed", message=message)
        return HTMLResponse(str(html), headers={"Content-Security-Policy": REPORT_CSP})

    return handler
