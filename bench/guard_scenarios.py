"""What the guard benchmark does to the tree: simulated attacks, ordinary activity, and probes of known limits.

Each scenario changes the working tree in place; :class:`Tree` then puts it back as it was by comparing it with the
state recorded before (every entry's type, size, mtime, ctime and inode) and copying what differs from the pristine
copy, so any scenario (git gc, log rotation, folder moves...) is undone without tracking what it did.

Victims of an attack are chosen folder by folder (folders shuffled with a seed, every file of a folder in turn) as a
ransomware walking the tree would, until the share of files is reached: a backup during an attack sees it part way.
Encryption is AES-256-CTR with a fresh key and nonce per file (``cryptography``), as the families the scenarios are
named after do, followed by a 512-byte footer (the per-file key encrypted for the attacker, random to anyone else).
"""

from __future__ import annotations

import base64
import compileall
import gzip
import os
import py_compile
import random
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench import guard_data as gd

ATTACK, ORDINARY, LIMIT = "attack", "ordinary", "limit"
TEXT_EXT = frozenset(
    [
        "py", "txt", "md", "rst", "html", "htm", "css", "js", "json", "xml", "yaml", "yml", "toml", "cfg", "ini",
        "conf", "c", "h", "sh", "pl", "pm", "pod", "vim", "tcl", "cmake", "csv", "svg", "desktop", "theme", "index",
        "list", "in", "tex", "sgml",
    ]
)  # fmt: skip
OFFICE_EXT = frozenset({"docx", "xlsx", "pptx", "odt", "ods", "zip", "pdf", "jpg", "jpeg"})
COMPRESSED_EXT = frozenset({"gz", "png", "jpg", "jpeg", "zip", "docx", "xlsx", "odt", "pdf"})


# ---- the working tree ---------------------------------------------------------------------------------------

Entry = tuple[int, int, int, int, int]  # (type bits, size, mtime_ns, ctime_ns, inode)


class Tree:
    """The working tree ROOT and its pristine copy BASE (same relative paths)."""

    def __init__(self, root: Path, base: Path) -> None:
        self.root = root
        self.base = base
        self.state: dict[str, Entry] = {}
        self._files: list[str] | None = None

    def record(self) -> None:
        """Remember the tree as it is now (after a backup of it), to revert to it later."""
        self.state = scan(self.root)
        self._files = None

    def files(self) -> list[str]:
        """Regular files (relative paths, sorted) as recorded."""
        if self._files is None:
            self._files = sorted(p for p, e in self.state.items() if stat.S_ISREG(e[0]))
        return self._files

    def dirs(self) -> list[str]:
        return sorted(p for p, e in self.state.items() if stat.S_ISDIR(e[0]))

    def path(self, rel: str) -> Path:
        return self.root / rel

    def revert(self, undo_renames: Sequence[tuple[str, str]] = ()) -> tuple[int, int]:
        """Put back every entry that differs from the recorded state (copied from BASE), after renaming back what
        UNDO_RENAMES lists (moved folders keep their files' inodes: nothing to read again); returns how many
        entries differed and how many were copied."""
        for new, old in reversed(undo_renames):
            os.rename(self.root / new, self.root / old)
        rels = changed(self.state, scan(self.root))
        return len(rels), copy_paths(rels, self.base, self.root)

    def commit(self) -> int:
        """Copy into BASE what changed since the recorded state (changes that are to stay: the history's)."""
        rels = changed(self.state, scan(self.root))
        copy_paths(rels, self.root, self.base)
        return len(rels)


def scan(root: Path) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for d, dirnames, filenames in os.walk(root):
        rel_d = os.path.relpath(d, root)
        for name in dirnames + filenames:
            rel = name if rel_d == "." else f"{rel_d}/{name}"
            st = os.lstat(os.path.join(d, name))
            out[rel] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return out


def changed(old: dict[str, Entry], new: dict[str, Entry]) -> set[str]:
    """Paths new, gone or changed between two scans (a directory that stays one is not itself a change)."""
    out = {rel for rel in old if rel not in new}
    for rel, e in new.items():
        o = old.get(rel)
        if o is None or (o != e and not (o[0] == e[0] == stat.S_IFDIR)):
            out.add(rel)
    return out


def _isdir(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink()


def copy_paths(rels: set[str], source: Path, target: Path) -> int:
    """Make each of RELS in TARGET what it is in SOURCE (absent if absent there); returns how many were copied."""
    for rel in sorted(rels, key=lambda p: -p.count("/")):  # deepest first
        t = target / rel
        if not os.path.lexists(t) or (_isdir(t) and _isdir(source / rel)):
            continue
        if _isdir(t):
            shutil.rmtree(t)
        else:
            t.unlink()
    copied = 0
    for rel in sorted(rels, key=lambda p: p.count("/")):  # shallowest first: a directory brings its content
        t, s = target / rel, source / rel
        if os.path.lexists(t) or not os.path.lexists(s):
            continue
        if _isdir(s):
            shutil.copytree(s, t, symlinks=True)
        else:
            shutil.copy2(s, t, follow_symlinks=False)
        copied += 1
    return copied


# ---- attack primitives --------------------------------------------------------------------------------------


def aes_ctr(data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16))).encryptor()
    return enc.update(data) + enc.finalize()


def encrypt_whole(p: Path, footer: bool = True) -> None:
    p.write_bytes(aes_ctr(p.read_bytes()) + (os.urandom(512) if footer else b""))


def encrypt_parts(p: Path, size: int, every: int, offset: int = 0, tail: int = 0) -> None:
    """Encrypt SIZE bytes every EVERY bytes from OFFSET, leaving the last TAIL bytes alone (in place)."""
    data = bytearray(p.read_bytes())
    end = len(data) - tail
    if len(data) <= size and offset == 0:
        data = bytearray(aes_ctr(bytes(data)))
    else:
        for at in range(offset, max(end, 0), every):
            stop = min(at + size, end)
            data[at:stop] = aes_ctr(bytes(data[at:stop]))
    p.write_bytes(bytes(data))


def folder_order(
    tree: Tree, share: float, rng: random.Random, keep: Callable[[str], bool] = lambda _p: True, count: int = 0
) -> list[str]:
    """SHARE of the tree's files (or COUNT files), whole folders at a time in a shuffled folder order (files that
    KEEP)."""
    by_dir: dict[str, list[str]] = {}
    for f in tree.files():
        if keep(f):
            by_dir.setdefault(os.path.dirname(f), []).append(f)
    folders = sorted(by_dir)
    rng.shuffle(folders)
    want = count or max(1, round(share * len(tree.files())))
    out: list[str] = []
    for d in folders:
        out.extend(by_dir[d][: want - len(out)])
        if len(out) >= want:
            break
    return out


RANSOM_NOTE = (
    "~~~ Your network has been penetrated ~~~\n\n"
    ">>>> What happened?\nAll your files, documents, photos and databases have been encrypted with military grade "
    "algorithms (AES-256 and RSA-4096) and now have the extension {ext}. You cannot decrypt them without our "
    "private key. Do not rename or modify the files: you may lose them forever.\n\n"
    ">>>> How to get your data back?\nBuy our decryption tool. The price is 2.5 BTC, payable in Bitcoin (or Monero "
    "with a 15% discount). Download Tor Browser and open our chat:\n"
    "http://lockbitapt6vx57t3eeqjofwgcglmutr3a35nygvokja5uuccip4ykyd.onion/?id={victim}\n\n"
    ">>>> Your personal ID: {victim}\n"
    "If you do not contact us within 72 hours, the stolen data will be published on our leak site.\n"
)


@dataclass
class Attack:
    share: float = 0.0  # of the tree's files (0: all files KEEP selects, unless COUNT)
    count: int = 0  # or this many files
    how: str = "whole"  # whole | dot (16 KiB every 64 KiB) | head (first 4 KiB) | middle (keep first/last 4 KiB)
    rename: str = ""  # "" (in place), ".locked", or "random" (one random 9-letter extension, LockBit 3 style)
    notes: bool = False  # a ransom note in every folder with victims
    note_name: str = "HOW_TO_DECRYPT_FILES.txt"
    keep: Callable[[str], bool] = field(default=lambda _p: True)
    armor: bool = False  # base64 of the ciphertext instead of the ciphertext (plain ASCII)
    footer: bool = True  # a 512-byte key blob appended (whole-file encryption)
    # Progressive: steps of one attack share SEED (same victims order, extension and ID) and DONE (victims of the
    # earlier steps, not encrypted again): each step is the same attack further on
    seed: str = ""
    done: set[str] | None = None

    def __call__(self, tree: Tree, rng: random.Random) -> dict[str, Any]:
        if self.seed:
            rng = random.Random(self.seed)
        if self.share or self.count:
            victims = folder_order(tree, self.share, rng, self.keep, self.count)
        else:
            victims = [f for f in tree.files() if self.keep(f)]
        ext = self.rename
        if ext == "random":
            ext = "." + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(9))
        victim_id = rng.randbytes(16).hex().upper()
        folders = {os.path.dirname(rel) for rel in victims}
        if self.done is not None:
            todo = [v for v in victims if v not in self.done]
            self.done.update(todo)
        else:
            todo = victims
        for rel in todo:
            p = tree.path(rel)
            if self.how == "whole":
                if self.armor:
                    p.write_bytes(base64.encodebytes(aes_ctr(p.read_bytes())))
                else:
                    encrypt_whole(p, self.footer)
            elif self.how == "dot":
                encrypt_parts(p, 16 * 1024, 64 * 1024)
            elif self.how == "head":
                encrypt_parts(p, 4096, 1 << 62)
            elif self.how == "middle":
                encrypt_parts(p, 1 << 62, 1 << 62, offset=4096, tail=4096)
            if ext:
                p.rename(p.with_name(p.name + ext))
        if self.notes:
            name = self.note_name.format(ext=ext.lstrip("."))
            text = RANSOM_NOTE.format(ext=ext or "(unchanged)", victim=victim_id)
            for d in folders:
                (tree.root / d / name).write_text(text)
        return {"victims": len(victims), "folders": len(folders), "extension": ext, "notes": len(folders) * self.notes}


# ---- ordinary activity --------------------------------------------------------------------------------------


def is_text(tree: Tree, rel: str) -> bool:
    ext = rel.rsplit(".", 1)[-1].lower() if "." in os.path.basename(rel) else ""
    return ext in TEXT_EXT and tree.state[rel][1] > 0


def edit_text(tree: Tree, rng: random.Random, share: float = 0.05) -> dict[str, Any]:
    """Edits of SHARE of the tree's files (text files): a line changed, a paragraph inserted, lines appended."""
    candidates = [f for f in tree.files() if is_text(tree, f)]
    want = min(len(candidates), round(share * len(tree.files())))
    edited = rng.sample(candidates, want)
    for rel in edited:
        p = tree.path(rel)
        lines = p.read_text(errors="surrogateescape").splitlines(keepends=True) or ["\n"]
        i = rng.randrange(len(lines))
        what = rng.random()
        if what < 0.4:
            lines[i] = lines[i].rstrip("\n") + " " + gd.sentence(rng) + "\n"
        elif what < 0.7:
            lines[i:i] = [gd.sentence(rng) + "\n" for _ in range(rng.randint(1, 20))]
        else:
            lines.append("\n" + gd.prose(rng, rng.randint(100, 3000)) + "\n")
        p.write_text("".join(lines), errors="surrogateescape")
    return {"edited": len(edited)}


def new_photos(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """A camera import (JPEG), screenshots (PNG) and real icons exported to a new album (PNG/SVG from /usr/share)."""
    album = tree.root / "home" / "Pictures" / "2026-06-holidays"
    album.mkdir(parents=True)
    n = 0
    for i in range(60):
        (album / f"IMG_{2000 + i:04d}.jpg").write_bytes(gd.photo(rng))
        n += 1
    shots = tree.root / "home" / "Pictures" / "Screenshots"
    shots.mkdir()
    for i in range(20):
        (shots / f"Screenshot from 2026-06-{i + 1:02d}.png").write_bytes(gd.screenshot(rng))
        n += 1
    icons = [f for f in tree.files() if f.endswith(".png")][:400]
    export = tree.root / "home" / "Pictures" / "icon-export"
    export.mkdir()
    for i, rel in enumerate(icons):
        shutil.copyfile(tree.path(rel), export / f"{i:04d}-{os.path.basename(rel)}")
        n += 1
    # and a few photos edited in place (re-encoded)
    edited = [f for f in tree.files() if f.startswith("home/Pictures/") and f.endswith(".jpg")]
    for rel in rng.sample(edited, min(15, len(edited))):
        tree.path(rel).write_bytes(gd.photo(rng))
        n += 1
    return {"files": n}


def office_documents(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """New Word/Excel/ODF documents and PDFs, and 20% of the existing documents saved again (rewritten whole)."""
    d = tree.root / "home" / "Documents" / "2026"
    d.mkdir(parents=True)
    for i in range(25):
        (d / f"proposal-{i:02d}.docx").write_bytes(gd.docx(rng))
    for i in range(15):
        (d / f"budget-{i:02d}.xlsx").write_bytes(gd.xlsx(rng))
    for i in range(5):
        (d / f"minutes-{i:02d}.odt").write_bytes(gd.odt(rng))
    gd.pdfs(rng, [d / f"invoice-{i:02d}.pdf" for i in range(10)])
    existing = [f for f in tree.files() if f.endswith((".docx", ".xlsx"))]
    saved = rng.sample(existing, len(existing) // 5)
    for rel in saved:
        tree.path(rel).write_bytes(gd.docx(rng) if rel.endswith(".docx") else gd.xlsx(rng))
    return {"new": 55, "saved_again": len(saved)}


def new_archives(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """Archives of existing folders: a .zip, a .tar.gz and a .tar.zst (the zstd format), into a new folder."""
    import zstandard

    out = tree.root / "home" / "archives"
    out.mkdir()
    sources = [("home/Documents/clients", "zip"), ("share/perl", "tar.gz"), ("python/rich", "tar.zst")]
    made = []
    for rel, kind in sources:
        src = tree.path(rel)
        if not src.is_dir():
            continue
        target = out / f"{src.name}-2026-06.{kind}"
        if kind == "zip":
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(src.rglob("*")):
                    if f.is_file():
                        z.write(f, f.relative_to(src.parent))
        elif kind == "tar.gz":
            with tarfile.open(target, "w:gz") as t:
                t.add(src, arcname=src.name)
        else:
            with (
                open(target, "wb") as raw,
                zstandard.ZstdCompressor(level=3).stream_writer(raw) as zw,
                tarfile.open(fileobj=zw, mode="w|") as t,
            ):
                t.add(src, arcname=src.name)
        made.append(target.name)
    return {"archives": made}


def rotate_logs(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """logrotate (daily, rotate 7, compress, delaycompress) over the log folder, then a day of new lines."""
    logs = tree.root / "home" / "logs"
    services = sorted(p.name[:-4] for p in logs.glob("*.log"))
    for s in services:
        for n in range(6, 1, -1):
            old = logs / f"{s}.log.{n}.gz"
            if old.exists():
                old.rename(logs / f"{s}.log.{n + 1}.gz")
        one = logs / f"{s}.log.1"
        (logs / f"{s}.log.2.gz").write_bytes(gzip.compress(one.read_bytes()))
        (logs / f"{s}.log").rename(one)
        (logs / f"{s}.log").write_text(gd.log_lines(rng, s, 20_000, 29))
    return {"services": len(services)}


def package_upgrade(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """pip and pygments replaced by the versions of the system's Python (files, dist-info renamed), and their
    byte code compiled again; without a system copy, the package's byte code is recompiled (hash-based)."""
    system = Path("/usr/lib/python3/dist-packages")
    py = tree.root / "python"
    done = []
    for pkg in ("pip", "pygments"):
        if not (py / pkg).is_dir():
            continue
        for info in py.glob(f"{pkg}-*.dist-info"):
            shutil.rmtree(info)
        if (system / pkg).is_dir():
            shutil.rmtree(py / pkg)
            shutil.copytree(system / pkg, py / pkg, symlinks=True)
            for info in system.glob("*"):
                if info.name.lower().startswith(pkg + "-") and info.is_dir():
                    shutil.copytree(info, py / info.name)
        for cache in (py / pkg).rglob("__pycache__"):
            shutil.rmtree(cache)
        mode = py_compile.PycInvalidationMode.CHECKED_HASH
        compileall.compile_dir(py / pkg, quiet=1, invalidation_mode=mode)
        done.append(pkg)
    return {"packages": done}


def reorganise(tree: Tree, rng: random.Random, share: float = 0.3) -> dict[str, Any]:
    """SHARE of the folders renamed in place or moved into an archive folder (deepest first, so paths hold)."""
    dirs = [d for d in tree.dirs() if d.count("/") >= 1 and "/.git" not in d and not d.endswith(".git")]
    chosen = rng.sample(dirs, round(share * len(dirs)))
    archive = tree.root / "home" / "archive"
    archive.mkdir(exist_ok=True)
    undo = []
    for rel in sorted(chosen, key=lambda p: -p.count("/")):
        p = tree.path(rel)
        if rng.random() < 0.8 or rel.count("/") > 2:
            target = p.with_name(p.name + rng.choice(("-old", " (2024)", "_archive", "-v1")))
        else:
            target = archive / rel.replace("/", "__")
        p.rename(target)
        undo.append((str(target.relative_to(tree.root)), rel))
    return {"folders": len(undo), "of": len(dirs), "undo_renames": undo}


def delete_project(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """An old project folder deleted (the biggest of a few candidates)."""
    for rel in ("python/mypy", "share/perl", "python/pip"):
        p = tree.path(rel)
        if p.is_dir():
            n = sum(1 for f in tree.files() if f.startswith(rel + "/"))
            shutil.rmtree(p)
            return {"deleted": rel, "files": n}
    return {"deleted": None}


def git_churn(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """Twenty commits touching the project's sources, a branch merged, then ``git gc`` (loose objects packed and
    deleted, new pack and index files)."""
    project = tree.root / "home" / "projects" / "webapp"
    sources = sorted(str(p.relative_to(project)) for p in (project / "src").rglob("*.py"))
    for i in range(20):
        for rel in rng.sample(sources, min(6, len(sources))):
            with open(project / rel, "a") as f:
                f.write(f"\n# change {i}: {gd.sentence(rng)}\n")
        (project / "src" / "webapp" / f"feature_{i:02d}.py").write_text(f'"""{gd.prose(rng, 800)}"""\n')
        gd.git(project, "add", "-A")
        gd.git(project, "commit", "-q", "-m", f"change {i}")
    gd.git(project, "gc", "-q", "--prune=now")
    return {"commits": 20}


def vaults(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """Files encrypted by design saved again: a KeePass database, gpg and age files (and a new one)."""
    secrets = tree.root / "home" / ".secrets"
    n = 0
    for p in sorted(secrets.iterdir()):
        p.write_bytes(rng.randbytes(p.stat().st_size + rng.randint(0, 4096)))
        n += 1
    (secrets / "contract-2026.docx.gpg").write_bytes(rng.randbytes(120_000))
    return {"files": n + 1}


def busy_day(tree: Tree, rng: random.Random) -> dict[str, Any]:
    """Everything at once: 2% of files edited, photos, office documents, an archive, logs rotated, git churn."""
    out = {"edit": edit_text(tree, rng, 0.02)}
    out["photos"] = new_photos(tree, rng)
    out["office"] = office_documents(tree, rng)
    out["logs"] = rotate_logs(tree, rng)
    out["git"] = git_churn(tree, rng)
    return out


def history_day(tree: Tree, rng: random.Random, day: int) -> dict[str, Any]:
    """A quiet day before the measurements (the asset's history): 0.5% of files edited, a few new documents."""
    out = edit_text(tree, rng, 0.005)
    d = tree.root / "home" / "Documents" / "daily" / f"day-{day}"
    d.mkdir(parents=True)
    for i in range(5):
        (d / f"note-{i}.docx").write_bytes(gd.docx(rng, image=False))
    with open(tree.root / "home" / "logs" / "sshd.log", "a") as f:
        f.write(gd.log_lines(rng, "sshd", 500, 28))
    return out


# ---- the list ----------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    group: str
    what: str
    apply: Callable[[Tree, random.Random], dict[str, Any]]
    revert: bool = True  # False: the next scenario goes on from this one's tree (progressive attacks)


def _ext(rel: str) -> str:
    base = os.path.basename(rel)
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def small_files_attack(tree: Tree, rng: random.Random) -> dict[str, Any]:
    small = {f for f in tree.files() if 0 < tree.state[f][1] < 256}
    return Attack(0.05, keep=lambda p: p in small, footer=False)(tree, rng)


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    variants: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("", "encrypted in place", {}),
        ("-locked-notes", "encrypted, renamed *.locked, a ransom note in each folder",
         {"rename": ".locked", "notes": True}),
        ("-randext", "encrypted, renamed to one random 9-letter extension (LockBit 3 style), no note",
         {"rename": "random"}),
    )  # fmt: skip
    fractions = (1, 5, 10, 25, 50)
    for suffix, what, kw in variants:
        done: set[str] = set()
        for pct in fractions:
            attack = Attack(pct / 100, seed=f"progressive{suffix}", done=done, **kw)
            out.append(Scenario(f"encrypt-{pct}%{suffix}", ATTACK, f"{pct}% of files {what}", attack,
                                revert=pct == fractions[-1]))  # fmt: skip
    out += [
        Scenario("encrypt-1%-notes", ATTACK, "1% encrypted in place, ransom notes", Attack(0.01, notes=True)),
        Scenario("encrypt-1%-locked", ATTACK, "1% encrypted, renamed *.locked, no note",
                 Attack(0.01, rename=".locked")),
        Scenario(
            "encrypt-1%-randext-notes",
            ATTACK,
            "1% encrypted, random extension, notes named <ext>.README.txt (LockBit 3 style)",
            Attack(0.01, rename="random", notes=True, note_name="{ext}.README.txt"),
        ),
        Scenario("encrypt-20-files", ATTACK, "20 files encrypted in place (an attack caught early)", Attack(count=20)),
        Scenario(
            "intermittent-16k-every-64k",
            ATTACK,
            "10% of files: 16 KiB encrypted every 64 KiB (BlackCat/ALPHV 'DotPattern')",
            Attack(0.1, how="dot"),
        ),
        Scenario(
            "intermittent-first-4k",
            ATTACK,
            "10% of files: only the first 4 KiB encrypted (LockBit 2 style)",
            Attack(0.1, how="head"),
        ),
        Scenario(
            "office-only",
            ATTACK,
            "every docx/xlsx/odt/zip/pdf/jpeg encrypted in place, nothing else touched",
            Attack(0, keep=lambda p: _ext(p) in OFFICE_EXT),
        ),
        Scenario("edit-text-5%", ORDINARY, "5% of files (text) edited", edit_text),
        Scenario("new-photos", ORDINARY, "60 new JPEG photos, 20 PNG screenshots, 400 PNG icons exported, 15 "
                 "photos re-edited", new_photos),
        Scenario("office-documents", ORDINARY, "55 new docx/xlsx/odt/pdf, 20% of documents saved again",
                 office_documents),
        Scenario("new-archives", ORDINARY, "a .zip, a .tar.gz and a .tar.zst of existing folders", new_archives),
        Scenario("compressed-logs", ORDINARY, "logrotate with compress/delaycompress on 6 logs, a new day",
                 rotate_logs),
        Scenario("package-upgrade", ORDINARY, "pip and pygments replaced by other versions, byte code recompiled",
                 package_upgrade),
        Scenario("reorganise-30%-folders", ORDINARY, "30% of folders renamed or moved", reorganise),
        Scenario("delete-old-project", ORDINARY, "a project folder deleted", delete_project),
        Scenario("git-churn", ORDINARY, "20 commits and git gc in a project", git_churn),
        Scenario("vaults", ORDINARY, "password database, gpg and age files saved again", vaults),
        Scenario("busy-day", ORDINARY, "edits, photos, office documents, log rotation and git at once", busy_day),
        Scenario(
            "format-preserving-photos",
            ATTACK,
            "every JPEG encrypted except its first and last 4 KiB (signature and end marker kept)",
            Attack(0, how="middle", keep=lambda p: _ext(p) in {"jpg", "jpeg"}),
        ),
        Scenario(
            "limit-format-preserving",
            LIMIT,
            "every gz/png/zip/docx/xlsx/odt/pdf encrypted except its first and last 4 KiB (headers and ends kept)",
            Attack(0, how="middle", keep=lambda p: _ext(p) in COMPRESSED_EXT - {"jpg", "jpeg"}),
        ),
        Scenario(
            "limit-small-files",
            LIMIT,
            "5% of files (all those under 256 bytes) encrypted, size kept: too short to tell from random",
            small_files_attack,
        ),
        Scenario(
            "limit-base64-ciphertext",
            LIMIT,
            "5% of files replaced by base64 of their ciphertext (ASCII: never random to a byte histogram)",
            Attack(0.05, armor=True),
        ),
    ]  # fmt: skip
    return out
