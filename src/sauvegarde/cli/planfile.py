"""What the plan commands share: the ``--plan`` option, loading the plan, the state database, and ``--now``."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sauvegarde.plan.paths import resolve_plan_path
from sauvegarde.state.db import StateDB, default_path

if TYPE_CHECKING:
    from sauvegarde.plan.model import Plan  # pydantic: imported only when a plan is loaded

F = TypeVar("F", bound=Callable[..., Any])


def plan_options(f: F) -> F:
    """``--plan FILE`` (or SAUVEGARDE_PLAN) and the hidden ``--now`` used by tests to fix the clock."""
    f = click.option(
        "--now",
        type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
        hidden=True,
        help="Pretend it is this time (tests, what-if).",
    )(f)
    return click.option(
        "--plan",
        "plan_path",
        metavar="FILE",
        help="Plan file (default: $SAUVEGARDE_PLAN, else $XDG_CONFIG_HOME/sauvegarde/plan.toml).",
    )(f)


def load(plan_path: str | None) -> Plan:
    from sauvegarde.plan.load import load_plan  # see sauvegarde.plan.paths

    return load_plan(resolve_plan_path(plan_path))


def open_state(plan: Plan) -> StateDB:
    return StateDB(default_path(plan.settings.state_dir))


def state_path(plan_path: str | None = None) -> str:
    """The state database of commands that do not need a plan (``backup``, ``guard release``): the plan's
    ``settings.state_dir`` when a plan file is given or found, else the default under ``$XDG_STATE_HOME``."""
    path = resolve_plan_path(plan_path)
    if plan_path is None and not os.path.exists(path):
        return default_path()
    from sauvegarde.plan.load import load_plan  # see sauvegarde.plan.paths

    return default_path(load_plan(path).settings.state_dir)


def clock(now: datetime | None) -> Callable[[], datetime]:
    """A clock frozen at ``--now`` (naive means local time), else the real one."""
    if now is None:
        return lambda: datetime.now(UTC)
    fixed = now.astimezone()
    return lambda: fixed
