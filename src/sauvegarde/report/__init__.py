"""Showing the plan's state: the disaster-recovery document and runbook (:mod:`.document`), its charts and diagram,
and the Prometheus metrics (:mod:`.metrics`).

``render_html`` and ``render`` are importable from here; :mod:`.document` (and matplotlib) loads only when they are
first used, so importing :mod:`.metrics` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render", "render_html"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sauvegarde.report import document

        return getattr(document, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
