"""Sending alerts: the plan's channels, de-duplication (a key is not re-sent within ``repeat_after``), a per-channel
rate limit (``max_per_hour`` messages; the rest wait for a later pass), the weekly digest, and the record of every
attempt in the state database (``alerts_sent``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sauvegarde.alerts.email import DeliveryError, send_email
from sauvegarde.alerts.message import Alert, Message, alert_message
from sauvegarde.alerts.webhook import send_webhook
from sauvegarde.errors import SauvegardeError
from sauvegarde.plan.access import plan_relative, read_secret
from sauvegarde.plan.model import Alerts, Plan
from sauvegarde.state.db import AlertSent, StateDB

HOUR = timedelta(hours=1)
DIGEST_KEY = "digest"


@dataclass(frozen=True)
class Channel:
    name: str  # stable and free of secrets: 'email:a@x,b@y', 'webhook:host:3f2a9c1e'
    send: Callable[[Message], None]


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    alerts: int = 0
    error: str = ""
    skipped: str = ""  # why nothing was sent: 'nothing new', 'rate limited'


def webhook_channel_name(url: str) -> str:
    return f"webhook:{urlsplit(url).hostname or ''}:{hashlib.sha256(url.encode()).hexdigest()[:8]}"


class Notifier:
    """The plan's alert channels, with memory (the state database) of what went where and when."""

    def __init__(self, plan: Plan, db: StateDB) -> None:
        self.plan = plan
        self.config: Alerts = plan.alerts or Alerts()
        self.db = db

    def channels(self) -> list[Channel]:
        out = []
        if self.config.email:
            recipients = list(self.config.email)
            out.append(Channel("email:" + ",".join(recipients), lambda m: self._email(recipients, m)))
        for hook in self.config.webhook:
            out.append(Channel(webhook_channel_name(hook.url), lambda m, h=hook: send_webhook(h, m)))  # type: ignore[misc]
        return out

    def _email(self, recipients: list[str], msg: Message) -> None:
        smtp = self.config.smtp
        password = None
        if smtp.username and (smtp.password_file or smtp.password_command or smtp.password_env):
            try:
                password = read_secret(
                    self.plan, "alerts.smtp", smtp.password_file, smtp.password_command, smtp.password_env
                )
            except SauvegardeError as exc:
                raise DeliveryError(str(exc)) from None
        ca_file = plan_relative(self.plan, smtp.ca_file) if smtp.ca_file else None
        send_email(smtp, password, recipients, msg, ca_file)

    def _deliver(self, channel: Channel, msg: Message, keys: list[str], now: datetime) -> Delivery:
        ts = now.timestamp()
        try:
            channel.send(msg)
        except DeliveryError as exc:
            for key in keys:
                self.db.record_alert(AlertSent(key, channel.name, ts, msg.severity, "failed", msg.title, str(exc)))
            return Delivery(channel.name, False, len(msg.alerts), error=str(exc))
        for key in keys:
            self.db.record_alert(AlertSent(key, channel.name, ts, msg.severity, "sent", msg.title))
        return Delivery(channel.name, True, len(msg.alerts))

    def _rate_limited(self, channel: str, now: datetime) -> bool:
        return self.db.messages_sent_since(channel, (now - HOUR).timestamp()) >= self.config.max_per_hour

    def send_alerts(self, alerts: list[Alert], now: datetime) -> list[Delivery]:
        """One message per channel with the alerts it has not been sent within ``repeat_after``."""
        out = []
        cutoff = (now - self.config.repeat_after).timestamp()
        for channel in self.channels():
            fresh = [a for a in alerts if (self.db.last_alert_sent(a.key, channel.name) or float("-inf")) < cutoff]
            if not fresh:
                out.append(Delivery(channel.name, True, skipped="nothing new"))
            elif self._rate_limited(channel.name, now):
                out.append(Delivery(channel.name, True, len(fresh), skipped="rate limited"))
            else:
                msg = alert_message(self.plan.organisation.name, fresh)
                out.append(self._deliver(channel, msg, [a.key for a in fresh], now))
        return out

    def digest_due(self, now: datetime) -> bool:
        """The digest schedule fired since the last digest went out (or none ever did)."""
        schedule = self.config.digest
        if schedule is None:
            return False
        last = self.db.last_alert_sent(DIGEST_KEY)
        fired = schedule.previous_at_or_before(now.astimezone(self.plan.tz()), self.plan.tz())
        return last is None or last < fired.timestamp()

    def send_message(self, msg: Message, key: str, now: datetime) -> list[Delivery]:
        """``msg`` to every channel now, without de-duplication or rate limit (digest, test)."""
        return [self._deliver(channel, msg, [key], now) for channel in self.channels()]
