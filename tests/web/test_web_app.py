"""The dashboard in process (Starlette's TestClient) over a real plan and real repositories: pages, login, CSRF,
the snapshot browser's downloads and its refusal of path tricks."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from urllib.parse import quote, unquote

import pytest
from prometheus_client.parser import text_string_to_metric_families

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works and is what we pin
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from web_site import ODD_CONTENT, ODD_NAME, PASSWORD, USER, Site

from sauvegarde.web.app import WebOptions, create_app
from sauvegarde.web.auth import Throttle
from sauvegarde.web.browse import BadPath, content_disposition, parse
from sauvegarde.web.charts import line_chart
from sauvegarde.web.views import seconds_label


def client_for(site: Site, login: bool) -> TestClient:
    app = create_app(WebOptions(str(site.plan), htpasswd=str(site.htpasswd) if login else None))
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


@pytest.fixture
def open_client(site_env: Site) -> Iterator[TestClient]:
    with client_for(site_env, login=False) as c:
        yield c
        c.app.state.dashboard.close()  # type: ignore[attr-defined]


@pytest.fixture
def locked_client(site_env: Site) -> Iterator[TestClient]:
    with client_for(site_env, login=True) as c:
        yield c
        c.app.state.dashboard.close()  # type: ignore[attr-defined]


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def snapshot_dir(client: TestClient, repo: str = "nas") -> str:
    page = client.get(f"/repositories/{repo}")
    assert page.status_code == 200
    m = re.search(rf'href="/browse/{repo}/([0-9a-f]+)/"', page.text)
    assert m, page.text
    return m.group(1)


def data_url(site: Site, kind: str, snap: str, *names: bytes) -> str:
    segs = [*site.snapshot_parts(), *names]
    return f"/{kind}/nas/{snap}/" + "/".join(quote(s, safe="") for s in segs)


def test_pages_render_with_lights_snapshots_findings_and_charts(open_client: TestClient) -> None:
    timings = {}
    for path in ("/", "/findings", "/history", "/repositories/nas", "/repositories/offsite"):
        start = time.perf_counter()
        page = open_client.get(path)
        timings[path] = time.perf_counter() - start
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "script-src" not in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and "style=" not in page.text
    print("render times:", {k: f"{v * 1000:.0f} ms" for k, v in timings.items()})
    status = open_client.get("/").text
    assert 'id="asset-documents"' in status
    assert 'class="light green"' in status  # backed up just now, RPO 1d
    assert "documents" in status and "nas" in status and "offsite" in status
    assert 'id="run-now"' in status
    history = open_client.get("/history").text
    assert history.count("<svg") == 4 and "Backup duration" in history
    assert "<polyline" in history or "<circle" in history
    findings = open_client.get("/findings").text
    assert "rpo" in findings
    assert snapshot_dir(open_client)
    css = open_client.get("/static/style.css")
    assert css.status_code == 200 and "no-store" not in css.headers.get("cache-control", "")
    assert open_client.get("/repositories/nowhere").status_code == 404


def test_login_is_required_and_checked(locked_client: TestClient) -> None:
    page = locked_client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
    assert locked_client.get("/history").headers["location"] == "/login?next=/history"
    assert locked_client.get("/download/nas/00000000/x").status_code == 401
    assert locked_client.post("/actions/run", data={"csrf": "x"}).status_code == 401
    form = locked_client.get("/login")
    assert form.status_code == 200
    token = csrf_of(form.text)
    wrong = locked_client.post("/login", data={"csrf": token, "user": USER, "password": "nope", "next": "/"})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert locked_client.get("/").status_code == 303
    # an open redirect after login is refused
    ok = locked_client.post(
        "/login", data={"csrf": token, "user": USER, "password": PASSWORD, "next": "//evil.example/"}
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    status = locked_client.get("/")
    assert status.status_code == 200 and USER in status.text
    assert csrf_of(status.text) != token  # a fresh token after login
    assert locked_client.post("/logout", data={"csrf": csrf_of(status.text)}).status_code == 303
    assert locked_client.get("/").status_code == 303


def test_basic_auth_is_accepted_for_scrapers(locked_client: TestClient) -> None:
    assert locked_client.get("/findings", auth=(USER, "wrong")).status_code == 303
    assert locked_client.get("/findings", auth=(USER, PASSWORD)).status_code == 200


def test_actions_refuse_missing_or_wrong_csrf_tokens(open_client: TestClient) -> None:
    token = csrf_of(open_client.get("/").text)
    assert open_client.post("/actions/run").status_code == 403
    assert open_client.post("/actions/run", data={"csrf": ""}).status_code == 403
    assert open_client.post("/actions/run", data={"csrf": token + "x"}).status_code == 403
    assert open_client.post("/actions/drill", data={"csrf": "A" * 43}).status_code == 403
    other = TestClient(open_client.app, base_url="http://127.0.0.1", follow_redirects=False)
    assert other.post("/actions/run", data={"csrf": token}).status_code == 403  # the token is per session
    assert open_client.post("/login", data={"csrf": "nope"}).status_code in (303, 403)
    assert open_client.post("/actions/run", content=b"csrf=" + b"x" * 20000).status_code == 413
    assert open_client.post("/actions/nothing", data={"csrf": token}).status_code == 404
    assert open_client.post("/actions/run", data={"csrf": token, "asset": "nope"}).status_code == 400
    dash = open_client.app.state.dashboard  # type: ignore[attr-defined]
    assert dash.jobs.recent() == []  # nothing was started


def test_browser_lists_and_downloads_a_file_with_a_non_utf8_name(open_client: TestClient, site_env: Site) -> None:
    snap = snapshot_dir(open_client)
    root = open_client.get(f"/browse/nas/{snap}/")
    assert root.status_code == 200 and "tmp" in root.text
    listing = open_client.get(data_url(site_env, "browse", snap) + "/")
    assert listing.status_code == 200, listing.text
    assert "a.txt" in listing.text and "sub/" in listing.text
    assert "caf\\xe9" in listing.text  # the undecodable byte shown escaped
    assert "&#34;odd&#34;" in listing.text or "&quot;odd&quot;" in listing.text
    href = data_url(site_env, "download", snap, ODD_NAME)
    assert f'href="{href}"' in listing.text
    meta = open_client.get(data_url(site_env, "browse", snap, ODD_NAME))
    assert meta.status_code == 200 and f"{len(ODD_CONTENT)} bytes" in meta.text
    with open_client.stream("GET", href) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/octet-stream"
        assert resp.headers["content-length"] == str(len(ODD_CONTENT))
        disposition = resp.headers["content-disposition"]
        chunks = list(resp.iter_bytes())
    assert b"".join(chunks) == ODD_CONTENT
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    assert disposition.startswith('attachment; filename="caf')
    star = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(star) == ODD_NAME.decode("utf-8", "replace")
    small = open_client.get(data_url(site_env, "download", snap, b"a.txt"))
    assert small.content == b"alpha\n"


@pytest.mark.parametrize(
    "tail",
    [
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2F..%2Fetc%2Fpasswd",
        "/a%2Fb",
        "/x/%2E/y",
        "/x//y",
        "/%00",
    ],
)
def test_browser_refuses_path_tricks(open_client: TestClient, tail: str) -> None:
    snap = snapshot_dir(open_client)
    for kind in ("browse", "download"):
        assert open_client.get(f"/{kind}/nas/{snap}{tail}").status_code == 400, (kind, tail)


def test_browser_refuses_unknown_places(open_client: TestClient, site_env: Site) -> None:
    snap = snapshot_dir(open_client)
    assert open_client.get("/browse/nowhere/abc/").status_code == 404
    assert open_client.get(f"/browse/nas/{snap}/no-such-dir/").status_code == 404
    assert open_client.get("/browse/nas/ffffffff/").status_code == 404
    assert open_client.get("/browse/%2E%2E/x/").status_code == 400
    assert open_client.get(data_url(site_env, "download", snap, b"sub")).status_code == 404  # a directory


def test_parse_and_headers_units() -> None:
    loc = parse(b"/browse/nas/0123abcd/a%20b/caf%E9/", b"/browse/")
    assert loc.parts == (b"a b", b"caf\xe9")
    assert loc.url() == "/browse/nas/0123abcd/a%20b/caf%E9"
    for bad in (b"/browse/nas/x/..", b"/browse/nas/x/a%2fb", b"/browse/n%2Fas/x/", b"/browse/nas"):
        with pytest.raises(BadPath):
            parse(bad, b"/browse/")
    header = content_disposition(b"evil\r\nSet-Cookie: x=1")
    assert "\r" not in header and "\n" not in header
    chart = line_chart("<b>title</b>", {"a<script>": [(0.0, 1.0), (3600.0, 2.0)]}, str)
    assert "<script>" not in chart and "&lt;b&gt;" in chart and "<polyline" in chart
    assert "no data yet" in line_chart("empty", {}, str)
    assert [seconds_label(v) for v in (0.04, 2.5, 45, 720, 12600)] == ["40ms", "2.5s", "45s", "12m", "3.5h"]


def test_web_refuses_a_public_address_without_htpasswd(site_env: Site) -> None:
    res = site_env.cli.run("web", "--plan", site_env.plan, "--listen", "0.0.0.0:8099", check_exit=2)
    assert b"--htpasswd" in res.stderr
    res = site_env.cli.run("web", "--plan", site_env.plan, "--htpasswd", site_env.tmp / "none", check_exit=2)
    assert b"no htpasswd file" in res.stderr


def test_metrics_are_the_prometheus_exposition_behind_the_login(
    open_client: TestClient, locked_client: TestClient
) -> None:
    resp = open_client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
    at = (("asset", "documents"), ("repository", "nas"))
    assert found[("sauvegarde_rpo_compliant", at)] == 1
    assert found[("sauvegarde_snapshots", at)] >= 1
    assert found[("sauvegarde_repository_up", (("repository", "offsite"),))] == 1
    assert locked_client.get("/metrics").status_code == 401  # a scraper gets 401, not the login page
    assert locked_client.get("/metrics", auth=(USER, PASSWORD)).status_code == 200


def test_report_page_serves_the_dr_document(open_client: TestClient) -> None:
    start = time.perf_counter()
    resp = open_client.get("/report")
    print(f"report rendered in {time.perf_counter() - start:.1f} s")
    assert resp.status_code == 200, resp.text
    assert "Les Tilleuls" in resp.text and "documents" in resp.text and "Claire Martin" in resp.text
    assert "<script" not in resp.text.lower()
    csp = resp.headers.get_list("content-security-policy")
    assert len(csp) == 1 and "script-src" not in csp[0] and "'unsafe-inline'" in csp[0]
    assert resp.headers["cache-control"] == "no-store"


def test_a_report_that_fails_to_build_says_why(open_client: TestClient) -> None:
    dash = open_client.app.state.dashboard  # type: ignore[attr-defined]
    dash.report = lambda plan, db, now: 1 / 0
    broken = open_client.get("/report")
    assert broken.status_code == 500 and "ZeroDivisionError" in broken.text and "Report failed" in broken.text
    assert open_client.get("/").status_code == 200  # the rest goes on


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "[::2]:80"])
def test_without_login_only_loopback_host_names_are_answered(open_client: TestClient, host: str) -> None:
    """A page elsewhere that rebinds its name to 127.0.0.1 cannot read an open dashboard."""
    assert open_client.get("/", headers={"Host": host}).status_code == 421
    for ok in ("127.0.0.1:8080", "localhost", "[::1]:8080"):
        assert open_client.get("/healthz", headers={"Host": ok}).status_code == 200


def test_login_mode_answers_any_host_but_refuses_cross_origin_posts(locked_client: TestClient) -> None:
    assert locked_client.get("/login", headers={"Host": "backup.example.org"}).status_code == 200
    token = csrf_of(locked_client.get("/login").text)
    creds = {"csrf": token, "user": USER, "password": PASSWORD, "next": "/"}
    evil = locked_client.post("/login", data=creds, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    site = locked_client.post("/login", data=creds, headers={"Sec-Fetch-Site": "cross-site"})
    assert site.status_code == 403
    sandboxed = locked_client.post("/login", data=creds, headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    other_port = locked_client.post("/login", data=creds, headers={"Origin": "http://127.0.0.1:9999"})
    assert other_port.status_code == 303  # the same host through a proxy on another port
    creds["csrf"] = csrf_of(locked_client.get("/").text)  # a login renews the token
    same = locked_client.post("/login", data=creds, headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 303
    assert same.headers["referrer-policy"] == "same-origin"


def test_over_https_cookies_are_secure_and_hsts_is_sent(site_env: Site) -> None:
    app = create_app(WebOptions(str(site_env.plan), htpasswd=str(site_env.htpasswd), https=True))
    with TestClient(app, base_url="https://127.0.0.1", follow_redirects=False) as client:
        page = client.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        app.state.dashboard.close()
    with client_for(site_env, login=True) as plain:
        assert "strict-transport-security" not in plain.get("/login").headers
        plain.app.state.dashboard.close()  # type: ignore[attr-defined]


def test_wrong_passwords_throttle_that_user_name(locked_client: TestClient) -> None:
    token = csrf_of(locked_client.get("/login").text)

    def attempt(user: str, password: str) -> int:
        form = {"csrf": token, "user": user, "password": password, "next": "/"}
        return locked_client.post("/login", data=form).status_code

    assert [attempt(USER, f"guess{i}") for i in range(5)] == [401] * 5
    refused = locked_client.post("/login", data={"csrf": token, "user": USER.upper(), "password": PASSWORD})
    assert refused.status_code == 429 and "Too many wrong passwords" in refused.text
    assert 25 <= int(refused.headers["retry-after"]) <= 31
    assert attempt(USER, PASSWORD) == 429  # even the right one, until the wait is over
    assert locked_client.get("/findings", auth=(USER, PASSWORD)).status_code == 303  # Basic auth too
    assert attempt("someone-else", "x") == 401  # other names are not affected


def test_throttle_doubles_the_wait_and_forgets_on_success() -> None:
    throttle = Throttle(free=2, base=10, cap=25, keep=3)
    throttle.failed("a")
    assert throttle.wait("a") == 0
    throttle.failed("a")
    assert 9 < throttle.wait("A") <= 10
    throttle.failed("a")
    assert 19 < throttle.wait("a") <= 20
    throttle.failed("a")
    assert 24 < throttle.wait("a") <= 25  # capped
    throttle.succeeded("a")
    assert throttle.wait("a") == 0
    for name in ("b", "c", "d", "e"):
        throttle.failed(name)
        throttle.failed(name)
    assert throttle.wait("b") == 0 and throttle.wait("e") > 0  # only the newest three names are kept
