"""Deletion logs: sealed, write-once records of the objects a client is about to delete.

On versioned storage (S3 with Object Lock) a deletion leaves a delete marker over the retained data, and so does an
attacker's. Before the repository deletes objects itself (forget, prune, key removal), it writes
``deletions/<id>`` = ``seal(enc_key, json, aad=b"sauvegarde deletions v1")`` with
``{"v": 1, "time": "<ISO 8601 UTC>", "names": ["snapshots/...", ...]}``, named by the BLAKE3 of the file. Only
holders of the repository key can write an authentic log, so a name hidden behind a delete marker but absent from
every log was hidden by someone else (``check`` reports it), and only logged names have their old versions
purged once their retention ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

import blake3

from sauvegarde.crypto import Cipher
from sauvegarde.errors import SauvegardeError
from sauvegarde.storage import Storage

PREFIX = "deletions/"
_AAD = b"sauvegarde deletions v1"


def encode_log(cipher: Cipher, names: Iterable[str], now: datetime | None = None) -> tuple[str, bytes]:
    """The object name and sealed content of a log of ``names``."""
    body = {"v": 1, "time": (now or datetime.now(UTC)).isoformat(), "names": sorted(set(names))}
    raw = cipher.seal(json.dumps(body).encode(), aad=_AAD)
    return PREFIX + blake3.blake3(raw).hexdigest(), raw


def decode_log(cipher: Cipher, name: str, raw: bytes) -> list[str]:
    """The names in an authentic log; raises :class:`SauvegardeError` for a damaged or forged one."""
    if PREFIX + blake3.blake3(raw).hexdigest() != name:
        raise SauvegardeError(f"{name}: content does not match its name")
    body = json.loads(cipher.open(raw, aad=_AAD, what=name))
    return [str(n) for n in body.get("names", [])]


def write_log(storage: Storage, cipher: Cipher, names: Iterable[str]) -> str:
    name, raw = encode_log(cipher, names)
    storage.save(name, raw)
    return name


def logged_names(storage: Storage, cipher: Cipher, hidden: Iterable[str] = ()) -> tuple[set[str], list[str]]:
    """Every name in an authentic log, and the logs that failed to authenticate (forged or damaged).

    ``hidden``: names hidden behind delete markers; the logs among them are read too (from retained versions).
    """
    names: set[str] = set()
    bad: list[str] = []
    log_names = {info.name for info in storage.list(PREFIX)} | {n for n in hidden if n.startswith(PREFIX)}
    for log_name in sorted(log_names):
        try:
            names.update(decode_log(cipher, log_name, storage.load(log_name)))
        except (SauvegardeError, ValueError):
            bad.append(log_name)
    return names, bad
