"""Where the plan file is: ``--plan``, else ``SAUVEGARDE_PLAN``, else ``$XDG_CONFIG_HOME/sauvegarde/plan.toml``.

Apart from :mod:`sauvegarde.plan.load` (TOML, pathlib, the model), which a guarded backup imports only when it finds
a plan to read (10 ms of imports otherwise spent at the end of every backup).
"""

from __future__ import annotations

import os

from sauvegarde.util import xdg


def default_plan_path() -> str:
    return os.path.join(xdg.config_dir(), "plan.toml")


def resolve_plan_path(given: str | None) -> str:
    """``--plan``, else ``SAUVEGARDE_PLAN``, else the default under ``$XDG_CONFIG_HOME``."""
    return os.path.abspath(given or os.environ.get("SAUVEGARDE_PLAN") or default_plan_path())
