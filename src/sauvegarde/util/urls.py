"""Repository locations fit to show: without the password a ``scheme://user:password@host`` part may carry (REST
and SFTP locations), so that findings, alerts, metrics, documents and logs never print it."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def url_without_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part left out: a location that works in a command, the
    password then coming from the backend's variable (``SAUVEGARDE_REST_PASSWORD``) or an SSH key."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}@", url)
