"""The disaster-recovery document: gathering it (:func:`build`) and rendering it as standalone HTML, Markdown with
its charts as PNG files beside it, or PDF (WeasyPrint, an optional extra).

Entry points: :func:`render` (any format, as a :class:`Rendered` with the files that go beside it),
:func:`render_html` (the web dashboard serves it at ``/report``; the name is stable) and :func:`write`.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from sauvegarde import __version__
from sauvegarde.plan.model import Plan
from sauvegarde.plan.observe import observe
from sauvegarde.plan.rules import SEVERITIES, Finding, evaluate, worst
from sauvegarde.report import charts as charts_mod
from sauvegarde.report.charts import Chart
from sauvegarde.report.content import (
    Content,
    alert_channels,
    asset_rows,
    contacts,
    drill_rows,
    guard_rows,
    repository_rows,
)
from sauvegarde.report.diagram import diagram
from sauvegarde.report.history import history
from sauvegarde.report.runbook import Runbook, runbooks
from sauvegarde.state.db import StateDB
from sauvegarde.util.urls import redact_url

Format = Literal["html", "pdf", "md"]
FORMATS: tuple[Format, ...] = ("html", "pdf", "md")
HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Report:
    content: Content
    diagram: Chart
    charts: list[Chart]
    runbooks: list[Runbook]


@dataclass
class Rendered:
    """A rendered document; ``files`` go beside it (Markdown's PNG charts), named relative to it."""

    content: bytes
    files: dict[str, bytes] = field(default_factory=dict)
    media_type: str = "text/html; charset=utf-8"


def build(plan: Plan, db: StateDB, now: datetime, measure: bool = True) -> Report:
    """Everything the document shows. ``measure``: list each repository to measure its stored size."""
    obs = observe(plan, db, now)
    findings = evaluate(plan, obs)
    tz = plan.tz()
    repos = repository_rows(plan, obs, measure)
    content = Content(
        organisation=plan.organisation.name,
        generated=f"{now.astimezone(tz):%Y-%m-%d %H:%M %Z}".strip(),
        timezone=plan.settings.timezone or "this machine's time zone",
        plan_path=plan.source,
        version=__version__,
        overall=worst(findings),
        counts={s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES},
        contacts=contacts(plan),
        assets=asset_rows(plan, obs),
        repositories=repos,
        findings=[scrubbed(f) for f in findings if f.severity != "ok"],
        holding=[scrubbed(f) for f in findings if f.severity == "ok"],
        drills=drill_rows(plan, obs, db),
        guard=guard_rows(plan, db),
        alerts=alert_channels(plan),
        min_history=str(plan.settings.min_history.days) + " days",
    )
    hist = history(plan, obs, db, {r.name: r.stored for r in repos})
    picture = Chart(
        "copies",
        "Where every copy lives",
        "Each asset's backup (solid arrow) goes to its first repository, then is copied (dashed) to the others; "
        "boxes are failure domains: what one disaster can take at once.",
        diagram(plan),
    )
    return Report(content, picture, charts_mod.charts(hist, tz), runbooks(plan))


def scrubbed(f: Finding) -> Finding:
    """The finding with any password in a URL it quotes (a REST location's) taken out."""
    return replace(f, message=redact_url(f.message), evidence=redact_url(f.evidence), fix=redact_url(f.fix))


def _environment(markdown: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("sauvegarde.report", "templates"),
        autoescape=not markdown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = markdown_cell
    env.filters["code"] = markdown_code
    env.filters["ticks"] = (lambda v: str(v)) if markdown else html_ticks
    return env


_TICKS = re.compile(r"`([^`]+)`")


def html_ticks(value: object) -> Markup:
    """Escaped text whose `backticked` parts become <code> (rule fixes and runbook steps are written that way)."""
    return Markup(_TICKS.sub(lambda m: f"<code>{m[1]}</code>", str(escape(str(value)))))


def markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|") or "-"


def markdown_code(value: object) -> str:
    """Inline code that survives backticks inside it."""
    text = str(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _css() -> str:
    with open(os.path.join(HERE, "templates", "report.css"), encoding="utf-8") as f:
        return f.read()


def data_uri(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def html_from(report: Report) -> str:
    template = _environment(markdown=False).get_template("report.html.j2")
    return template.render(r=report, c=report.content, css=_css(), src=data_uri)


def markdown_from(report: Report, stem: str) -> Rendered:
    """The Markdown text and its PNG files, named ``STEM-CHART.png`` beside it."""
    files: dict[str, bytes] = {}

    def image(chart: Chart) -> str:
        assert chart.png is not None
        name = f"{stem}-{chart.name}.png"
        files[name] = chart.png
        return name

    text = _environment(markdown=True).get_template("report.md.j2").render(r=report, c=report.content, image=image)
    return Rendered(text.encode(), files, "text/markdown; charset=utf-8")


def render(plan: Plan, db: StateDB, now: datetime, fmt: Format = "html", stem: str = "report") -> Rendered:
    """The document in ``fmt``; for Markdown, its charts are ``files`` named after ``stem``."""
    report = build(plan, db, now)
    if fmt == "md":
        return markdown_from(report, stem)
    if fmt == "pdf":
        from sauvegarde.report.pdf import html_to_pdf

        return Rendered(html_to_pdf(html_from(report)), media_type="application/pdf")
    return Rendered(html_from(report).encode())


def render_html(plan: Plan, db: StateDB, now: datetime) -> str:
    """The standalone HTML document (inline CSS, charts as data: URIs, no script). Stable name: the web dashboard
    serves it at ``/report``."""
    return html_from(build(plan, db, now))


def write(rendered: Rendered, path: str) -> list[str]:
    """Write the document to ``path`` and its files beside it; returns every path written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, data in rendered.files.items():
        target = os.path.join(directory, name)
        with open(target, "wb") as f:
            f.write(data)
        written.append(target)
    with open(path, "wb") as f:
        f.write(rendered.content)
    return [path, *written]
