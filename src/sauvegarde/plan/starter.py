"""The starter plan ``quickstart`` writes: one asset, one local repository, honest about what it lacks."""

from __future__ import annotations

import json
import os
import re
import secrets

from sauvegarde.util import xdg


def asset_name_for(path: str) -> str:
    base = os.path.basename(os.path.normpath(path)) or "root"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "files"
    return name[:64]


def write_new_password(path: str) -> bool:
    """Create ``path`` (0600) holding a strong random password; False when it already exists (kept as it is)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return True


def starter_plan(asset: str, path: str, repository_url: str, password_line: str) -> str:
    """The TOML text; ``password_line`` is e.g. ``password_file = "repository.password"``."""
    q = json.dumps  # a TOML basic string is a JSON string for these values
    return f"""# Written by `sauvegarde quickstart`: a start, not yet a disaster-recovery plan.
# One local copy on the same machine is not a plan: `sauvegarde plan check` says what is missing.
# Every field is explained in docs/plan.md.
version = 1

[organisation]
name = "My organisation"          # who this plan protects; add [[organisation.contacts]] to call, in order

[settings]
min_history = "30d"

[repositories.local]
url = {q(repository_url)}
{password_line}
failure_domain = "same-host"
medium = "disk"
# key_escrow = "recovery sheet (sauvegarde key export) in the office safe"   # once it is true

[assets.{asset}]
paths = [{q(path)}]
exclude = [".cache", "*.tmp"]
criticality = "high"
rpo = "1d"
rto = "1d"
schedule = "hourly"
retention = {{ keep_hourly = 24, keep_daily = 30, keep_weekly = 8, keep_monthly = 12 }}
repositories = ["local"]
"""


def default_repository_url() -> str:
    return xdg.default_repository()
