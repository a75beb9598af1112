"""The guard benchmark's tree: real files copied from /usr/share and a Python installation, plus a generated home
folder with the formats ransomware goes for (office documents, PDFs, photos, logs, a git project, vaults).

Copied parts are real data as found on a machine (man pages and changelogs in gzip, icons, translations, vim and perl
runtime files, Python packages with their ``.py``, ``.pyc`` and ``.so`` files). Generated parts are real formats made
by the libraries that write them in practice: JPEG and PNG by Pillow, PDF by matplotlib, OOXML and ODF documents by
``zipfile`` with the parts office suites write, gzip-rotated logs, and a git repository made by git itself.
Everything generated is seeded, so two runs build the same tree (JPEG/PDF bytes may differ between library versions).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

SEED = 6_4  # issue 6, part 4

SHARE = Path("/usr/share")
# /usr/share parts copied whole (missing ones are skipped): about 17,000 files, 230 MB on Debian 12
SHARE_PARTS = ("doc", "icons", "vim", "perl", "zoneinfo", "mime", "man/man3", "man/man5")
MAN1_FILES = 1500  # and the first man1 pages, in name order
QUICK_SHARE_PARTS = ("perl", "zoneinfo", "mime", "man/man5")
QUICK_MAN1_FILES = 300

# Python packages copied with their dist-info (from SITE_PACKAGES): about 5,000 files, 80 MB
PY_PACKAGES = (
    "pip", "mypy", "pygments", "setuptools", "PIL", "rich", "_pytest", "pydantic", "click", "jinja2", "markdown_it",
    "msgpack", "yaml", "urllib3", "idna", "certifi", "blake3", "pyfastcdc",
)  # fmt: skip
QUICK_PY_PACKAGES = ("pip", "rich", "click", "msgpack")
DIST_NAMES = {"PIL": "pillow", "fontTools": "fonttools", "_pytest": "pytest", "markdown_it": "markdown_it_py"}

WORDS = [
    "the",
    "customer",
    "invoice",
    "order",
    "total",
    "amount",
    "paid",
    "due",
    "date",
    "contract",
    "clause",
    "party",
    "agreement",
    "section",
    "report",
    "quarter",
    "revenue",
    "growth",
    "margin",
    "cost",
    "budget",
    "forecast",
    "team",
    "meeting",
    "notes",
    "action",
    "item",
    "owner",
    "deadline",
    "review",
    "approved",
    "project",
    "milestone",
    "delivery",
    "supplier",
    "payment",
    "schedule",
    "risk",
    "mitigation",
    "scope",
    "change",
    "request",
    "minutes",
    "attendees",
    "summary",
    "decision",
    "follow",
    "up",
    "draft",
    "final",
    "version",
    "client",
    "proposal",
    "estimate",
    "hours",
    "rate",
    "travel",
    "expenses",
    "receipt",
    "tax",
    "year",
    "audit",
    "policy",
    "procedure",
    "holiday",
    "training",
    "onboarding",
    "laptop",
    "password",
    "office",
    "building",
    "parking",
]
NAMES = ("alice", "bruno", "chloe", "david", "emma", "farid", "giulia", "hugo", "ines", "jules")
CLIENTS = ("acme", "bellevue", "cartwright", "dumont", "elysee", "fontaine", "garnier", "hachette")


# ---- content generators -------------------------------------------------------------------------------------


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))).capitalize() + "."


def prose(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        para = " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
        out.append(para)
        n += len(para) + 2
    return "\n\n".join(out)


def photo(rng: random.Random, fmt: str = "JPEG", size: tuple[int, int] | None = None) -> bytes:
    """A photo-like image: smooth colour fields (a tiny random image scaled up) with sensor-like noise."""
    from PIL import Image

    w, h = size or rng.choice(((1024, 768), (1280, 960), (1600, 1200), (960, 1280)))
    small = Image.frombytes("RGB", (16, 12), rng.randbytes(16 * 12 * 3))
    img = small.resize((w, h), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((w, h), rng.uniform(8, 30)).convert("RGB")
    img = Image.blend(img, noise, rng.uniform(0.05, 0.2))
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=rng.choice((80, 85, 90, 92)))
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def screenshot(rng: random.Random) -> bytes:
    """A PNG like a screenshot: flat areas, text-like rows of dark pixels."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (rng.choice((800, 1024, 1280)), rng.choice((600, 768))), (246, 246, 246))
    d = ImageDraw.Draw(img)
    y = 10
    while y < img.height - 20:
        d.text((12, y), sentence(rng)[:120], fill=(20, 20, 20))
        y += rng.choice((16, 18, 24))
    d.rectangle((0, 0, img.width, 8), fill=(rng.randrange(256), 90, 160))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _zip(parts: list[tuple[str, bytes | str]], stored_first: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, (name, data) in enumerate(parts):
            z.writestr(name, data, zipfile.ZIP_STORED if stored_first and i == 0 else zipfile.ZIP_DEFLATED)
    return buf.getvalue()


_CT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="jpeg" '
    'ContentType="image/jpeg"/><Override PartName="/{main}" ContentType="{ct}"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.'
    'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    '2006/relationships/officeDocument" Target="{main}"/></Relationships>'
)


def _core(rng: random.Random) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties xmlns:cp="http://schemas.'
        'openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(sentence(rng)[:60])}</dc:title><dc:creator>{rng.choice(NAMES)}</dc:creator>"
        "</cp:coreProperties>"
    )


def docx(rng: random.Random, image: bool | None = None) -> bytes:
    """A Word document as Word writes it: content types, relationships, document, styles, properties, media."""
    paras = "".join(
        f"<w:p><w:r><w:t>{escape(sentence(rng))} {escape(sentence(rng))}</w:t></w:r></w:p>"
        for _ in range(rng.randint(5, 300))
    )
    doc = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="http://schemas.openxmlformats'
        f'.org/wordprocessingml/2006/main"><w:body>{paras}</w:body></w:document>'
    )
    parts: list[tuple[str, bytes | str]] = [
        ("[Content_Types].xml", _CT.format(main="word/document.xml", ct="application/vnd.openxmlformats-"
                                           "officedocument.wordprocessingml.document.main+xml")),
        ("_rels/.rels", _RELS.format(main="word/document.xml")),
        ("word/document.xml", doc),
        ("word/styles.xml", '<?xml version="1.0"?><w:styles xmlns:w="x">' + "<w:style/>" * 40 + "</w:styles>"),
        ("docProps/core.xml", _core(rng)),
    ]  # fmt: skip
    if image if image is not None else rng.random() < 0.3:
        parts.append(("word/media/image1.jpeg", photo(rng, size=(640, 480))))
    return _zip(parts)


def xlsx(rng: random.Random) -> bytes:
    """An Excel workbook: a sheet of dated amounts with shared strings."""
    rows = []
    for r in range(1, rng.randint(20, 2000)):
        rows.append(
            f'<row r="{r}"><c r="A{r}" t="s"><v>{rng.randrange(len(CLIENTS))}</v></c><c r="B{r}"><v>'
            f'{45000 + rng.randrange(800)}</v></c><c r="C{r}"><v>{rng.uniform(1, 9999):.2f}</v></c></row>'
        )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.'
        f'org/spreadsheetml/2006/main"><sheetData>{"".join(rows)}</sheetData></worksheet>'
    )
    strings = "".join(f"<si><t>{c}</t></si>" for c in CLIENTS)
    parts: list[tuple[str, bytes | str]] = [
        ("[Content_Types].xml", _CT.format(main="xl/workbook.xml", ct="application/vnd.openxmlformats-"
                                           "officedocument.spreadsheetml.sheet.main+xml")),
        ("_rels/.rels", _RELS.format(main="xl/workbook.xml")),
        ("xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets><sheet name="2026" sheetId="1"/></sheets>'
                            "</workbook>"),
        ("xl/worksheets/sheet1.xml", sheet),
        ("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst count="{len(CLIENTS)}">{strings}</sst>'),
        ("docProps/core.xml", _core(rng)),
    ]  # fmt: skip
    return _zip(parts)


def odt(rng: random.Random) -> bytes:
    """An OpenDocument text: ``mimetype`` stored first, as ODF requires."""
    body = "".join(f"<text:p>{escape(sentence(rng))}</text:p>" for _ in range(rng.randint(5, 200)))
    return _zip(
        [
            ("mimetype", "application/vnd.oasis.opendocument.text"),
            ("content.xml", f'<?xml version="1.0"?><office:document-content><office:body>{body}</office:body>'
                            "</office:document-content>"),
            ("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest/>'),
        ],
        stored_first=True,
    )  # fmt: skip


def pdfs(rng: random.Random, paths: list[Path]) -> None:
    """Reports as PDF, made by matplotlib's PDF backend (compressed content streams, embedded fonts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for p in paths:
        fig, axes = plt.subplots(2, 1, figsize=(8.27, 11.69))
        xs = list(range(rng.randint(12, 60)))
        axes[0].plot(xs, [rng.gauss(100, 20) for _ in xs])
        axes[0].set_title(sentence(rng)[:70])
        axes[1].bar(xs[:12], [rng.uniform(0, 50) for _ in xs[:12]])
        fig.text(0.1, 0.02, sentence(rng)[:100])
        fig.savefig(p, format="pdf")
        plt.close(fig)


def log_lines(rng: random.Random, service: str, n: int, day: int) -> str:
    out = []
    for i in range(n):
        t = f"2026-05-{day:02d}T{(i * 7) // 3600 % 24:02d}:{(i * 7) // 60 % 60:02d}:{i * 7 % 60:02d}"
        what = rng.choice(
            (
                f"Accepted publickey for {rng.choice(NAMES)} from 10.0.{rng.randrange(256)}.{rng.randrange(256)} "
                f"port {rng.randrange(1024, 65536)} ssh2",
                f'GET /api/v1/orders/{rng.randrange(10**6)} HTTP/1.1" 200 {rng.randrange(100, 90000)} '
                f'"Mozilla/5.0" rt={rng.random():.3f}',
                f"job {rng.randrange(10**5)} finished in {rng.uniform(0, 30):.2f}s status=ok",
                f"connection from {rng.randrange(256)}.{rng.randrange(256)}.1.{rng.randrange(256)} closed",
                f"WARNING disk usage {rng.randrange(60, 99)}% on /srv",
            )
        )
        out.append(f"{t} srv01 {service}[{rng.randrange(100, 40000)}]: {what}")
    return "\n".join(out) + "\n"


def csv_rows(rng: random.Random, rows: int) -> str:
    lines = ["id,date,client,amount,status"]
    for i in range(rows):
        lines.append(
            f"{i},2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.choice(CLIENTS)},"
            f"{rng.uniform(1, 9999):.2f},{rng.choice(('paid', 'open', 'late'))}"
        )
    return "\n".join(lines) + "\n"


def git(cwd: Path, *args: str) -> None:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="Alice",
        GIT_AUTHOR_EMAIL="alice@example.org",
        GIT_COMMITTER_NAME="Alice",
        GIT_COMMITTER_EMAIL="alice@example.org",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_CONFIG_NOSYSTEM="1",
    )
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- the tree -----------------------------------------------------------------------------------------------


def site_packages() -> Path:
    """The Python installation copied: this interpreter's site-packages (a virtualenv's or the system's)."""
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


def copy_share(target: Path, quick: bool) -> None:
    target.mkdir(parents=True)
    for part in QUICK_SHARE_PARTS if quick else SHARE_PARTS:
        src = SHARE / part
        if src.is_dir():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", str(src), str(target / part)], check=True)
    man1 = SHARE / "man" / "man1"
    if man1.is_dir():
        (target / "man" / "man1").mkdir(parents=True, exist_ok=True)
        pages = sorted(p for p in man1.iterdir() if p.is_file() or p.is_symlink())
        for p in pages[: QUICK_MAN1_FILES if quick else MAN1_FILES]:
            shutil.copy2(p, target / "man" / "man1" / p.name, follow_symlinks=False)


def copy_python(target: Path, quick: bool) -> None:
    src = site_packages()
    target.mkdir(parents=True)
    for pkg in QUICK_PY_PACKAGES if quick else PY_PACKAGES:
        if not (src / pkg).is_dir():
            continue
        subprocess.run(["cp", "-a", str(src / pkg), str(target / pkg)], check=True)
        dist = DIST_NAMES.get(pkg, pkg).lower().replace("-", "_")
        for info in src.glob("*.dist-info"):
            if info.name.lower().replace("-", "_").startswith(dist + "_") or info.name.lower().startswith(dist + "-"):
                subprocess.run(["cp", "-a", str(info), str(target / info.name)], check=True)


def make_home(home: Path, quick: bool, seed: int = SEED) -> None:
    """A user's home: documents per client and year, reports as PDF, photos, notes, spreadsheets, logs, a git
    project, a password vault."""
    rng = random.Random(seed)
    scale = 0.2 if quick else 1.0
    docs = home / "Documents"
    for client in CLIENTS:
        d = docs / "clients" / client
        d.mkdir(parents=True)
        for i in range(int(24 * scale) or 2):
            (d / f"letter-{i:03d}.docx").write_bytes(docx(rng))
        for i in range(int(10 * scale) or 1):
            (d / f"accounts-{i:02d}.xlsx").write_bytes(xlsx(rng))
        for i in range(int(4 * scale) or 1):
            (d / f"minutes-{i:02d}.odt").write_bytes(odt(rng))
    for year in (2024, 2025):
        d = docs / "reports" / str(year)
        d.mkdir(parents=True)
        pdfs(rng, [d / f"report-{year}-{m:02d}.pdf" for m in range(1, int(30 * scale) + 2)])
    notes = docs / "notes"
    notes.mkdir()
    for i in range(int(120 * scale)):
        (notes / f"{rng.choice(WORDS)}-{i:03d}.{rng.choice(('md', 'txt'))}").write_text(
            prose(rng, rng.randint(300, 20_000))
        )
    data = docs / "data"
    data.mkdir()
    for i in range(int(40 * scale)):
        (data / f"export-{i:03d}.csv").write_text(csv_rows(rng, rng.randint(50, 8000)))
    for album in ("2024-08-brittany", "2025-04-lyon", "2025-12-family"):
        d = home / "Pictures" / album
        d.mkdir(parents=True)
        for i in range(int(45 * scale) or 2):
            (d / f"IMG_{i + 1000:04d}.jpg").write_bytes(photo(rng))
        for i in range(int(8 * scale) or 1):
            (d / f"screenshot-{i:02d}.png").write_bytes(screenshot(rng))
    logs = home / "logs"
    logs.mkdir()
    for service in ("nginx-access", "sshd", "worker", "backup-agent", "postgres", "cron"):
        (logs / f"{service}.log").write_text(log_lines(rng, service, int(20_000 * scale), 28))
        (logs / f"{service}.log.1").write_text(log_lines(rng, service, int(20_000 * scale), 27))
        for n in (2, 3):
            (logs / f"{service}.log.{n}.gz").write_bytes(
                gzip.compress(log_lines(rng, service, int(20_000 * scale), 28 - n).encode(), mtime=0)
            )
    vault = home / ".secrets"
    vault.mkdir()
    for name in ("passwords.kdbx", "taxes-2025.pdf.gpg", "ssh-keys.tar.age"):
        (vault / name).write_bytes(rng.randbytes(rng.randint(20_000, 300_000)))
    project = home / "projects" / "webapp"
    project.parent.mkdir(parents=True)
    src = site_packages() / "rich"
    if src.is_dir():
        shutil.copytree(src, project / "src" / "webapp", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (project / "src" / "webapp").mkdir(parents=True)
        (project / "src" / "webapp" / "__init__.py").write_text("# webapp\n")
    (project / "README.md").write_text("# webapp\n\n" + prose(rng, 2000))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial import")


def build(target: Path, quick: bool) -> dict[str, object]:
    """Build the tree at TARGET (share/, python/, home/); returns what it is made of."""
    target.mkdir(parents=True)
    copy_share(target / "share", quick)
    copy_python(target / "python", quick)
    make_home(target / "home", quick)
    return {"share": str(SHARE), "python": str(site_packages()), "quick": quick}


def ensure_base(base: Path, quick: bool) -> dict[str, object]:
    """The pristine tree at BASE, built once and reused while its parameters are the same."""
    stamp = base.with_suffix(".json")
    want = {"quick": quick, "seed": SEED, "version": 3}
    if base.is_dir() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("params") == want:
                return dict(json.loads(stamp.read_text())["info"])
        except (ValueError, KeyError):
            pass
    if base.exists():
        shutil.rmtree(base)
    part = base.with_name(base.name + ".part")
    if part.exists():
        shutil.rmtree(part)
    info = build(part, quick)
    part.rename(base)
    stamp.write_text(json.dumps({"params": want, "info": info}))
    return info
