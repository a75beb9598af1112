"""systemd units for the daemon: a long-running service that stops cleanly on SIGTERM."""

from __future__ import annotations

import shlex


def daemon_unit(command: list[str], plan_path: str, environment: dict[str, str] | None = None) -> str:
    """The ``sauvegarde.service`` unit running ``command daemon --plan plan_path``."""
    exec_start = " ".join(shlex.quote(c) for c in [*command, "daemon", "--plan", plan_path])
    env = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted((environment or {}).items()))
    return (
        "[Unit]\n"
        "Description=Sauvegarde: carry out the backup and disaster-recovery plan\n"
        "Documentation=file://" + plan_path + "\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={exec_start}\n"
        f"{env}"
        "# SIGTERM: the step in progress finishes, nothing new starts\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=30min\n"
        "Restart=on-failure\n"
        "RestartSec=60\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )
