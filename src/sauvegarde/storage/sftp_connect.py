"""SFTP locations and SSH connections: URL parsing, known_hosts checking, keys and agent, and error mapping.

Host keys are checked against ``SAUVEGARDE_SFTP_KNOWN_HOSTS`` (one or more files separated by ``:``) or else
``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``; an unknown host is refused, never accepted silently.
Client keys: ``SAUVEGARDE_SFTP_KEY`` if set, else the usual ``~/.ssh/id_*``, plus whatever ssh-agent offers.
"""

from __future__ import annotations

import errno
import getpass
import os
import re
import socket
from dataclasses import dataclass

import paramiko
from paramiko.ssh_exception import NoValidConnectionsError

from sauvegarde.errors import StorageError, TransientStorageError, UsageError

CONNECT_TIMEOUT = 15.0
AUTH_TIMEOUT = 30.0

_SHORT = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/@\[\]]+):(?:(?P<port>\d+):)?(?P<path>.+)$")


@dataclass(frozen=True)
class SftpLocation:
    """Where a repository lives on an SFTP server. ``path`` is absolute, or relative to the login directory."""

    host: str
    path: str
    port: int = 22
    user: str | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` for messages (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``HOST`` on port 22, else ``[HOST]:PORT``."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port != 22 else ""
        return f"sftp:{user}{host}{port}:{self.path}"


def parse_location(rest: str) -> SftpLocation:
    """Parse what follows ``sftp:``: ``[USER@]HOST[:PORT]:/PATH`` or ``//[USER@]HOST[:PORT]/PATH``.

    In the short form a path without a leading ``/`` (or starting with ``~/``) is relative to the login directory,
    as with scp. In the URL form the path is absolute; ``/~/PATH`` is relative to the login directory.
    """
    if rest.startswith("//"):
        return _parse_url(rest)
    m = _SHORT.match(rest)
    if not m:
        raise UsageError(f"invalid sftp location 'sftp:{rest}' (expected sftp:[USER@]HOST[:PORT]:/PATH)")
    path = m["path"]
    if path.startswith("~/"):
        path = path[2:]
    if not path or path == "~":
        raise UsageError(f"sftp location 'sftp:{rest}' needs a path")
    port = int(m["port"]) if m["port"] else 22
    return SftpLocation(host=m["host"].strip("[]"), path=path, port=_check_port(port, rest), user=m["user"])


def _parse_url(rest: str) -> SftpLocation:
    from urllib.parse import unquote, urlsplit

    try:
        url = urlsplit("sftp:" + rest)
        port = url.port or 22
    except ValueError as exc:
        raise UsageError(f"invalid sftp URL 'sftp:{rest}': {exc}") from None
    path = unquote(url.path)
    if path.startswith("/~/"):
        path = path[3:]
    if not url.hostname or not path or path in ("/", "/~"):
        raise UsageError(f"invalid sftp URL 'sftp:{rest}' (expected sftp://[USER@]HOST[:PORT]/PATH)")
    user = unquote(url.username) if url.username else None
    return SftpLocation(host=url.hostname, path=path, port=_check_port(port, rest), user=user)


def _check_port(port: int, rest: str) -> int:
    if not 0 < port < 65536:
        raise UsageError(f"invalid port {port} in sftp location 'sftp:{rest}'")
    return port


def known_hosts_files() -> list[str]:
    """The known_hosts files consulted, in order."""
    configured = os.environ.get("SAUVEGARDE_SFTP_KNOWN_HOSTS")
    if configured:
        return [os.path.expanduser(p) for p in configured.split(os.pathsep) if p]
    return [os.path.expanduser("~/.ssh/known_hosts"), "/etc/ssh/ssh_known_hosts"]


def fingerprint(key: paramiko.PKey) -> str:
    """``TYPE SHA256:...`` as ssh-keygen prints it."""
    return f"{key.get_name()} {key.fingerprint}"


class UnknownHostKey(StorageError):
    """The server's host key is in none of the known_hosts files."""


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    def __init__(self, location: SftpLocation, files: list[str]) -> None:
        self.location = location
        self.files = files

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        loc = self.location
        port = f"-p {loc.port} " if loc.port != 22 else ""
        raise UnknownHostKey(
            f"unknown host key for {hostname} ({fingerprint(key)}), not in {' or '.join(self.files)}: "
            f"check the fingerprint with the server's administrator, then add it with "
            f"'ssh-keyscan {port}{loc.host} >> ~/.ssh/known_hosts' (or set SAUVEGARDE_SFTP_KNOWN_HOSTS)"
        )


def connect(location: SftpLocation) -> paramiko.SSHClient:
    """An authenticated SSH connection to ``location``'s server, or a one-line :class:`StorageError`."""
    client = paramiko.SSHClient()
    files = known_hosts_files()
    user = location.user or getpass.getuser()
    key_file = os.environ.get("SAUVEGARDE_SFTP_KEY") or None
    if key_file is not None and not os.path.isfile(os.path.expanduser(key_file)):
        raise StorageError(f"SAUVEGARDE_SFTP_KEY: no key file {key_file}")
    try:
        for path in files:
            if os.path.isfile(path):
                client.load_system_host_keys(path)
        client.set_missing_host_key_policy(_RefuseUnknownHost(location, files))
        client.connect(
            location.host,
            location.port,
            username=user,
            key_filename=os.path.expanduser(key_file) if key_file else None,
            look_for_keys=key_file is None,
            allow_agent=True,
            timeout=CONNECT_TIMEOUT,
            banner_timeout=CONNECT_TIMEOUT,
            auth_timeout=AUTH_TIMEOUT,
        )
    except BaseException as exc:
        client.close()
        if isinstance(exc, Exception):
            raise connect_error(exc, location, user) from None
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(30)
    return client


def connect_error(exc: Exception, location: SftpLocation, user: str) -> StorageError:
    """A one-line error for a failed connection; transient when a later attempt may succeed."""
    where = location.address
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return StorageError(
            f"host key of {location.known_hosts_name} does not match known_hosts "
            f"(got {fingerprint(exc.key)}, expected {fingerprint(exc.expected_key)}): "
            "possible man-in-the-middle attack, refusing to connect"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        keys = "SAUVEGARDE_SFTP_KEY" if os.environ.get("SAUVEGARDE_SFTP_KEY") else "~/.ssh/id_*"
        return StorageError(f"authentication to sftp server {where} as {user} failed (tried {keys} and ssh-agent)")
    if isinstance(exc, socket.gaierror):
        return StorageError(f"cannot resolve sftp server host {location.host}: {exc.strerror}")
    if isinstance(exc, NoValidConnectionsError):
        reasons = {getattr(e, "strerror", None) or str(e) for e in exc.errors.values()}
        return TransientStorageError(f"cannot reach sftp server {where}: {', '.join(sorted(reasons)).lower()}")
    if isinstance(exc, TimeoutError):
        return TransientStorageError(f"cannot reach sftp server {where}: timed out")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or errno.errorcode.get(exc.errno or 0, "error")
        return TransientStorageError(f"cannot reach sftp server {where}: {reason.lower()}")
    if isinstance(exc, paramiko.SSHException | EOFError):
        return TransientStorageError(f"ssh connection to sftp server {where} failed: {exc or type(exc).__name__}")
    return StorageError(f"ssh connection to sftp server {where} failed: {type(exc).__name__}: {exc}")
