"""Inline SVG line charts drawn on the server: no script, no external file, nothing for the CSP to allow.

A chart is a few series of (time, value) points on a shared time axis; values are formatted by a caller-supplied
function for the axis labels. Every text is escaped; colours are attributes (not ``style``), so a strict
``style-src 'self'`` still applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 28, 36

Point = tuple[float, float]  # (epoch seconds, value)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / n for i in range(n + 1)]


def _date(ts: float, span: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%H:%M" if span < 2 * 86400 else "%m-%d" if span < 300 * 86400 else "%Y-%m")


def line_chart(title: str, series: Mapping[str, Sequence[Point]], fmt: Callable[[float], str]) -> Markup:
    """An SVG chart of ``series`` (name -> points), or a short note when there is nothing to draw."""
    points = [p for pts in series.values() for p in pts]
    head = f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
    parts = [head, f"<title>{escape(title)}</title>"]
    parts.append(f'<text x="{LEFT}" y="16" class="chart-title" fill="#111827">{escape(title)}</text>')
    if not points:
        parts.append(f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" fill="#6b7280">no data yet</text>')
        return Markup("".join(parts) + "</svg>")
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y1 = max(max(p[1] for p in points), 0.0) or 1.0
    if x1 == x0:
        x0, x1 = x0 - 3600, x1 + 3600
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - y / y1 * plot_h

    for y in _ticks(0.0, y1):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11" fill="#4b5563">'
            f"{escape(fmt(y))}</text>"
        )
    for x in _ticks(x0, x1):
        parts.append(
            f'<text x="{sx(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" fill="#4b5563">'
            f"{escape(_date(x, x1 - x0))}</text>"
        )
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        ordered = sorted(pts)
        if len(ordered) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ordered)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in ordered:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        lx = LEFT + i * 150
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{HEIGHT - 5}" font-size="11" fill="#111827">{escape(name)}</text>')
    return Markup("".join(parts) + "</svg>")
