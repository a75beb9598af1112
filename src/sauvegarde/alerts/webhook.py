"""Webhook delivery (urllib): generic JSON, ntfy (text body with Title/Priority/Tags headers) or Slack-compatible
(``{"text": ...}``, also understood by Mattermost and Rocket.Chat)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from sauvegarde.alerts.email import DeliveryError
from sauvegarde.alerts.message import Message
from sauvegarde.plan.model import Webhook

NTFY_PRIORITY = {"fail": "urgent", "warn": "high", "info": "default", "ok": "low"}
NTFY_TAGS = {"fail": "rotating_light", "warn": "warning", "info": "information_source", "ok": "white_check_mark"}


def webhook_request(hook: Webhook, msg: Message) -> urllib.request.Request:
    headers = {"User-Agent": "sauvegarde"}
    if hook.format == "ntfy":
        body = msg.text.encode()
        headers |= {
            "Title": msg.title.encode("ascii", "replace").decode(),  # HTTP headers are latin-1 at best
            "Priority": NTFY_PRIORITY.get(msg.severity, "default"),
            "Tags": NTFY_TAGS.get(msg.severity, "floppy_disk"),
            "Content-Type": "text/plain; charset=utf-8",
        }
    elif hook.format == "slack":
        body = json.dumps({"text": f"*{msg.title}*\n{msg.text}"}).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = json.dumps(msg.as_dict()).encode()
        headers["Content-Type"] = "application/json"
    return urllib.request.Request(hook.url, data=body, headers=headers, method="POST")


def redacted(url: str) -> str:
    """The URL without credentials, path or query (webhook URLs often embed a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/..."


def send_webhook(hook: Webhook, msg: Message, timeout: float = 30.0) -> None:
    try:
        with urllib.request.urlopen(webhook_request(hook, msg), timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook {redacted(hook.url)}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryError(f"webhook {redacted(hook.url)}: {reason}") from None
