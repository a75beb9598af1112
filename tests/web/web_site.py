"""What the dashboard tests share: a real plan (two local repositories, one asset) backed up by the real CLI, an
htpasswd file, and the environment the dashboard needs to open the plan's repositories in this process."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from cli_harness import Cli, private_env
from dr_plan import KDF, write_plan

from sauvegarde.server.auth import add_user

ODD_NAME = b'caf\xe9 "odd";\r\nname.txt'  # Latin-1, not UTF-8; quotes, a semicolon and CR LF for the header
# several blobs, streamed in chunks; text, so the ransomware guard has nothing to say about it
ODD_CONTENT = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(60_000))
USER, PASSWORD = "admin", "s3cret-dashboard"


@dataclass
class Site:
    tmp: Path
    plan: Path
    data: Path
    cli: Cli
    htpasswd: Path

    def snapshot_parts(self) -> list[bytes]:
        """The path of the data directory inside a snapshot, as name segments."""
        return [os.fsencode(p) for p in str(self.data).split("/") if p]


# two more assets for the browser tests, so the status page shows every colour: ``mail`` backed up 22 hours ago
# against a 1-day RPO (amber: past 80% of it), ``archives`` never backed up (red)
MORE_ASSETS = """
[assets.mail]
description = "mail archive"
paths = ["{tmp}/mail"]
criticality = "medium"
rpo = "1d"
rto = "1d"
schedule = "daily 03:00"
retention = {{ keep_last = 3 }}
repositories = ["nas"]
[assets.archives]
description = "scanned archives"
paths = ["{tmp}/archives"]
criticality = "low"
rpo = "1d"
rto = "3d"
schedule = "daily 04:00"
retention = {{ keep_last = 3 }}
repositories = ["nas"]
"""


def make_site(tmp: Path, every_colour: bool = False) -> Site:
    """The plan backed up by the real CLI; with ``every_colour``, also an amber and a red asset and a drill."""
    base = tmp / "env"
    base.mkdir()
    cli = Cli(private_env(base, tmp / "repo"), tmp)
    plan = write_plan(tmp, MORE_ASSETS.format(tmp=tmp) if every_colour else "")
    data = tmp / "data"
    with open(os.path.join(os.fsencode(data), ODD_NAME), "wb") as f:
        f.write(ODD_CONTENT)
    cli.run("plan", "init", "--plan", plan, *KDF)
    if every_colour:
        for name in ("mail", "archives"):
            (tmp / name).mkdir()
            (tmp / name / "inbox.txt").write_text(f"{name}\n" * 100)
        earlier = (datetime.now(UTC) - timedelta(hours=22)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        cli.run("run", "--plan", plan, "--once", "--asset", "mail", "--now", earlier)
        cli.run("run", "--plan", plan, "--once", "--asset", "documents")
        cli.run("drill", "--plan", plan, "--asset", "documents")
    else:
        cli.run("run", "--plan", plan, "--once")
    htpasswd = tmp / "htpasswd"
    add_user(str(htpasswd), USER, PASSWORD, cost=4)
    return Site(tmp, plan, data, cli, htpasswd)
