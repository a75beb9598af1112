"""Email delivery over SMTP (smtplib): STARTTLS, AUTH, one message to every recipient. The password never appears
in an error message."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sauvegarde.alerts.message import Message
from sauvegarde.plan.model import Smtp


class DeliveryError(Exception):
    """A channel could not deliver; the message says why (no secrets)."""


def build_email(msg: Message, sender: str, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = msg.title
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail["X-Sauvegarde-Kind"] = msg.kind
    mail["X-Sauvegarde-Severity"] = msg.severity
    mail.set_content(msg.text)
    return mail


def default_sender() -> str:
    return f"sauvegarde@{socket.getfqdn() or 'localhost'}"


def send_email(
    smtp: Smtp,
    password: str | None,
    recipients: list[str],
    msg: Message,
    ca_file: str | None = None,
) -> None:
    """Send ``msg`` to ``recipients``; raises :class:`DeliveryError`. ``ca_file``: the CA bundle to trust."""
    mail = build_email(msg, smtp.sender or default_sender(), recipients)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout.total_seconds()) as conn:
            conn.ehlo()
            if smtp.starttls:
                conn.starttls(context=ssl.create_default_context(cafile=ca_file))
                conn.ehlo()
            if smtp.username:
                conn.login(smtp.username, password or "")
            refused = conn.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        where = f"SMTP {smtp.host}:{smtp.port}"
        raise DeliveryError(f"{where}: login as {smtp.username} refused ({exc.smtp_code})") from None
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {type(exc).__name__}: {_safe(exc, password)}") from None
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {_safe(exc, password)}") from None
    if refused:
        raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: refused recipients {', '.join(sorted(refused))}")


def _safe(exc: BaseException, secret: str | None) -> str:
    text = str(exc)
    return text.replace(secret, "***") if secret else text
