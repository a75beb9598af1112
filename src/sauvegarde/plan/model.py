"""The plan file's model (pydantic v2): organisation, repositories, assets, drills, alerts and canary files.

Field validators turn text into typed values (durations, schedules, retention policies) and say what is expected
when the text is wrong; :mod:`sauvegarde.plan.load` adds the file and line. Names of repositories and assets are the
keys of their tables (``[repositories.offsite]``, ``[assets.documents]``).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from sauvegarde.engine.retention import Duration as RetentionDuration
from sauvegarde.engine.retention import RetentionPolicy
from sauvegarde.plan.schedule import Schedule, ScheduleError

_DURATION = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

FAILURE_DOMAINS = ("same-host", "same-site", "off-site", "cloud")
MEDIA = ("disk", "removable-disk", "nas", "tape", "optical", "object-storage", "server")


def parse_duration(value: object) -> timedelta:
    """``"30m"``, ``"4h"``, ``"1d12h"``, ``"2w"`` (weeks, days, hours, minutes, seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else ""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"expected a duration such as 30m, 4h, 1d or 2w (got {value!r})")
    unit = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
    return sum((int(n) * unit.get(u, timedelta(seconds=1)) for n, u in parts), timedelta(0))


def format_duration(d: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back: ``1d12h``, ``45m``, ``0s``."""
    seconds = int(d.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def _schedule(value: object) -> Schedule:
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a schedule string such as `daily 02:00`")
    try:
        return Schedule.parse(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _absolute(value: str) -> str:
    if not value.startswith(("/", "~")):
        raise ValueError(f"expected an absolute path (got {value!r})")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute)]


def _maybe_schedule(value: object) -> Schedule | None:
    return None if value is None or (isinstance(value, str) and value.strip().lower() == "never") else _schedule(value)


PlanDuration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
PlanSchedule = Annotated[Schedule, BeforeValidator(_schedule), PlainSerializer(str)]
MaybeSchedule = Annotated[Schedule | None, BeforeValidator(_maybe_schedule), PlainSerializer(str)]


class Strict(BaseModel):
    """Unknown keys are mistakes (a misspelt ``rpo`` must not silently vanish)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Contact(Strict):
    name: str = Field(min_length=1)
    role: str = ""
    phone: str = ""
    email: str = ""

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not (self.phone or self.email):
            raise ValueError(f"contact {self.name!r} needs a phone or an email: who calls them, and how?")
        return self


class Organisation(Strict):
    name: str = Field(min_length=1)
    contacts: list[Contact] = Field(default_factory=list)  # in the order to call them
    provider: Contact | None = None  # the IT provider


class Settings(Strict):
    timezone: str | None = None  # schedules' wall clock; default: this machine's
    jitter: PlanDuration = timedelta(minutes=5)  # random delay added to each scheduled run by the daemon
    min_history: PlanDuration = timedelta(days=30)  # retention must reach at least this far back (ransomware dwell)
    state_dir: str | None = None  # default $XDG_STATE_HOME/sauvegarde
    metrics_listen: str | None = None  # HOST:PORT where the daemon serves Prometheus /metrics

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}: expected an IANA name such as Europe/Paris") from None
        return value

    def tz(self) -> tzinfo | None:
        return zoneinfo.ZoneInfo(self.timezone) if self.timezone else None


class RepositoryPlan(Strict):
    url: str = Field(min_length=1)
    password_file: str | None = None
    password_command: str | None = None
    password_env: str | None = None
    failure_domain: Literal["same-host", "same-site", "off-site", "cloud"]
    medium: Literal["disk", "removable-disk", "nas", "tape", "optical", "object-storage", "server"]
    immutable: bool = False
    offline: bool = False
    key_escrow: str | None = None  # where a recovery sheet or the password is kept away from the protected host
    check: MaybeSchedule = Field(default_factory=lambda: Schedule.parse("daily 05:00"))
    check_read_data_subset: str | None = None  # e.g. "5%": also read a rotating share of the packs
    prune: MaybeSchedule = Field(default_factory=lambda: Schedule.parse("weekly sun 04:00"))
    max_unused: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_password_source(self) -> RepositoryPlan:
        given = [n for n in ("password_file", "password_command", "password_env") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of password_file, password_command, password_env"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def local_path(self) -> str | None:
        return self.url.removeprefix("file://") if self.is_local else None


class Retention(Strict):
    keep_last: int | None = Field(default=None, ge=-1)
    keep_hourly: int | None = Field(default=None, ge=-1)
    keep_daily: int | None = Field(default=None, ge=-1)
    keep_weekly: int | None = Field(default=None, ge=-1)
    keep_monthly: int | None = Field(default=None, ge=-1)
    keep_yearly: int | None = Field(default=None, ge=-1)
    keep_within: str | None = None  # restic-style 1y2m3d4h

    @field_validator("keep_within")
    @classmethod
    def _within(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                RetentionDuration.parse(value)
            except Exception:
                raise ValueError(
                    f"expected a duration with units y, m, d, h such as 30d or 1y (got {value!r})"
                ) from None
        return value

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if self.policy().is_empty:
            raise ValueError("a retention that keeps nothing would delete every snapshot: set at least one keep_*")
        return self

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            keep_last=self.keep_last,
            keep_hourly=self.keep_hourly,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
            keep_yearly=self.keep_yearly,
            keep_within=RetentionDuration.parse(self.keep_within) if self.keep_within else None,
        )


class Asset(Strict):
    description: str = ""
    paths: list[AbsolutePath] | None = None
    exclude: list[str] = Field(default_factory=list)
    command: str | None = None  # its standard output is the backup (e.g. pg_dump)
    filename: str | None = None  # name of the command's output in the snapshot
    criticality: Literal["critical", "high", "medium", "low"]
    rpo: PlanDuration
    rto: PlanDuration
    schedule: PlanSchedule
    retention: Retention
    repositories: list[str] = Field(min_length=1)  # the first receives the backup; the others get copies
    one_file_system: bool = False

    @field_validator("paths")
    @classmethod
    def _some(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("expected at least one path")
        return value

    @model_validator(mode="after")
    def _what(self) -> Asset:
        if (self.paths is None) == (self.command is None):
            raise ValueError("give either paths (files to back up) or command (whose output is the backup)")
        if len(set(self.repositories)) != len(self.repositories):
            raise ValueError("a repository is listed twice in repositories")
        return self

    def expanded_paths(self) -> list[str]:
        return [str(Path(p).expanduser()) for p in self.paths or []]


class Drill(Strict):
    asset: str
    repository: str
    schedule: PlanSchedule
    sample: str = "100%"  # share of the asset's bytes restored and verified (a random sample of files)

    @field_validator("sample")
    @classmethod
    def _share(cls, value: str) -> str:
        from sauvegarde.drill.sample import parse_sample

        parse_sample(value)
        return value


def _fail_only() -> list[Literal["fail", "warn", "info"]]:
    return ["fail"]


class Smtp(Strict):
    """The mail server alerts go through. The password comes from one source, as a repository's does."""

    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False  # upgrade the connection with STARTTLS (required before AUTH on most servers)
    username: str | None = None
    password_file: str | None = None
    password_command: str | None = None
    password_env: str | None = None
    sender: str | None = None  # From: address (default sauvegarde@<this host>)
    ca_file: str | None = None  # trust this CA bundle for STARTTLS (a private CA); default: the system's
    timeout: PlanDuration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _password(self) -> Smtp:
        given = [n for n in ("password_file", "password_command", "password_env") if getattr(self, n)]
        if len(given) > 1:
            raise ValueError(f"give at most one of password_file, password_command, password_env (got {given})")
        if given and not self.username:
            raise ValueError("a password needs a username")
        return self


class Webhook(Strict):
    """An HTTP endpoint receiving alerts: ``json`` (generic), ``ntfy`` (text with headers) or ``slack``."""

    url: str
    format: Literal["json", "ntfy", "slack"] = "json"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"expected an http(s) URL (got {value!r})")
        return value


def _webhook(value: object) -> object:
    return {"url": value} if isinstance(value, str) else value


class Alerts(Strict):
    email: list[str] = Field(default_factory=list)
    webhook: list[Annotated[Webhook, BeforeValidator(_webhook)]] = Field(default_factory=list)
    on: list[Literal["fail", "warn", "info"]] = Field(default_factory=_fail_only)
    smtp: Smtp = Field(default_factory=Smtp)
    repeat_after: PlanDuration = timedelta(hours=24)  # the same alert is not sent again within this time
    max_per_hour: int = Field(default=6, ge=1)  # messages per channel and hour; the rest wait for the next pass
    missed_after: PlanDuration = timedelta(hours=1)  # a scheduled backup not attempted this long after it fired
    digest: MaybeSchedule = Field(default_factory=lambda: Schedule.parse("weekly mon 08:00"))

    @field_validator("email")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for v in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
                raise ValueError(f"expected an email address (got {v!r})")
        return value


class Canary(Strict):
    asset: str
    path: str


class Plan(Strict):
    version: Literal[1] = 1
    organisation: Organisation
    settings: Settings = Field(default_factory=Settings)
    repositories: dict[str, RepositoryPlan] = Field(min_length=1)
    assets: dict[str, Asset] = Field(min_length=1)
    drills: list[Drill] = Field(default_factory=list)
    alerts: Alerts | None = None
    canaries: list[Canary] = Field(default_factory=list)
    source: str = Field(default="", exclude=True)  # the file it was read from (set by the loader)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for table in ("repositories", "assets"):
                for name in data.get(table) or {}:
                    if not _NAME.match(str(name)):
                        raise ValueError(
                            f"invalid {table[:-1] if table == 'assets' else 'repository'} name {name!r}: "
                            "expected letters, digits, '.', '_' or '-'"
                        )
        return data

    @model_validator(mode="after")
    def _references(self) -> Plan:
        problems: list[str] = []
        for name, asset in self.assets.items():
            for r in asset.repositories:
                if r not in self.repositories:
                    problems.append(f"assets.{name}.repositories: unknown repository {r!r}")
        for i, d in enumerate(self.drills):
            if d.asset not in self.assets:
                problems.append(f"drills.{i}.asset: unknown asset {d.asset!r}")
            elif d.repository not in self.assets[d.asset].repositories:
                problems.append(f"drills.{i}.repository: asset {d.asset!r} has no copy in {d.repository!r}")
        for i, c in enumerate(self.canaries):
            if c.asset not in self.assets:
                problems.append(f"canaries.{i}.asset: unknown asset {c.asset!r}")
        if problems:
            raise ReferenceProblems(problems)
        return self

    def tz(self) -> tzinfo | None:
        return self.settings.tz()


class ReferenceProblems(ValueError):
    """Names that point at nothing; each entry is ``dotted.location: message`` (the loader adds the line)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
