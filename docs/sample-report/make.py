#!/usr/bin/env python3
"""Make the sample disaster-recovery report from the example plan of docs/plan.md (tests/plan/fixtures).

Two weeks of a small organisation's life, replayed with the real commands at chosen times (`--now`): the example
plan with its repositories and data moved into a scratch directory (and the data on /dev/shm, another disk), `pass`
and `pg_dump` stood in for by small scripts, `plan init`, a `run` every two hours with the documents and the database
growing, the daemon down for most of a day (an RPO breach to see in the charts), an attempted encryption of the
shared documents caught by the ransomware guard and released after review, and restore drills; then `sauvegarde
report` in Markdown (with its PNG charts), HTML and PDF into this directory. Every secret the plan points at (the
password files, the `pass` output, the USB password variable, the SMTP password) is checked to be absent from all
three documents.

Usage: python docs/sample-report/make.py [--keep] [--out DIR]   (about two minutes; --keep leaves the scratch directory)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = ROOT / "tests" / "plan" / "fixtures" / "example-plan.toml"
START = datetime(2025, 3, 1, 0, 5)  # Europe/Paris wall clock, as the plan's schedules
DAYS = int(os.environ.get("SAMPLE_DAYS", "14"))
DOWN = (datetime(2025, 3, 9, 11, 0), datetime(2025, 3, 10, 7, 0))  # the daemon was down: no run
ATTACK = datetime(2025, 3, 11, 0, 5)  # a laptop encrypts the shared folder at night; the 02:05 backup sees it
SECRETS = {
    "nas": "nas-Secret-4c1f9d2e7b",
    "offsite": "offsite-Secret-88a0e3f5c1",
    "usb": "usb-Secret-2d9b7e61aa",
    "smtp": "smtp-Secret-5e3a1c0f94",
}
KDF = ["--kdf-memory", "64", "--kdf-iterations", "1"]


def sh(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "sauvegarde", *args], env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise SystemExit(f"sauvegarde {' '.join(args)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def grow_documents(docs: Path, finance: Path, day: int, rnd: random.Random) -> None:
    """A day of office work: a few new letters and spreadsheets, one edited, one renamed."""
    for i in range(3):
        (docs / f"letters/2025-03-{day:02d}-{i}.txt").write_text(
            f"Letter {day}-{i} to the families.\n"
            + "Dear families, the garden party is on Saturday.\n" * rnd.randint(40, 400)
        )
    rows = "\n".join(f"2025-03-{day:02d},{rnd.randint(10, 9999)},supplies" for _ in range(rnd.randint(2000, 6000)))
    (finance / f"ledger-2025-03-{day:02d}.csv").write_text("date,amount,what\n" + rows + "\n")
    (docs / "minutes.txt").write_text(
        (docs / "minutes.txt").read_text() + f"Meeting of day {day}: nothing to report.\n"
    )


def setup(work: Path, data: Path) -> tuple[Path, dict[str, str]]:
    conf = work / "config"
    conf.mkdir(parents=True)
    plan_text = FIXTURE.read_text()
    for old, new in {
        "/mnt/nas/sauvegarde": f"{work}/mnt/nas/sauvegarde",
        "s3://s3.eu-west-3.amazonaws.com/tilleuls-backup/sauvegarde": f"{work}/cloud/tilleuls-backup/sauvegarde",
        "/media/usb-rotation/sauvegarde": f"{work}/media/usb-rotation/sauvegarde",
        "/srv/share/": f"{data}/srv/share/",
        '# state_dir = "/var/lib/sauvegarde"': f'state_dir = "{work}/state/sauvegarde"',  # = `guard`'s default
    }.items():
        assert old in plan_text, old
        plan_text = plan_text.replace(old, new)
    plan = conf / "plan.toml"
    plan.write_text(plan_text)
    (conf / "nas.password").write_text(SECRETS["nas"] + "\n")
    (conf / "smtp.password").write_text(SECRETS["smtp"] + "\n")
    for p in (conf / "nas.password", conf / "smtp.password"):
        p.chmod(0o600)
    (work / "mnt/nas").mkdir(parents=True)
    (work / "cloud").mkdir()
    (work / "media/usb-rotation").mkdir(parents=True)
    bin_dir = work / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "pass", f"#!/bin/sh\necho {SECRETS['offsite']}\n")
    # the care database: a stable part, and rows added as the clock (SAMPLE_DAY) advances
    executable(
        bin_dir / "pg_dump",
        "#!/usr/bin/env python3\nimport os, random, sys\n"
        "r = random.Random(7); out = sys.stdout.buffer\n"
        "out.write(b'PGDMP' + r.randbytes(3_000_000))\n"
        "for d in range(int(os.environ.get('SAMPLE_HOURS', '0'))):\n"
        "    out.write(random.Random(d).randbytes(9_000))\n",
    )
    docs, finance = data / "srv/share/documents", data / "srv/share/finance"
    (docs / "letters").mkdir(parents=True)
    finance.mkdir(parents=True)
    (docs / "minutes.txt").write_text("Minutes of the board.\n")
    with zipfile.ZipFile(docs / ".canary.docx", "w", zipfile.ZIP_DEFLATED) as z:  # a real (tiny) Word document
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr(
            "word/document.xml",
            "<w:document><w:body>" + "<w:p>Canary: do not touch.</w:p>" * 200 + "</w:body></w:document>",
        )
    rnd = random.Random(3)
    for i in range(40):
        (docs / f"letters/archive-{i:03d}.txt").write_text("Archived letter.\n" * rnd.randint(100, 3000))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAUVEGARDE_", "XDG_"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        HOME=str(work / "home"),
        XDG_CONFIG_HOME=str(work / "xdg-config"),
        XDG_CACHE_HOME=str(work / "cache"),
        XDG_STATE_HOME=str(work / "state"),
        SAUVEGARDE_USB_PASSWORD=SECRETS["usb"],
        SAUVEGARDE_STORAGE_RETRIES="0",
        LC_ALL="C.UTF-8",
        TZ="Europe/Paris",
    )
    return plan, env


def attack(docs: Path) -> list[tuple[Path, bytes]]:
    """Encrypt the letters in place, renamed .locked, with a ransom note; returns what to put back."""
    saved = []
    for p in sorted((docs / "letters").glob("archive-*.txt")):
        saved.append((p, p.read_bytes()))
        p.with_suffix(".txt.locked").write_bytes(os.urandom(len(saved[-1][1])))
        p.unlink()
    (docs / "HOW_TO_DECRYPT.txt").write_text("All your files are encrypted. Pay 2 bitcoin to recover them.\n")
    return saved


def recover(docs: Path, saved: list[tuple[Path, bytes]]) -> None:
    for p, content in saved:
        p.with_suffix(".txt.locked").unlink()
        p.write_bytes(content)
    (docs / "HOW_TO_DECRYPT.txt").unlink()


def replay(plan: Path, env: dict[str, str], data: Path) -> None:
    docs, finance = data / "srv/share/documents", data / "srv/share/finance"
    rnd = random.Random(5)
    sh(env, "plan", "init", "--plan", str(plan), *KDF)
    t, end = START, START + timedelta(days=DAYS)
    saved: list[tuple[Path, bytes]] = []
    while t < end:
        env["SAMPLE_HOURS"] = str(int((t - START).total_seconds() // 3600))
        if t.hour == 0:
            grow_documents(docs, finance, t.day, rnd)
        if t == ATTACK:
            saved = attack(docs)
        if not DOWN[0] <= t < DOWN[1]:
            res = sh(env, "run", "--plan", str(plan), "--now", t.isoformat(), check=False)
            if res.returncode not in (0, 1):
                raise SystemExit(f"run at {t}: exit {res.returncode}\n{res.stderr}")
            print(f"{t:%Y-%m-%d %H:%M} run: exit {res.returncode}", flush=True)
        if t == ATTACK + timedelta(hours=8):  # the provider came, put the letters back, released the snapshot
            recover(docs, saved)
            release(plan, env)
        if t.hour == 10 and t.day in (5, 12):
            sh(
                env,
                "drill",
                "--plan",
                str(plan),
                "--asset",
                "documents",
                "--repo",
                "offsite",
                "--now",
                t.isoformat(),
                check=False,
            )
        if t.hour == 16 and t.day in (4, 8, 13):
            sh(
                env,
                "drill",
                "--plan",
                str(plan),
                "--asset",
                "care-records",
                "--repo",
                "usb",
                "--sample",
                "50%",
                "--now",
                t.isoformat(),
                check=False,
            )
        t += timedelta(hours=2)


def release(plan: Path, env: dict[str, str]) -> None:
    nas = {**env, "SAUVEGARDE_REPOSITORY": str(plan.parents[1] / "mnt/nas/sauvegarde")}
    nas["SAUVEGARDE_PASSWORD_FILE"] = str(plan.parent / "nas.password")
    snaps = json.loads(sh(nas, "snapshots", "--tag", "asset:documents", "--json").stdout)
    for snap in snaps:
        if (snap.get("guard") or {}).get("verdict") not in (None, "clean"):
            reason = "laptop of the accounts office encrypted the letters; files restored from the snapshot before"
            print(sh(nas, "guard", "release", snap["id"], "--reason", reason).stdout.strip())


def main() -> None:
    keep = "--keep" in sys.argv
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else HERE
    # fixed places, so that the paths in the documents do not change from one run to the next
    work = Path(tempfile.gettempdir()) / "sauvegarde-sample"
    data = (Path("/dev/shm") if Path("/dev/shm").is_dir() else work) / "sauvegarde-sample-data"
    for old in (work, data):
        shutil.rmtree(old, ignore_errors=True)
    work.mkdir()
    data.mkdir()
    try:
        plan, env = setup(work, data)
        replay(plan, env, data)
        now = (START + timedelta(days=DAYS) - timedelta(hours=1, minutes=35)).isoformat()
        for name in ("report.md", "report.html", "report.pdf"):
            for old in out.glob("report*.png"):
                if name == "report.md":
                    old.unlink()
            print(sh(env, "report", "--plan", str(plan), "--now", now, "-o", str(out / name)).stdout.strip())
        check_no_secrets(out)
    finally:
        if keep:
            print(f"kept {work} and {data}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(data, ignore_errors=True)


def check_no_secrets(out: Path) -> None:
    texts = [(out / "report.md").read_text(), (out / "report.html").read_text()]
    pdf = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True)
    if pdf.returncode == 0:
        texts.append(pdf.stdout)
    for name, secret in SECRETS.items():
        for text in texts:
            assert secret not in text, f"the {name} secret is in the sample report"
    print("no secret in the documents")


if __name__ == "__main__":
    main()
