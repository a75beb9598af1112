"""A small plan with two local repositories and one asset, for the alerts, metrics and report CLI tests."""

from __future__ import annotations

from pathlib import Path

from cli_trees import random_bytes, write_file

KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")


def write_plan(tmp_path: Path, extra: str = "") -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True, exist_ok=True)
    write_file(data / "a.txt", b"alpha\n")
    write_file(data / "sub" / "b.bin", random_bytes(200_000, 3))
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f"""
[organisation]
name = "Les Tilleuls"
[[organisation.contacts]]
name = "Claire Martin"
role = "director"
phone = "+33 4 72 00 00 01"
[organisation.provider]
name = "Rhône Informatique"
email = "support@rhone-info.example"
[settings]
jitter = "0s"
timezone = "UTC"
[repositories.nas]
url = "{tmp_path / "repo-nas"}"
password_env = "SAUVEGARDE_PASSWORD"
failure_domain = "same-site"
medium = "nas"
key_escrow = "recovery sheet in the director's safe"
[repositories.offsite]
url = "{tmp_path / "repo-offsite"}"
password_env = "SAUVEGARDE_PASSWORD"
failure_domain = "off-site"
medium = "removable-disk"
offline = true
key_escrow = "recovery sheet at the provider's office"
prune = "never"
[assets.documents]
description = "shared office documents"
paths = ["{data}"]
criticality = "high"
rpo = "1d"
rto = "4h"
schedule = "daily 02:00"
retention = {{ keep_last = 3, keep_daily = 40 }}
repositories = ["nas", "offsite"]
{extra}
"""
    )
    return plan
