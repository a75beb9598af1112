"""The report's history charts, drawn with matplotlib's Agg backend into PNG bytes (no pyplot, no display).

Each chart says what it shows in its caption; a chart without data is not drawn, and its note says why.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sauvegarde.report.history import History

PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#0891b2", "#be185d", "#4b5563")
GREEN, AMBER, RED, GREY = "#16a34a", "#d97706", "#dc2626", "#6b7280"
DPI = 120
SIZE = (8.0, 3.0)


@dataclass(frozen=True)
class Chart:
    name: str  # file-name friendly: "stored-size"
    title: str
    caption: str
    png: bytes | None  # None: nothing to draw (``caption`` says why)


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf, metadata={"Software": None})  # type: ignore[no-untyped-call]
    return buf.getvalue()


def x(times: Iterable[datetime]) -> list[float]:
    """Times as matplotlib's date numbers (the axis then formats them as dates)."""
    return [float(date2num(t)) for t in times]  # type: ignore[no-untyped-call]


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)
    return fig, ax


def _time_axis(ax: Axes, tz: tzinfo | None) -> None:
    locator = AutoDateLocator(tz=tz, minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=tz))  # type: ignore[no-untyped-call]


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def seconds_text(s: float) -> str:
    if 0 < s < 1:
        return f"{s:.2g}s"
    if s < 60:
        return f"{s:.0f}s" if s >= 10 or s == 0 else f"{s:.1f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400 * 2:
        return f"{s / 3600:.0f}h" if s >= 36000 or s % 3600 == 0 else f"{s / 3600:.1f}h"
    return f"{s / 86400:.0f}d"


def _formatter(fmt: Callable[[float], str]) -> FuncFormatter:
    return FuncFormatter(lambda v, _pos: fmt(v))


def byte_unit(largest: float) -> tuple[float, str]:
    """The binary unit the axis of sizes up to ``largest`` reads best in."""
    for power, name in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if largest >= 1024**power:
            return float(1024**power), name
    return 1.0, "bytes"


def stored_size(h: History, tz: tzinfo | None) -> Chart:
    title = "Stored size per repository"
    caption = (
        "Bytes written to each repository by backups and copies, less what prune freed (from the state database); "
        "a diamond marks the size listed in the repository when this report was made."
    )
    if not h.stored and not h.measured:
        return Chart("stored-size", title, "No backup recorded yet.", None)
    fig, ax = _figure(title)
    names = sorted(set(h.stored) | set(h.measured))
    largest = max([p[1] for pts in h.stored.values() for p in pts] + [v for _, v in h.measured.values()] + [1.0])
    unit, unit_name = byte_unit(largest)
    for i, repo in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        points = h.stored.get(repo, [])
        width = max(1.2, 3.2 - 0.9 * i)  # later lines thinner, so that equal series stay visible
        if points:
            ax.step(
                x(p[0] for p in points), [p[1] / unit for p in points], where="post", color=colour, label=repo, lw=width
            )
        if repo in h.measured:
            t, v = h.measured[repo]
            ax.plot(
                x([t]), [v / unit], marker="D", color=colour, ms=8 - 1.5 * i, ls="none", label=None if points else repo
            )
    ax.set_ylim(bottom=0)
    ax.set_ylabel(unit_name, fontsize=8)
    _time_axis(ax, tz)
    _legend(ax)
    return Chart("stored-size", title, caption, png(fig))


def backup_durations(h: History, tz: tzinfo | None) -> Chart:
    title = "Backup durations"
    caption = "How long each backup took, per asset; a red cross is a failed backup."
    if not h.durations:
        return Chart("backup-durations", title, "No backup recorded yet.", None)
    fig, ax = _figure(title)
    for i, (asset, points) in enumerate(sorted(h.durations.items())):
        colour = PALETTE[i % len(PALETTE)]
        ok = [p for p in points if p[2]]
        failed = [p for p in points if not p[2]]
        ax.plot(x(p[0] for p in ok), [p[1] for p in ok], marker="o", ms=4, color=colour, lw=1.2, label=asset)
        if failed:
            ax.plot(x(p[0] for p in failed), [p[1] for p in failed], marker="x", ms=7, mew=2, color=RED, ls="none")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(_formatter(seconds_text))
    _time_axis(ax, tz)
    _legend(ax)
    return Chart("backup-durations", title, caption, png(fig))


def rpo_compliance(h: History, tz: tzinfo | None) -> Chart:
    title = "RPO compliance: age of the newest good backup"
    lines = [
        f"{c.asset}: within its RPO {c.share_within:.0%} of the time"
        for c in h.compliance
        if c.share_within is not None
    ]
    caption = (
        "The age of each asset's newest good backup as a share of its RPO; above the red line (100%) more work "
        "than agreed would be lost. " + "; ".join(lines) + ("." if lines else "")
    )
    series = [c for c in h.compliance if c.points]
    if not series:
        return Chart("rpo-compliance", title, "No good backup recorded yet.", None)
    fig, ax = _figure(title)
    top = 1.2
    for i, c in enumerate(series):
        values = [p[1] / c.rpo_s * 100 for p in c.points]
        top = max(top, max(values) / 100 * 1.1)
        ax.plot(x(p[0] for p in c.points), values, color=PALETTE[i % len(PALETTE)], lw=1.4, label=c.asset)
    ax.axhline(100, color=RED, lw=1.2, ls="--", label="RPO")
    ax.set_ylim(0, top * 100)
    ax.yaxis.set_major_formatter(_formatter(lambda v: f"{v:.0f}%"))
    _time_axis(ax, tz)
    _legend(ax)
    return Chart("rpo-compliance", title, caption, png(fig))


def drills(h: History, tz: tzinfo | None) -> Chart:
    title = "Restore drills: measured and estimated recovery time"
    caption = (
        "Per drill, the time it took (hollow) and its estimate of a full restore (filled; green passed, red "
        "failed), against each asset's RTO (dashed). Logarithmic scale."
    )
    if not h.drills:
        return Chart("drills", title, "No restore drill recorded yet: the RTO is a promise, not a measurement.", None)
    fig, ax = _figure(title)
    assets = sorted({d.asset for d in h.drills})
    values: list[float] = []
    for i, asset in enumerate(assets):
        colour = PALETTE[i % len(PALETTE)]
        mine = [d for d in h.drills if d.asset == asset]
        ax.plot(
            x(d.time for d in mine),
            [max(d.duration_s, 0.01) for d in mine],
            marker="o",
            mfc="none",
            ms=6,
            color=colour,
            ls=":",
            lw=1,
            label=f"{asset}: drill",
        )
        for d in mine:
            if d.estimate_s is not None:
                ax.plot(
                    x([d.time]),
                    [max(d.estimate_s, 0.01)],
                    marker="o",
                    ms=7,
                    color=GREEN if d.passed else RED,
                    mec=colour,
                    mew=1.2,
                    ls="none",
                )
        rto = mine[-1].rto_s
        ax.axhline(rto, color=colour, ls="--", lw=1, label=f"{asset}: RTO {seconds_text(rto)}")
        values += [d.duration_s for d in mine] + [d.estimate_s or 0 for d in mine] + [rto]
    ax.set_yscale("log")
    positive = [v for v in values if v > 0]
    ax.set_ylim(max(min(positive) / 3, 0.01), max(positive) * 3)
    ax.yaxis.set_major_formatter(_formatter(seconds_text))
    _time_axis(ax, tz)
    if len({d.time for d in h.drills}) == 1:
        t = h.drills[0].time
        ax.set_xlim(*x([t - timedelta(days=1), t + timedelta(days=1)]))
    _legend(ax)
    return Chart("drills", title, caption, png(fig))


def guard(h: History, tz: tzinfo | None) -> Chart:
    title = "Ransomware guard verdicts"
    caption = "Each backup's verdict: green clean, amber suspicious, red attack; a ring marks a released verdict."
    if not h.verdicts:
        return Chart("guard", title, "No guard verdict recorded yet.", None)
    fig, ax = _figure(title)
    assets = sorted({v.asset for v in h.verdicts})
    colour = {"clean": GREEN, "suspicious": AMBER, "attack": RED}
    for row, asset in enumerate(assets):
        for kind in ("clean", "suspicious", "attack"):
            mine = [v for v in h.verdicts if v.asset == asset and v.verdict == kind]
            if mine:
                ax.plot(
                    x(v.time for v in mine),
                    [row] * len(mine),
                    marker="o",
                    ms=8 if kind != "clean" else 5,
                    color=colour[kind],
                    ls="none",
                    label=kind if row == 0 or kind != "clean" else None,
                )
        released = [v for v in h.verdicts if v.asset == asset and v.released]
        if released:
            ax.plot(
                x(v.time for v in released), [row] * len(released), marker="o", ms=13, mfc="none", color=GREY, ls="none"
            )
    other = sorted({v.verdict for v in h.verdicts} - set(colour))
    for kind in other:
        mine = [v for v in h.verdicts if v.verdict == kind]
        ax.plot(
            x(v.time for v in mine),
            [assets.index(v.asset) for v in mine],
            marker="s",
            color=GREY,
            ls="none",
            label=kind,
        )
    ax.set_yticks(range(len(assets)), assets)
    ax.set_ylim(-0.6, len(assets) - 0.4)
    _time_axis(ax, tz)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.set_size_inches(SIZE[0], 1.2 + 0.45 * len(assets))
    return Chart("guard", title, caption, png(fig))


def charts(h: History, tz: tzinfo | None) -> list[Chart]:
    return [f(h, tz) for f in (stored_size, backup_durations, rpo_compliance, drills, guard)]
