"""The ASGI application of ``sauvegarde serve``: restic's REST backend protocol (v1 and v2) over a served root.

``/{REPO/}config`` and ``/{REPO/}{type}/{name}`` take GET (with ``Range``), HEAD, POST and DELETE;
``/{REPO/}{type}/`` lists (JSON names, or names and sizes when the client accepts
``application/vnd.x.restic.rest.v2``); ``POST /{REPO/}?create=true`` creates a repository. Bodies are streamed to
a temporary file next to the object (see :mod:`sauvegarde.server.files`), never held whole. Every request is
authenticated (unless ``no_auth``), confined to ``/USER/`` with ``private_repos``, counted in ``/metrics`` and
written to the access log as one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from sauvegarde.server.auth import USER_PATTERN, Htpasswd, parse_basic
from sauvegarde.server.files import Exists, NotFound, ServedRoot, Upload
from sauvegarde.server.metrics import ServerMetrics
from sauvegarde.server.quota import Quota, QuotaExceeded
from sauvegarde.server.ranges import RangeError, parse_range
from sauvegarde.server.storage_paths import BadPath, Target, parse_target

V2 = "application/vnd.x.restic.rest.v2"
DRAIN_LIMIT = 64 * 1024 * 1024  # a refused body up to this size is read to its end, so the client sees the status
READ_CHUNK = 1024 * 1024
STALE_UPLOAD_SECONDS = 3600.0  # a .tmp- file untouched this long (or twice the idle timeout) is no live upload's
APPEND_ONLY_REFUSAL = "append-only repository: deleting is refused (pruning belongs to the server side)"

AccessLog = Callable[[dict[str, Any]], None]
T = TypeVar("T")


@dataclass
class ServerOptions:
    root: str
    append_only: bool = False
    private_repos: bool = False
    htpasswd: str | None = None
    no_auth: bool = False
    max_size: int | None = None
    idle_timeout: float = 60.0
    access_log: AccessLog | None = None
    metrics_no_auth: bool = False
    metrics_users: tuple[str, ...] = ()  # when set, only they may read /metrics (all series)


class HttpError(Exception):
    def __init__(self, status: int, message: str, event: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.event = event


@dataclass
class _Exchange:
    """What the access log and metrics learn about one request."""

    user: str = "-"
    repo: str = "-"
    received: int = 0
    sent: int = 0
    event: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RestServer:
    def __init__(self, options: ServerOptions) -> None:
        if not options.no_auth and not options.htpasswd:
            raise ValueError("authentication needs an htpasswd file (or no_auth)")
        if options.metrics_users and (options.no_auth or options.metrics_no_auth):
            raise ValueError("metrics_users needs authentication on /metrics")
        self.options = options
        self.served = ServedRoot(options.root)
        self.htpasswd = Htpasswd(options.htpasswd) if options.htpasswd and not options.no_auth else None
        self.metrics = ServerMetrics()
        self.quota = Quota(options.max_size, self.served.usage)

    def remove_stale_uploads(self) -> int:
        """Remove temporary files that no upload can still own (a killed server's), before serving; returns how many.

        A live upload writes at least every ``idle_timeout`` seconds, and another server sharing the root has the
        same bound, so a file untouched for an hour, or twice the idle timeout if longer, is nobody's."""
        return self.served.remove_stale_temporaries(max(STALE_UPLOAD_SECONDS, 2 * self.options.idle_timeout))

    def app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "DELETE"]
        return Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/{path:path}", self.handle, methods=methods),
            ]
        )

    # ---- plumbing -----------------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        ok = os.path.isdir(self.served.root) and os.access(self.served.root, os.W_OK)
        return JSONResponse({"status": "ok" if ok else "root not writable"}, status_code=200 if ok else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        """All series for ``--metrics-no-auth`` (anyone), a ``--metrics-user`` (others get 403), or any user without
        ``--private-repos``; under ``--private-repos`` otherwise, only the series of the user's own requests, so a
        client never reads another client's user or repository names."""
        only: str | None = None
        if not self.options.metrics_no_auth:
            try:
                user = await self._authenticate(request)
                if self.options.metrics_users:
                    if user not in self.options.metrics_users:
                        raise HttpError(403, "forbidden: /metrics is for the --metrics-user accounts")
                elif self.options.private_repos:
                    only = user
            except HttpError as exc:
                return self._error(exc)
        return Response(self.metrics.render(only), media_type="text/plain; version=0.0.4")

    def _error(self, exc: HttpError) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="sauvegarde"'} if exc.status == 401 else None
        return PlainTextResponse(f"{exc}\n", exc.status, headers=headers)

    async def _authenticate(self, request: Request) -> str:
        if self.htpasswd is None:
            return "-"
        creds = parse_basic(request.headers.get("authorization"))
        if creds is None:
            raise HttpError(401, "authentication required")
        user, password = creds
        if not USER_PATTERN.match(user) or not await anyio.to_thread.run_sync(self.htpasswd.check, user, password):
            raise HttpError(401, "wrong user name or password", event="auth-failed")
        return user

    def _authorize(self, user: str, target: Target) -> None:
        if self.options.private_repos and (not target.repo or target.repo[0] != user):
            raise HttpError(403, "forbidden: private repositories live under /USER/", event="wrong-user")

    def _quota_scope(self, target: Target) -> tuple[str, ...]:
        return target.repo[:1] if self.options.private_repos else target.repo

    async def handle(self, request: Request) -> Response:
        start = time.perf_counter()
        ex = _Exchange()
        raw = request.scope.get("raw_path") or request.url.path.encode()
        try:
            ex.user = await self._authenticate(request)
            try:
                target = parse_target(raw)
            except BadPath as exc:
                raise HttpError(400, f"bad request: {exc}", event="bad-path") from None
            ex.repo = target.repo_label
            self._authorize(ex.user, target)
            response = await self._dispatch(request, target, ex)
        except HttpError as exc:
            ex.event = ex.event or exc.event
            response = self._error(exc)
        except ClientDisconnect:
            ex.event = "client-disconnected"
            response = PlainTextResponse("client disconnected\n", 400)
        self.metrics.observe(ex.repo, ex.user, request.method, response.status_code, ex.received, ex.sent)
        self._log(request, raw, response.status_code, ex, start)
        return response

    def _log(self, request: Request, raw: bytes, status: int, ex: _Exchange, start: float) -> None:
        if self.options.access_log is None:
            return
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "remote": request.client.host if request.client else None,
            "user": ex.user,
            "method": request.method,
            "path": raw.decode("latin-1")[:512],
            "repo": ex.repo,
            "status": status,
            "bytes_in": ex.received,
            "bytes_out": ex.sent,
            "ms": round((time.perf_counter() - start) * 1000, 1),
        }
        if ex.event:
            record["event"] = ex.event
        record.update(ex.extra)
        self.options.access_log(record)

    # ---- the API ------------------------------------------------------------------------------------------

    async def _dispatch(self, request: Request, target: Target, ex: _Exchange) -> Response:
        method = request.method
        if target.kind == "repo":
            if method == "POST" and request.query_params.get("create") == "true":
                try:
                    await anyio.to_thread.run_sync(self.served.create_repo, target.repo)
                except NotFound:
                    raise HttpError(409, "cannot create the repository: something else is in the way") from None
                return Response(status_code=200)
            raise HttpError(404 if method in ("GET", "HEAD") else 400, "not an API path")
        if target.is_listing:
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "listings are read with GET")
            return await self._list(request, target)
        if method == "HEAD":
            size = await self._run(self.served.stat, target)
            return Response(status_code=200, headers={"Content-Length": str(size)})
        if method == "GET":
            return await self._get(request, target, ex)
        if method == "POST":
            return await self._post(request, target, ex)
        return await self._delete(target, ex)

    async def _run(self, fn: Callable[..., Any], target: Target) -> Any:
        try:
            return await in_thread_to_the_end(fn, target.repo, target.kind, target.name or "config")
        except NotFound:
            raise HttpError(404, "not found") from None

    async def _list(self, request: Request, target: Target) -> Response:
        try:
            items = await anyio.to_thread.run_sync(self.served.list, target.repo, target.kind)
        except NotFound:
            raise HttpError(404, "no repository here") from None
        if V2 in request.headers.get("accept", ""):
            return JSONResponse([{"name": n, "size": s} for n, s in items], media_type=V2)
        return JSONResponse([n for n, _ in items])

    async def _get(self, request: Request, target: Target, ex: _Exchange) -> Response:
        fd, size = await self._run(self.served.open_object, target)
        try:
            rng = parse_range(request.headers.get("range"), size)
        except RangeError as exc:
            os.close(fd)
            headers = {"Content-Range": f"bytes */{size}"} if exc.status == 416 else None
            return PlainTextResponse(f"{exc}\n", exc.status, headers=headers)
        start, end = rng or (0, size)
        headers = {"Content-Length": str(end - start), "Accept-Ranges": "bytes"}
        if rng is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        status = 206 if rng is not None else 200
        ex.sent = end - start
        if end - start <= READ_CHUNK:
            try:
                data = await anyio.to_thread.run_sync(os.pread, fd, end - start, start)
            finally:
                os.close(fd)
            return Response(data, status, headers=headers, media_type="application/octet-stream")
        return StreamingResponse(_read(fd, start, end), status, headers=headers, media_type="application/octet-stream")

    async def _delete(self, target: Target, ex: _Exchange) -> Response:
        if self.options.append_only and target.kind != "locks":
            raise HttpError(403, APPEND_ONLY_REFUSAL, event="append-only-delete-refused")
        size = await self._run(self.served.delete, target)
        self.quota.release(self._quota_scope(target), size)
        return Response(status_code=200)

    async def _post(self, request: Request, target: Target, ex: _Exchange) -> Response:
        length_header = request.headers.get("content-length")
        length = None
        if length_header is not None:
            if not length_header.isdigit():
                raise HttpError(400, "invalid Content-Length")
            length = int(length_header)
        scope = self._quota_scope(target)
        body = request.stream().__aiter__()
        try:
            return await self._receive(target, ex, body, length, scope)
        except HttpError as exc:
            if exc.status in (409, 413, 507) and length is not None and length - ex.received <= DRAIN_LIMIT:
                await self._drain(body)  # let the client finish sending, so it reads our answer
            raise

    async def _receive(
        self, target: Target, ex: _Exchange, body: AsyncIterator[bytes], length: int | None, scope: tuple[str, ...]
    ) -> Response:
        quota = self.quota
        if quota.max_bytes is not None and length is not None:
            if length > quota.max_bytes:
                raise HttpError(413, "request body larger than the quota", event="quota-exceeded")
            used = await anyio.to_thread.run_sync(quota.used, scope)
            if used + length > quota.max_bytes:
                raise HttpError(507, "quota exceeded", event="quota-exceeded")
        try:
            upload = await in_thread_to_the_end(Upload, self.served, target.repo, target.kind, target.name or "config")
        except NotFound:
            raise HttpError(404, "no repository here") from None
        reserved = 0
        try:
            while True:
                try:
                    async with asyncio.timeout(self.options.idle_timeout):  # not wait_for: 3.11's can eat a cancel
                        chunk = await body.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise HttpError(408, "request body too slow", event="body-timeout") from None
                if not chunk:
                    continue
                if length is not None and upload.size + len(chunk) > length:
                    raise HttpError(400, "body longer than Content-Length")
                try:
                    quota.reserve(scope, len(chunk), upload.size + len(chunk))
                except QuotaExceeded as exc:
                    raise HttpError(413 if exc.too_large else 507, str(exc), event="quota-exceeded") from None
                reserved += len(chunk)
                ex.received += len(chunk)
                upload.write(chunk)
            if length is not None and upload.size != length:
                raise HttpError(400, "body shorter than Content-Length", event="truncated-body")
            try:
                await in_thread_to_the_end(upload.commit)
            except Exists:
                raise HttpError(409, "object already exists (objects are write-once)") from None
        except BaseException:
            quota.release(scope, reserved)
            upload.abort()
            raise
        self.metrics.wrote(target.repo_label, ex.user)
        return Response(status_code=200)

    async def _drain(self, body: AsyncIterator[bytes]) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.options.idle_timeout):
                async for _ in body:
                    pass


async def in_thread_to_the_end(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, awaited to its end even if the request is cancelled meanwhile.

    A native asyncio cancellation (uvicorn cancels the requests still running when a shutdown outlasts
    ``timeout_graceful_shutdown``, which ``serve`` leaves unset today) does not stop a worker thread, and
    ``anyio.to_thread.run_sync`` would raise at once, dropping what the thread returns: an :class:`Upload` just
    created (a temporary file nobody removes, two open descriptors), or an fd; or letting the request's cleanup
    close an upload's descriptors while the thread still fsyncs and links them. So we wait for the thread, return
    its result, and re-arm the cancellation: it surfaces at the request's next ``await``, where the usual cleanup
    (``except BaseException: upload.abort()``) runs on a settled state.
    """
    await asyncio.sleep(0)  # a cancellation already pending is raised here, before the thread starts anything
    job = asyncio.ensure_future(anyio.to_thread.run_sync(fn, *args))
    task = asyncio.current_task()
    interrupted = False
    while not job.done():
        try:
            await asyncio.wait([job])
        except asyncio.CancelledError:
            interrupted = True
            if task is not None:
                task.uncancel()  # taken back for now, re-armed below
    if interrupted and task is not None:
        task.cancel()
    return job.result()


def _read(fd: int, start: int, end: int) -> Iterator[bytes]:
    """Chunks of ``fd`` from ``start`` to ``end``; closes ``fd`` (Starlette runs it in a worker thread)."""
    try:
        pos = start
        while pos < end:
            data = os.pread(fd, min(READ_CHUNK, end - pos), pos)
            if not data:
                break
            pos += len(data)
            yield data
    finally:
        os.close(fd)


def create_app(options: ServerOptions) -> Starlette:
    return RestServer(options).app()
