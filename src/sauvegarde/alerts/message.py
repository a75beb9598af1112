"""What alerts carry: an :class:`Alert` (one problem with a stable key) and a :class:`Message` (what a channel gets)."""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITY_ORDER = ("fail", "warn", "info", "ok")


@dataclass(frozen=True)
class Alert:
    """One problem. ``key`` names it stably across runs (de-duplication): same problem, same key."""

    key: str
    severity: str  # fail, warn, info
    subject: str  # "asset documents in repository nas"
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def line(self) -> str:
        return f"{self.severity.upper()} {self.subject}: {self.message}"


@dataclass(frozen=True)
class Message:
    """One message to every channel: alerts, the weekly digest or a test."""

    kind: str  # alert, digest, test
    organisation: str
    title: str
    text: str
    severity: str = "info"
    alerts: list[Alert] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": "sauvegarde",
            "kind": self.kind,
            "organisation": self.organisation,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "alerts": [a.as_dict() for a in self.alerts],
        }


def worst(alerts: list[Alert]) -> str:
    return min((a.severity for a in alerts), key=SEVERITY_ORDER.index, default="ok")


def alert_message(organisation: str, alerts: list[Alert]) -> Message:
    """The message for new alerts: a title counting them, then one paragraph each with its fix."""
    sev = worst(alerts)
    n = len(alerts)
    title = f"[sauvegarde] {organisation}: {n} problem{'s' if n != 1 else ''} ({sev})"
    paragraphs = []
    for a in sorted(alerts, key=lambda a: SEVERITY_ORDER.index(a.severity)):
        paragraphs.append(a.line() + (f"\n  fix: {a.fix}" if a.fix else ""))
    text = "\n\n".join(paragraphs) + "\n\nSee `sauvegarde status` and `sauvegarde plan check` on the backup host.\n"
    return Message("alert", organisation, title, text, sev, list(alerts))
