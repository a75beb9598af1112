"""``sauvegarde install-service``: write a systemd unit that runs the daemon for the current plan."""

from __future__ import annotations

import os
import sys
from datetime import datetime

import click

from sauvegarde.cli.context import AppContext, pass_app
from sauvegarde.cli.planfile import load, plan_options
from sauvegarde.plan.paths import resolve_plan_path
from sauvegarde.plan.service import daemon_unit


@click.command("install-service")
@plan_options
@click.option("--system", "system_wide", is_flag=True, help="Install in /etc/systemd/system (as root).")
@click.option("--unit-dir", metavar="DIR", help="Write the unit into DIR instead.")
@pass_app
def command(
    app: AppContext, plan_path: str | None, now: datetime | None, system_wide: bool, unit_dir: str | None
) -> None:
    """Write sauvegarde.service (the daemon, for this plan) and say how to enable it."""
    path = resolve_plan_path(plan_path)
    load(path)  # refuse to install a service for a plan that does not validate
    if unit_dir is None:
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        unit_dir = "/etc/systemd/system" if system_wide else os.path.join(config_home, "systemd", "user")
    os.makedirs(unit_dir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("XDG_") and k.endswith("_HOME")}
    unit = daemon_unit([sys.executable, "-m", "sauvegarde"], path, env)
    target = os.path.join(unit_dir, "sauvegarde.service")
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(unit)
    os.replace(tmp, target)
    scope = "" if system_wide else " --user"
    if app.json:
        app.emit_json({"unit": target})
        return
    app.out(f"wrote {target}")
    app.out(f"enable and start it with: systemctl{scope} daemon-reload && systemctl{scope} enable --now sauvegarde")
    if not system_wide:
        app.out("to keep it running while you are logged out: loginctl enable-linger $USER")
