"""REST storage: a repository behind restic's REST backend protocol (``sauvegarde serve`` or restic's rest-server).

Location: ``rest:http(s)://[USER:PASS@]HOST:PORT/REPO`` (``SAUVEGARDE_REST_USER`` / ``SAUVEGARDE_REST_PASSWORD``
when the URL has none; ``SAUVEGARDE_REST_CACERT`` names a CA bundle for a private TLS certificate). Storage names
map onto REST paths as :mod:`sauvegarde.storage.rest_names` says. The password travels only in the
``Authorization`` header: :attr:`RestStorage.location`, and so every message, shows at most the user name.

Status codes: 404 is :class:`ObjectNotFound`, 409 :class:`ObjectExists`, 401/403 a permanent "access denied",
413/507 a quota refusal, 408, 429 and 5xx transient (retried by the wrapper), as are connection failures. A 403 to
a DELETE from an append-only server is :class:`DeletionRefused`, whose one line says pruning belongs to the server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from sauvegarde.errors import ObjectExists, ObjectNotFound, StorageError, TransientStorageError, UsageError
from sauvegarde.storage.base import Buffer, ObjectInfo, check_name, check_range
from sauvegarde.storage.rest_names import EXTRA_TYPES, from_rest, to_rest, types_for_prefix, valid_rest_name
from sauvegarde.util.urls import redact_url

V2 = "application/vnd.x.restic.rest.v2"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class DeletionRefused(StorageError):
    """An append-only server refused a deletion."""


@dataclass(frozen=True)
class RestLocation:
    scheme: str
    host: str
    port: int
    path: str  # "" for the server's root repository, else "/a/b"
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, rest: str) -> RestLocation:
        """Parse the part after ``rest:``."""
        usage = f"invalid REST location rest:{redact_url(rest)}: expected rest:http(s)://[USER:PASS@]HOST:PORT/REPO"
        try:
            parts = urlsplit(rest)
            port = parts.port
        except ValueError:
            raise UsageError(usage) from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(usage)
        user = unquote(parts.username) if parts.username is not None else os.environ.get("SAUVEGARDE_REST_USER")
        password = unquote(parts.password) if parts.password is not None else None
        if password is None and user is not None:
            password = os.environ.get("SAUVEGARDE_REST_PASSWORD")
        path = parts.path.rstrip("/")
        if any(not p for p in path.split("/")[1:]):
            raise UsageError(usage)
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path, user, password)

    @property
    def public(self) -> str:
        """The location without the password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        who = f"{self.user}@" if self.user else ""
        return f"rest:{self.scheme}://{who}{host}:{self.port}{self.path or '/'}"


class RestStorage:
    """Objects behind a REST server; thread-safe (one urllib3 pool of ``connections`` connections)."""

    def __init__(self, location: str | RestLocation, connections: int = 8, timeout: float = 300.0) -> None:
        self.loc = location if isinstance(location, RestLocation) else RestLocation.parse(location)
        self.location = self.loc.public
        self._base = "".join("/" + quote(p, safe="") for p in self.loc.path.split("/")[1:])
        self._headers: dict[str, str] = {}
        if self.loc.user is not None:
            token = base64.b64encode(f"{self.loc.user}:{self.loc.password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        kwargs: dict[str, object] = {}
        if self.loc.scheme == "https" and os.environ.get("SAUVEGARDE_REST_CACERT"):
            kwargs["ca_certs"] = os.environ["SAUVEGARDE_REST_CACERT"]
        self._pool = urllib3.connection_from_url(
            f"{self.loc.scheme}://{self.loc.host}:{self.loc.port}",
            maxsize=connections,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=10.0, read=timeout),
            **kwargs,
        )

    @classmethod
    def from_location(cls, rest: str) -> RestStorage:
        return cls(rest)

    # ---- HTTP -------------------------------------------------------------------------------------------

    def _url(self, kind: str, rest_name: str = "") -> str:
        if kind == "config":
            return f"{self._base}/config"
        return f"{self._base}/{kind}/{rest_name}"

    def _request(
        self, method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.urlopen(
                method, url, body=body, headers={**self._headers, **(headers or {})}, redirect=False
            )
        except SSLError as exc:
            raise StorageError(f"TLS error with {self.location}: {_short(exc)}") from None
        except NewConnectionError as exc:
            raise TransientStorageError(f"cannot reach rest server {self.location}: {_short(exc)}") from None
        except ReadTimeoutError:
            raise TransientStorageError(f"rest server {self.location} timed out") from None
        except HTTPError as exc:
            raise TransientStorageError(f"connection to rest server {self.location} failed: {_short(exc)}") from None

    def _fail(self, resp: urllib3.BaseHTTPResponse, method: str, name: str) -> StorageError:
        status = resp.status
        detail = resp.data[:200].decode("utf-8", "replace").strip().splitlines()
        why = f" ({detail[0]})" if detail else ""
        if status == 404:
            return ObjectNotFound(f"{name}: not found")
        if status == 409:
            return ObjectExists(f"{name}: already exists")
        if status == 401:
            return StorageError(f"authentication to {self.location} failed: wrong or missing user name or password")
        if status == 403 and method == "DELETE" and "append-only" in why:
            return DeletionRefused(
                f"{self.location} is append-only and refused to delete {name}: forgetting and pruning belong to the "
                "server side, where the provider runs `sauvegarde prune` on the repository directory"
            )
        if status == 403:
            return StorageError(f"access denied to {name} at {self.location}{why}")
        if status in (413, 507):
            return StorageError(f"{self.location} refused {name}: quota exceeded{why}")
        if status in (408, 429) or status >= 500:
            return TransientStorageError(f"{self.location}: {method} {name}: HTTP {status}{why}")
        return StorageError(f"{self.location}: {method} {name}: HTTP {status}{why}")

    # ---- the storage contract ---------------------------------------------------------------------------

    def exists(self) -> bool:
        resp = self._request("GET", self._url("keys"), headers={"Accept": V2})
        if resp.status == 404:
            return False
        if resp.status != 200:
            raise self._fail(resp, "GET", "keys/")
        return True

    def create(self) -> None:
        resp = self._request("POST", f"{self._base}/?create=true")
        if resp.status != 200:
            raise self._fail(resp, "POST", "the repository")

    def save(self, name: str, data: Buffer) -> None:
        kind, rest_name = to_rest(name)
        body = data if isinstance(data, bytes) else bytes(data)
        resp = self._request(
            "POST", self._url(kind, rest_name), body=body, headers={"Content-Type": "application/octet-stream"}
        )
        if resp.status not in (200, 201):
            raise self._fail(resp, "POST", name)

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        kind, rest_name = to_rest(name)
        if offset < 0 or (length is not None and length < 0):
            raise StorageError(f"{name}: negative range")
        if length == 0:
            check_range(name, self.stat(name).size, offset, 0)
            return b""
        headers = {}
        if offset or length is not None:
            last = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{last}"
        resp = self._request("GET", self._url(kind, rest_name), headers=headers)
        if resp.status == 416:  # empty or past-the-end range: the size decides
            if check_range(name, self.stat(name).size, offset, length) == 0:
                return b""
            raise StorageError(f"{name}: server refused range {offset}+{length}")
        if resp.status not in (200, 206):
            raise self._fail(resp, "GET", name)
        data: bytes = resp.data
        if resp.status == 200:
            n = check_range(name, len(data), offset, length)
            return data[offset : offset + n]
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m or int(m[1]) != offset:
            raise StorageError(f"{name}: unexpected Content-Range from {self.location}")
        n = check_range(name, int(m[3]), offset, length)
        if len(data) != n:
            raise StorageError(f"{name}: short read ({len(data)} of {n} bytes)")
        return data

    def stat(self, name: str) -> ObjectInfo:
        kind, rest_name = to_rest(name)
        resp = self._request("HEAD", self._url(kind, rest_name))
        if resp.status != 200:
            raise self._fail(resp, "HEAD", name)
        return ObjectInfo(name, int(resp.headers.get("Content-Length", "0")))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        out: list[ObjectInfo] = []
        for kind in types_for_prefix(prefix):
            if kind == "config":
                with contextlib.suppress(ObjectNotFound):
                    out.append(self.stat("config"))
                continue
            resp = self._request("GET", self._url(kind), headers={"Accept": V2})
            if resp.status == 404 or (resp.status == 400 and kind in EXTRA_TYPES):
                continue  # no repository (yet), or a server without our extra types
            if resp.status != 200:
                raise self._fail(resp, "GET", f"{kind}/")
            out.extend(self._parse_listing(kind, resp, prefix))
        return iter(out)

    def _parse_listing(self, kind: str, resp: urllib3.BaseHTTPResponse, prefix: str) -> Iterator[ObjectInfo]:
        try:
            items = json.loads(resp.data)
        except ValueError:
            raise StorageError(f"{self.location}: invalid listing of {kind}/") from None
        for item in items:
            if isinstance(item, str):  # a v1 server: names only
                rest_name, size = item, None
            else:
                rest_name, size = item.get("name", ""), item.get("size")
            if not isinstance(rest_name, str) or not valid_rest_name(kind, rest_name):
                continue
            name = from_rest(kind, rest_name)
            try:
                check_name(name)
            except StorageError:
                continue
            if name.startswith(prefix):
                yield ObjectInfo(name, size if isinstance(size, int) else self.stat(name).size)

    def delete(self, name: str) -> None:
        kind, rest_name = to_rest(name)
        resp = self._request("DELETE", self._url(kind, rest_name))
        if resp.status not in (200, 204):
            raise self._fail(resp, "DELETE", name)

    def close(self) -> None:
        self._pool.close()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.rsplit(": ", 1)[-1][:200]
