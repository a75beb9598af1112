"""The document in its three formats, from real repositories and a real state database: contacts in order, the
inventory, where the copies are, the findings with their fixes, valid charts, a runbook per asset with the right
repository and commands, and not one of the plan's secrets."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_helpers import NOW, SECRETS, ReportEnv

from sauvegarde.report import render_html as lazy_render_html
from sauvegarde.report.document import build, render, render_html, write

PNG = b"\x89PNG\r\n\x1a\n"


class Text(HTMLParser):
    """The visible text of an HTML document, and its images."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.images: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def parsed(html: str) -> Text:
    t = Text()
    t.feed(html)
    return t


def assert_no_secret(text: str | bytes, where: str) -> None:
    for what, secret in SECRETS.items():
        needle = secret.encode() if isinstance(text, bytes) else secret
        assert needle not in text, f"the {what} appears in the {where}"


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF: with pypdf when installed, else the /Type /Page objects, looking inside compressed object
    streams too (WeasyPrint writes them)."""
    try:
        import pypdf  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        bodies = [pdf]
        for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
            try:
                bodies.append(zlib.decompress(m[1]))
            except zlib.error:
                continue
        return sum(len(re.findall(rb"/Type\s*/Page(?![s\w])", b)) for b in bodies)
    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG), data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def html(report_env: ReportEnv) -> str:
    with report_env.db() as db:
        return render_html(report_env.plan, db, NOW)


def test_render_html_is_exposed_where_the_dashboard_looks(report_env: ReportEnv) -> None:
    with report_env.db() as db:
        assert "Claire Martin" in lazy_render_html(report_env.plan, db, NOW)


def test_contacts_in_calling_order_provider_last(html: str) -> None:
    text = parsed(html).text
    section = text[text.index("1. Who to call") : text.index("2. What is protected")]
    names = ["Claire Martin", "Hugo Bernard", "Zoé Arnaud", "Rhône Informatique"]
    positions = [section.index(n) for n in names]
    assert positions == sorted(positions)
    assert "+33 4 72 00 00 02" in section and "compta@tilleuls.example" in section


def test_inventory_copies_schedules_and_keys(report_env: ReportEnv, html: str) -> None:
    text = parsed(html).text
    inventory = text[text.index("2. What is protected") : text.index("3. Where every copy lives")]
    assert re.search(r"documents shared office documents .* high 1d 4h \d+\.\d\d KiB", inventory), inventory
    assert re.search(r"care-db care records database output of cat .* saved as /care.pgdump critical 4h 2h", inventory)
    copies = text[text.index("3. Where every copy lives") : text.index("4. Schedules and retention")]
    for name in ("nas", "offsite", "server"):
        assert name in copies
    assert "unreadable" in copies  # the REST server is not there
    assert re.search(r"documents \(RPO 1d\) nas backup 3 2025-03-10 02:00", copies), copies
    schedules = text[text.index("4. Schedules and retention") : text.index("5. Compliance findings")]
    assert "daily 02:00" in schedules and "daily 40" in schedules and "hourly 48" in schedules
    assert "from offsite, monthly 1 09:00, sample 100%" in schedules
    assert "slack webhook on hooks.slack.example" in schedules and "login alerts" in schedules
    keys = text[text.index("7. Keys and passwords") : text.index("8. Restore runbooks")]
    assert f"file {report_env.tmp / 'nas.password'}" in keys
    assert "environment variable $SAUVEGARDE_REPORT_TEST_OFFSITE_PW" in keys
    assert "recovery sheet in the director's safe" in keys
    assert "NOT RECORDED" in keys  # the server repository has no key escrow


def test_findings_with_evidence_and_fixes(html: str) -> None:
    text = parsed(html).text
    findings = text[text.index("5. Compliance findings") : text.index("6. History")]
    assert "fail repository server: no recovery key kept away from this host" in findings
    assert "Fix: run sauvegarde key export --repo rest:http://backup@127.0.0.1:9/tilleuls" in findings
    assert "asset care-db: 2 copies counting the original; 3 are needed" in findings
    assert "Evidence:" in findings
    assert "Rules that hold" in findings and "within the RPO of 1d" in findings
    assert "The plan is NOT met" in text


def test_runbook_per_asset_with_the_exact_commands(report_env: ReportEnv, html: str) -> None:
    text = parsed(html).text
    runbooks = text[text.index("8. Restore runbooks") :]
    nas, offsite = report_env.repo_url("nas"), report_env.repo_url("offsite")
    docs = runbooks[runbooks.index("Restoring documents") : runbooks.index("Restoring care-db")]
    assert f"export SAUVEGARDE_REPOSITORY={nas}" in docs
    assert f"export SAUVEGARDE_PASSWORD_FILE={report_env.tmp / 'nas.password'}" in docs
    assert "sauvegarde snapshots --tag asset:documents" in docs
    assert "sauvegarde restore latest --tag asset:documents --target /var/tmp/restore-documents --verify" in docs
    assert f"rsync -aHAX /var/tmp/restore-documents{report_env.data}/ {report_env.data}/" in docs
    rebuild = docs[docs.index("Rebuild on a new machine from offsite") :]
    assert "pip install 'sauvegarde==" in rebuild
    assert "Where it is: recovery sheet at the provider's office" in rebuild
    assert f"sauvegarde key recover --repo {offsite} --new-password-file /root/sauvegarde-offsite.password" in rebuild
    assert f"export SAUVEGARDE_REPOSITORY={offsite}" in rebuild
    assert "sauvegarde check --read-data-subset 10%" in rebuild
    care = runbooks[runbooks.index("Restoring care-db") :]
    assert "sauvegarde dump latest /care.pgdump --tag asset:care-db > /var/tmp/restore-care-db/care.pgdump" in care
    assert "NO off-site copy" in care  # it only lives on the NAS
    assert "Call first: Claire Martin (+33 4 72 00 00 01)" in care


def test_charts_and_diagram_are_real_pngs(html: str) -> None:
    images = parsed(html).images
    assert len(images) == 6  # the diagram and five history charts (each has data here)
    for src in images:
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(src.split(",", 1)[1]))
        assert width >= 600 and height >= 150
    for chart in ("stored-size", "backup-durations", "rpo-compliance", "drills", "guard"):
        assert f'id="chart-{chart}"' in html


def test_html_is_standalone_and_script_free(html: str) -> None:
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html)  # nothing fetched: images are data: URIs
    assert "&#34;" not in html.split("</style>")[0]  # the CSS is not HTML-escaped
    assert 'style="' not in html  # no style attribute: the dashboard's CSP allows only the <style> block


def test_no_secret_in_any_format(report_env: ReportEnv, tmp_path: Path, html: str) -> None:
    assert_no_secret(html, "HTML")
    with report_env.db() as db:
        md = render(report_env.plan, db, NOW, "md")
        pdf = render(report_env.plan, db, NOW, "pdf")
    assert_no_secret(md.content, "Markdown")
    assert_no_secret(pdf.content, "PDF")
    if shutil.which("pdftotext"):
        out = tmp_path / "r.pdf"
        out.write_bytes(pdf.content)
        assert_no_secret(subprocess.run(["pdftotext", out, "-"], capture_output=True, text=True).stdout, "PDF text")


def test_markdown_links_its_charts_beside_it(report_env: ReportEnv, tmp_path: Path) -> None:
    with report_env.db() as db:
        rendered = render(report_env.plan, db, NOW, "md", stem="dr")
    written = write(rendered, str(tmp_path / "out" / "dr.md"))
    text = (tmp_path / "out" / "dr.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 6 and len(written) == 7
    for link in links:
        assert "/" not in link and link.startswith("dr-") and link.endswith(".png")
        png_size((tmp_path / "out" / link).read_bytes())
    positions = [text.index(n) for n in ("Claire Martin", "Hugo Bernard", "Zoé Arnaud", "Rhône Informatique")]
    assert positions == sorted(positions)
    assert "| 1 | Claire Martin | director | +33 4 72 00 00 01 | - |" in text
    assert "sauvegarde restore latest --tag asset:documents" in text
    assert "**FAIL** repository server: no recovery key" in text


def test_pdf_has_pages_and_the_text(report_env: ReportEnv, tmp_path: Path) -> None:
    with report_env.db() as db:
        pdf = render(report_env.plan, db, NOW, "pdf").content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf_pages(pdf) >= 4
    if shutil.which("pdftotext"):
        (tmp_path / "r.pdf").write_bytes(pdf)
        text = subprocess.run(["pdftotext", tmp_path / "r.pdf", "-"], capture_output=True, text=True).stdout
        assert "Claire Martin" in text and "Restoring documents" in text
        assert "sauvegarde snapshots --tag asset:documents" in text


def test_build_without_measuring_leaves_sizes_unknown(report_env: ReportEnv) -> None:
    with report_env.db() as db:
        report = build(report_env.plan, db, NOW, measure=False)
    assert all(r.stored is None for r in report.content.repositories)
    assert [c.name for c in report.content.contacts] == [
        "Claire Martin",
        "Hugo Bernard",
        "Zoé Arnaud",
        "Rhône Informatique",
    ]
