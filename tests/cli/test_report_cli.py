"""`sauvegarde report` end to end: real runs at two times and a drill, then the document in every format, with the
format taken from the file name or --format, the Markdown charts beside it, and the password nowhere; a clear
one-line error and exit 1 when WeasyPrint is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_harness import PASSWORD, Cli
from dr_plan import KDF, write_plan

SMTP_SECRET = "smtp-Secret-9f3e2a71"
ALERTS = """
[alerts]
email = ["it@tilleuls.example"]
[alerts.smtp]
host = "smtp.tilleuls.example"
username = "alerts"
password_file = "smtp.password"
"""


def _prepared(cli: Cli, tmp_path: Path) -> Path:
    plan = write_plan(tmp_path, ALERTS)
    (tmp_path / "smtp.password").write_text(SMTP_SECRET + "\n")
    cli.run("plan", "init", "--plan", plan, *KDF)
    cli.run("run", "--plan", plan, "--now", "2025-03-10T03:00:00", check_exit=None)
    cli.run("run", "--plan", plan, "--now", "2025-03-11T03:00:00", check_exit=None)
    cli.run("drill", "--plan", plan, "--asset", "documents", "--repo", "offsite", "--now", "2025-03-11T03:30:00")
    return plan


def test_report_in_every_format(cli: Cli, tmp_path: Path) -> None:
    plan = _prepared(cli, tmp_path)
    now = ("--now", "2025-03-11T04:00:00")
    out = tmp_path / "out"
    res = cli.run("report", "--plan", plan, *now, "-o", out / "dr.html")
    assert res.stdout.decode().strip() == f"wrote html report {out / 'dr.html'}"
    html = (out / "dr.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Claire Martin" in html and "Rhône Informatique" in html
    assert html.index("Claire Martin") < html.index("Rhône Informatique")
    repo_nas, repo_offsite = tmp_path / "repo-nas", tmp_path / "repo-offsite"
    assert f"export SAUVEGARDE_REPOSITORY={repo_nas}" in html
    assert f"sauvegarde key recover --repo {repo_offsite} --new-password-file" in html
    assert "sauvegarde restore latest --tag asset:documents --target /var/tmp/restore-documents --verify" in html
    assert "recovery sheet at the provider&#39;s office" in html
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 6  # the diagram and five charts
    res = cli.run("report", "--plan", plan, *now, "-o", out / "dr.md", "--json")
    written = json.loads(res.stdout)
    assert written["format"] == "md" and len(written["files"]) == len(list(out.glob("dr-*.png"))) + 1
    md = (out / "dr.md").read_text()
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / link).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    cli.run("report", "--plan", plan, *now, "--format", "pdf", "-o", out / "dr.document")
    pdf = (out / "dr.document").read_bytes()
    assert pdf.startswith(b"%PDF-")
    for text in (html, md, pdf.decode("latin-1")):
        assert PASSWORD not in text and SMTP_SECRET not in text


def test_pdf_without_weasyprint_is_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    plan = write_plan(tmp_path)
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "weasyprint.py").write_text("raise ImportError('No module named weasyprint')\n")
    res = cli.run("report", "--plan", plan, "-o", tmp_path / "x.pdf", check_exit=1, env={"PYTHONPATH": str(shadow)})
    err = res.stderr.decode()
    assert err.count("\n") == 1 and 'pip install "sauvegarde[pdf]"' in err, err
    assert not (tmp_path / "x.pdf").exists()
