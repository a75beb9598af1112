"""Where every copy lives, as a picture: the assets on the protected host, each repository inside its failure domain
(this host, the site, off site, the cloud), a solid arrow for each backup and a dashed one for each copy.

Drawn with matplotlib (Agg) into PNG bytes; the layout is computed here (columns per failure domain, boxes stacked),
so no graph layout program is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from sauvegarde.plan.model import Plan, format_duration
from sauvegarde.report.charts import PALETTE, RED, png
from sauvegarde.util.urls import redact_url

BOX_W, ASSET_H, REPO_H, GAP, COL_W, PAD = 2.5, 0.95, 1.15, 0.35, 3.3, 0.3
ZONES = {
    "same-host": ("On the protected host", "#eff6ff", "#93c5fd"),
    "same-site": ("Same site", "#f0fdf4", "#86efac"),
    "off-site": ("Off site", "#fefce8", "#fcd34d"),
    "cloud": ("Cloud", "#faf5ff", "#d8b4fe"),
}


@dataclass
class Box:
    x: float  # left
    y: float  # bottom
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w, self.y + self.h / 2)


def shorten(text: str, n: int = 36) -> str:
    return text if len(text) <= n else text[: n // 2 - 1] + "…" + text[-(n - n // 2) :]


def _stack(count: int, height: float, top: float) -> list[float]:
    return [top - i * (height + GAP) - height for i in range(count)]


def diagram(plan: Plan) -> bytes:
    """The PNG of the plan's copies."""
    host_repos = [r for r, p in plan.repositories.items() if p.failure_domain == "same-host"]
    columns: list[tuple[str, list[str]]] = [("assets", list(plan.assets))]
    if host_repos:
        columns.append(("same-host", host_repos))
    for domain in ("same-site", "off-site", "cloud"):
        names = [r for r, p in plan.repositories.items() if p.failure_domain == domain]
        if names:
            columns.append((domain, names))
    tallest = max(len(n) * ((ASSET_H if c == "assets" else REPO_H) + GAP) for c, n in columns)
    top = tallest + 0.9
    width = len(columns) * COL_W + 0.4
    bottom = -0.25
    fig = Figure(figsize=(width * 0.85, (top - bottom) * 0.85), dpi=120)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.2, width - 0.2)
    ax.set_ylim(bottom, top + 0.1)
    ax.axis("off")

    boxes: dict[str, Box] = {}
    zone_boxes: dict[str, Box] = {}
    for i, (kind, names) in enumerate(columns):
        x = 0.2 + i * COL_W + (COL_W - BOX_W) / 2 - 0.2
        height = ASSET_H if kind == "assets" else REPO_H
        for name, y in zip(names, _stack(len(names), height, top - 0.55), strict=True):
            boxes[f"{kind}:{name}" if kind == "assets" else f"repo:{name}"] = Box(x, y, BOX_W, height)
        lowest = min(b.y for k, b in boxes.items() if (k.startswith("assets:") if kind == "assets" else k[5:] in names))
        zone_boxes[kind] = Box(x - PAD, lowest - PAD, BOX_W + 2 * PAD, top - lowest + PAD - 0.25)

    _zones(ax, zone_boxes, plan)
    for name, asset in plan.assets.items():
        b = boxes[f"assets:{name}"]
        _box(ax, b, "white", PALETTE[list(plan.assets).index(name) % len(PALETTE)])
        ax.text(b.x + 0.12, b.y + b.h - 0.22, name, fontsize=11, fontweight="bold", va="center")
        ax.text(b.x + 0.12, b.y + b.h - 0.5, f"{asset.criticality} · {asset.schedule}", fontsize=8.5, va="center")
        ax.text(
            b.x + 0.12,
            b.y + b.h - 0.74,
            f"RPO {format_duration(asset.rpo)} · RTO {format_duration(asset.rto)}",
            fontsize=8.5,
            va="center",
            color="#374151",
        )
    for name, repo in plan.repositories.items():
        b = boxes[f"repo:{name}"]
        _box(ax, b, "white", "#4b5563")
        ax.text(b.x + 0.12, b.y + b.h - 0.22, name, fontsize=11, fontweight="bold", va="center")
        ax.text(b.x + 0.12, b.y + b.h - 0.47, repo.medium, fontsize=8.5, va="center")
        ax.text(
            b.x + 0.12,
            b.y + b.h - 0.69,
            shorten(redact_url(repo.url), 29),
            fontsize=7,
            va="center",
            color="#374151",
            family="monospace",
        )
        marks = [m for m, on in (("immutable", repo.immutable), ("offline", repo.offline)) if on]
        if not repo.key_escrow:
            marks.append("NO KEY ESCROW")
        ax.text(
            b.x + 0.12,
            b.y + b.h - 0.93,
            " · ".join(marks) or "deletable online",
            fontsize=8.5,
            va="center",
            color=RED if not repo.key_escrow else "#15803d" if marks else "#92400e",
            fontweight="bold",
        )

    n = len(plan.assets)
    for i, (name, asset) in enumerate(plan.assets.items()):
        colour = PALETTE[i % len(PALETTE)]
        dy = (i - (n - 1) / 2) * 0.16
        first = boxes[f"repo:{asset.repositories[0]}"]
        _arrow(ax, boxes[f"assets:{name}"], first, colour, "-", 0.0, dy, 0.0)
        for other in asset.repositories[1:]:
            _arrow(ax, first, boxes[f"repo:{other}"], colour, "--", dy, dy, 0.2 + 0.08 * i)
    ax.plot([], [], color="#374151", ls="-", label="backup")
    ax.plot([], [], color="#374151", ls="--", label="copy")
    ax.legend(loc="lower right", fontsize=9, frameon=False, ncols=2, borderaxespad=0.2)
    return png(fig)


def _zones(ax: Axes, zones: dict[str, Box], plan: Plan) -> None:
    host = [zones["assets"]] + ([zones["same-host"]] if "same-host" in zones else [])
    hx0, hx1 = min(b.x for b in host), max(b.x + b.w for b in host)
    hy0, hy1 = min(b.y for b in host), max(b.y + b.h for b in host)
    site = [*host, *([zones["same-site"]] if "same-site" in zones else [])]
    sx0, sx1 = min(b.x for b in site) - 0.12, max(b.x + b.w for b in site) + 0.12
    sy0, sy1 = min(b.y for b in site) - 0.12, max(b.y + b.h for b in site) + 0.3
    _zone(ax, Box(sx0, sy0, sx1 - sx0, sy1 - sy0), f"Site: {plan.organisation.name}", "#f9fafb", "#9ca3af")
    _zone(ax, Box(hx0, hy0, hx1 - hx0, hy1 - hy0), "Protected host", *ZONES["same-host"][1:])
    for kind in ("same-site", "off-site", "cloud"):
        if kind in zones:
            _zone(ax, zones[kind], *ZONES[kind])


def _zone(ax: Axes, b: Box, label: str, face: str, edge: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (b.x, b.y), b.w, b.h, boxstyle="round,pad=0,rounding_size=0.15", fc=face, ec=edge, lw=1.2, zorder=0
        )
    )
    ax.text(
        b.x + 0.12,
        b.y + b.h - 0.17,
        shorten(label, 40),
        fontsize=9.5,
        color="#374151",
        fontweight="bold",
        va="center",
        zorder=1,
    )


def _box(ax: Axes, b: Box, face: str, edge: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (b.x, b.y), b.w, b.h, boxstyle="round,pad=0,rounding_size=0.08", fc=face, ec=edge, lw=1.5, zorder=2
        )
    )


def _arrow(ax: Axes, a: Box, b: Box, colour: str, style: str, dy_a: float, dy_b: float, bend: float) -> None:
    """From box ``a`` to box ``b``: straight to the next column, bending below the boxes in between when it skips
    columns, around the right side within a column. ``dy_*`` shift the ends so that arrows do not overlap."""
    (ax_, ay), (bx, by) = a.right, b.left
    if b.x - (a.x + a.w) > COL_W:  # skips a column: from below the box to below the other, bending under
        start, end, rad = (a.x + a.w * 0.75 + dy_a * 2, a.y), (b.x + b.w * 0.25 + dy_b * 2, b.y), bend + 0.1
    elif b.x > a.x + a.w:
        start, end, rad = (ax_, ay + dy_a), (bx, by + dy_b), 0.0
    elif b.x + b.w < a.x:
        start, end, rad = (a.x, ay + dy_a), (b.x + b.w, by + dy_b), bend
    else:
        start, end, rad = (ax_, ay + dy_a), (b.x + b.w, b.y + b.h / 2 + dy_b), -0.6
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            color=colour,
            lw=1.4,
            ls=style,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=2,
            shrinkB=2,
            zorder=1.5,  # under the boxes: a crossing line does not cover their text
        )
    )
