"""The dashboard end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright): the real
``sauvegarde web`` process on a free loopback port with a login, over a plan backed up by the real CLI.

The browser logs in, reads the status lights, browses a snapshot and downloads files, reads the findings and the
history, and presses "back up now" (a CSRF-checked POST). Each key page is screenshotted under the test's temporary
directory and the PNG is checked: its size, that it is not one flat colour, and that the colours that matter (the
status lights, the chart lines) are really painted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
from web_site import ODD_CONTENT, PASSWORD, USER, Site, make_site

from service_process import free_port, listens, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
# the stylesheet's colours: the three status lights and the first chart series
GREEN, AMBER, RED = (0x16, 0xA3, 0x4A), (0xF5, 0x9E, 0x0B), (0xDC, 0x26, 0x26)
CHART_BLUE = (0x25, 0x63, 0xEB)

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK), reason=f"no {CHROMIUM}: install Debian's chromium (scripts/test does)"
)


@dataclass
class Dashboard:
    site: Site
    url: str
    shots: Path

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, deadline: float = 60.0) -> bool:
    """Whether our server came up (False: its port was taken meanwhile, and it exited saying so). Its own process
    must hold the listening socket: another test's server, started on the same free port, also answers."""
    end = time.monotonic() + deadline
    port = int(url.rsplit(":", 1)[1])
    while True:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")
            if "address already in use" in text:
                return False
            raise AssertionError(f"sauvegarde web exited {proc.returncode}:\n{text}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
                if resp.status == 200 and listens(proc.pid, port):
                    return True
        except OSError:
            if time.monotonic() > end:
                raise
        if time.monotonic() > end:
            raise AssertionError(f"{url} answers, but not from sauvegarde web ({proc.pid})")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The real ``sauvegarde web`` with a login, on a free port, over a plan with a green, an amber and a red
    asset and a drill."""
    site = make_site(tmp_path_factory.mktemp("browser-site"), every_colour=True)
    log = site.tmp / "web.log"
    for _attempt in range(3):  # a free port may be taken by another test before the server binds it
        port = free_port()
        with open(log, "wb") as out:
            proc = site.cli.popen(
                "web",
                "--plan",
                site.plan,
                "--listen",
                f"127.0.0.1:{port}",
                "--htpasswd",
                site.htpasswd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            up = wait_until_up(url, proc, log)
        except BaseException:
            stop_process(proc, grace=15)
            raise
        if up:
            break
    else:
        raise AssertionError(f"sauvegarde web found its port taken three times:\n{log.read_text(errors='replace')}")
    try:
        shots = site.tmp / "screenshots"
        shots.mkdir()
        yield Dashboard(site, url, shots)
    finally:
        stop_process(proc, grace=15)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile of its own; downloads accepted."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(dashboard.site.tmp / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            accept_downloads=True,
            locale="en-GB",
            timezone_id="UTC",
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


def log_in(page: Page, dashboard: Dashboard, password: str = PASSWORD) -> None:
    page.fill("#user", USER)
    page.fill("#password", password)
    page.click("#login")


@pytest.fixture
def page(browser: BrowserContext, dashboard: Dashboard) -> Iterator[Page]:
    """A tab signed in to the dashboard, on the status page."""
    tab = browser.new_page()
    tab.goto(dashboard.url + "/")
    if "/login" in tab.url:
        log_in(tab, dashboard)
        tab.wait_for_url(dashboard.url + "/")
    try:
        yield tab
    finally:
        tab.close()


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 8) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def check_screenshot(
    path: Path, min_height: int = VIEWPORT["height"], colours: dict[str, tuple[int, int, int]] | None = None
) -> dict[str, int]:
    """Checks a screenshot: a PNG of the viewport's width and at least ``min_height`` pixels, many colours (not a
    blank page), and at least a light's worth of pixels of each of ``colours``; returns those pixel counts."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        rgb = img.convert("RGB")
    assert width == VIEWPORT["width"] and height >= min_height, (path, img.size)
    histogram = rgb.getcolors(maxcolors=width * height)
    assert histogram is not None
    assert len(histogram) > 20, f"{path}: {len(histogram)} colours, a blank page?"
    commonest = max(count for count, _ in histogram)
    assert commonest < 0.97 * width * height, f"{path}: almost one flat colour"
    found = {}
    for name, want in (colours or {}).items():
        found[name] = sum(count for count, c in histogram if near(c, want))
        assert found[name] >= 100, f"{path}: only {found[name]} pixels of {name} {want}"
    return found


def test_login_is_asked_then_the_status_page_shows_every_light(browser: BrowserContext, dashboard: Dashboard) -> None:
    browser.clear_cookies()
    tab = browser.new_page()
    try:
        tab.goto(dashboard.url + "/")
        assert tab.url == dashboard.url + "/login?next=/"
        check_screenshot(dashboard.shot(tab, "login"), colours={})
        log_in(tab, dashboard, password="not the password")
        expect(tab.locator("#login-error")).to_contain_text("Wrong user name or password")
        log_in(tab, dashboard)
        tab.wait_for_url(dashboard.url + "/")
        expect(tab.locator("h1")).to_contain_text("Status")
        expect(tab.locator("header.top .who")).to_have_text(USER)
        lights = {
            asset: tab.locator(f"#asset-{asset} .light").first.get_attribute("class")
            for asset in ("documents", "mail", "archives")
        }
        assert lights == {"documents": "light green", "mail": "light amber", "archives": "light red"}
        drill = tab.locator("#asset-documents .last-drill")
        expect(drill).to_contain_text("pass")
        expect(drill).to_contain_text("RTO 4h")
        expect(tab.locator("#asset-archives .last-drill")).to_contain_text("none yet")
        expect(tab.locator("#asset-documents .guard")).to_contain_text("clean")
        expect(tab.locator("#asset-archives .guard")).to_contain_text("no verdict yet")
        expect(tab.locator("#repo-nas .light")).to_have_class("light red")  # its worst asset
        counts = check_screenshot(dashboard.shot(tab, "status"), colours={"green": GREEN, "amber": AMBER, "red": RED})
        print("status light pixels:", counts)
        # the lights are really painted as the stylesheet says, not just named in the markup
        colour = tab.locator("#asset-archives .light").first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(220, 38, 38)"
        notes = os.environ.get("SAUVEGARDE_WEB_SCREENSHOT")  # where to keep a copy for people to look at
        if notes:
            shutil.copyfile(dashboard.shots / "status.png", notes)
    finally:
        tab.close()


def test_snapshot_browser_lists_and_downloads_files(page: Page, dashboard: Dashboard, tmp_path: Path) -> None:
    page.locator("header nav").get_by_role("link", name="nas", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Repository nas")
    row = page.locator("#snapshots tr.snapshot", has_text="documents").first
    row.locator("td.paths a").click()  # straight to the directory backed up
    expect(page.locator("h1")).to_contain_text("Snapshot")
    expect(page.locator(".crumbs")).to_contain_text("/data/")
    page.locator(".crumbs a").first.click()  # up to the snapshot's root, then down again name by name
    for segment in dashboard.site.snapshot_parts():
        page.get_by_role("link", name=f"{os.fsdecode(segment)}/", exact=True).click()
    rows = page.locator("#entries tr.entry")
    expect(rows).to_have_count(3)  # a.txt, sub/ and the file with the odd name
    expect(page.locator("#entries")).to_contain_text("caf\\xe9")  # the undecodable byte, escaped
    check_screenshot(dashboard.shot(page, "browse"), min_height=VIEWPORT["height"], colours={})

    with page.expect_download() as info:
        page.locator("#entries tr.entry", has_text="a.txt").locator("a.download").click()
    download = info.value
    assert download.suggested_filename == "a.txt"
    saved = tmp_path / "a.txt"
    download.save_as(saved)
    assert saved.read_bytes() == b"alpha\n"

    with page.expect_download() as info:
        page.locator("#entries tr.entry", has_text="odd").locator("a.download").click()
    odd = tmp_path / "odd"
    info.value.save_as(odd)
    assert odd.read_bytes() == ODD_CONTENT
    assert info.value.suggested_filename.startswith("caf")

    # a file's own page: its metadata and a download button
    page.get_by_role("link", name="a.txt", exact=True).click()
    expect(page.locator("#metadata")).to_contain_text("6 bytes")
    with page.expect_download() as info:
        page.click("#download")
    again = tmp_path / "again"
    info.value.save_as(again)
    assert again.read_bytes() == b"alpha\n"
    check_screenshot(dashboard.shot(page, "file"), colours={})


def test_findings_and_history(page: Page, dashboard: Dashboard) -> None:
    page.click("nav >> text=Findings")
    expect(page.locator("h1")).to_contain_text("Findings")
    table = page.locator("#findings")
    expect(table.locator("tbody tr").first).to_be_visible()
    # the never backed up asset breaches its RPO: a failing finding with a fix
    breach = table.locator("tbody tr", has_text="archives").filter(has=page.locator(".sev.fail")).first
    expect(breach).to_be_visible()
    check_screenshot(dashboard.shot(page, "findings"), colours={"fail badge": (0xFE, 0xE2, 0xE2)})

    page.click("nav >> text=History")
    expect(page.locator("h1")).to_have_text("History")
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.locator("#drills tbody tr").first).to_contain_text("documents")
    expect(page.locator("#backups tbody tr").first).to_contain_text("ok")
    check_screenshot(dashboard.shot(page, "history"), colours={"chart line": CHART_BLUE})


def wait_for_action(page: Page, kind: str) -> None:
    """Wait for the newest action (of ``kind``) to end, watching the status page reload itself (a meta refresh
    while an action runs: there is no script); it must end done."""
    newest = page.locator("#jobs tbody tr").first
    expect(newest.locator("td").first).to_have_text(kind)
    expect(newest).to_contain_text(USER)
    expect(newest.locator(".job-state")).not_to_have_text("running", timeout=180_000)
    expect(newest.locator(".job-state")).to_have_text("done")
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)  # and it stops reloading


def test_back_up_now_and_drill_now_are_csrf_checked_actions(page: Page, dashboard: Dashboard) -> None:
    before = page.locator("#repo-nas td").nth(3).inner_text()
    page.get_by_role("button", name="Back up documents now").click()
    page.wait_for_url(dashboard.url + "/")
    wait_for_action(page, "run")
    assert int(page.locator("#repo-nas td").nth(3).inner_text()) == int(before) + 1  # one more snapshot
    check_screenshot(dashboard.shot(page, "after-run"), colours={"green": GREEN})

    page.goto(dashboard.url + "/history")
    drills = page.locator("#drills tbody tr").count()
    page.goto(dashboard.url + "/")
    page.get_by_role("button", name="Drill mail now").click()
    page.wait_for_url(dashboard.url + "/")
    wait_for_action(page, "drill")
    page.goto(dashboard.url + "/history")
    expect(page.locator("#drills tbody tr")).to_have_count(drills + 1)
    expect(page.locator("#drills tbody tr").first).to_contain_text("mail")
    page.goto(dashboard.url + "/")

    # the same POST without the session's token, or from another origin, is refused
    refused = page.request.post(dashboard.url + "/actions/run", form={"csrf": "forged"}, max_redirects=0)
    assert refused.status == 403
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    cross = page.request.post(
        dashboard.url + "/actions/run",
        form={"csrf": token},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert cross.status == 403
    assert page.locator("#jobs tbody tr").count() == 2  # nothing else started


def test_metrics_and_report_pages(page: Page, dashboard: Dashboard) -> None:
    response = page.goto(dashboard.url + "/metrics")
    assert response is not None and response.ok
    body = page.locator("body").inner_text()
    assert 'sauvegarde_asset_rpo_seconds{asset="documents",criticality="high"} 86400' in body, body[:2000]
    page.goto(dashboard.url + "/")
    page.locator("header nav").get_by_role("link", name="Report", exact=True).click()
    expect(page.locator("body")).to_contain_text("Claire Martin")  # the call list
    expect(page.locator("body")).to_contain_text("archives")
    # its charts and diagram are data: images, allowed by the report's own policy: they must have loaded
    images = page.locator("img")
    assert images.count() >= 2
    for i in range(images.count()):
        assert images.nth(i).evaluate("e => e.complete && e.naturalWidth > 0"), images.nth(i).get_attribute("alt")
    check_screenshot(dashboard.shot(page, "report"), min_height=2 * VIEWPORT["height"], colours={})
