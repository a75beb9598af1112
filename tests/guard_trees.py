"""Realistic file trees for the guard tests, and the attacks and benign changes applied to them."""

from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

WORDS = [
    "invoice",
    "customer",
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
]


def text(rng: random.Random, size: int) -> bytes:
    out: list[str] = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize() + ".\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def csv(rng: random.Random, rows: int) -> bytes:
    lines = ["id,date,customer,amount,status"]
    for i in range(rows):
        lines.append(
            f"{i},2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.choice(WORDS)},"
            f"{rng.uniform(1, 9999):.2f},{rng.choice(['paid', 'open', 'late'])}"
        )
    return ("\n".join(lines) + "\n").encode()


def docx(rng: random.Random) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types></Types>')
        z.writestr("word/document.xml", "<w:document><w:body>" + text(rng, 60_000).decode() + "</w:body></w:document>")
        z.writestr("word/media/image1.bin", rng.randbytes(20_000))
    return buf.getvalue()


def png(rng: random.Random, w: int = 200, h: int = 150) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rng.randbytes(w * 3) for _ in range(h))  # noisy photo-like pixels
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b"")


def jpeg(rng: random.Random, size: int = 120_000) -> bytes:
    """A JPEG-like file: SOI, APP0/JFIF header, quantisation-table-ish bytes, entropy-coded data, EOI."""
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = rng.randbytes(size).replace(b"\xff", b"\xff\x00")
    return header + b"\xff\xdb\x00\x43\x00" + bytes(range(64)) + b"\xff\xda\x00\x08" + body + b"\xff\xd9"


def pdf(rng: random.Random) -> bytes:
    stream = zlib.compress(text(rng, 80_000))
    return (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n4 0 obj\n<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream\nendobj\nxref\n0 5\ntrailer\n<< /Root 1 0 R >>\nstartxref\n1234\n%%EOF\n"
    )


def make_tree(root: Path, seed: int = 1) -> list[Path]:
    """An office share: documents, spreadsheets, photos, a few big logs. Returns the files."""
    rng = random.Random(seed)
    files: list[Path] = []
    for d in ("docs", "finance", "photos", "projects/alpha", "projects/beta"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(12):
        files.append(_write(root / "docs" / f"note{i}.txt", text(rng, rng.randint(2_000, 40_000))))
        files.append(_write(root / "docs" / f"letter{i}.docx", docx(rng)))
    for i in range(8):
        files.append(_write(root / "finance" / f"ledger{i}.csv", csv(rng, rng.randint(100, 3000))))
        files.append(_write(root / "finance" / f"statement{i}.pdf", pdf(rng)))
    for i in range(6):
        files.append(_write(root / "photos" / f"img{i}.png", png(rng)))
        files.append(_write(root / "photos" / f"dsc{i}.jpg", jpeg(rng)))
    for p in ("alpha", "beta"):
        for i in range(5):
            files.append(_write(root / "projects" / p / f"spec{i}.md", text(rng, rng.randint(1_000, 20_000))))
        files.append(_write(root / "projects" / p / "build.log", text(rng, 1_500_000)))
    return files


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _xor(data: bytes) -> bytes:
    key = os.urandom(len(data))
    return bytes(a ^ b for a, b in zip(data, key, strict=True)) if len(data) < 4096 else _fast_xor(data, key)


def _fast_xor(data: bytes, key: bytes) -> bytes:
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(len(data), "little")


def encrypt_files(files: list[Path], rename: str | None = ".locked", note: bool = True) -> list[Path]:
    """Whole-file encryption (a random XOR pad, as good as AES-CTR for the guard), renamed, and a ransom note."""
    out = []
    for f in files:
        enc = _fast_xor(f.read_bytes(), os.urandom(f.stat().st_size))
        if rename:
            target = f.with_name(f.name + rename)
            target.write_bytes(enc)
            f.unlink()
            out.append(target)
        else:
            f.write_bytes(enc)
            out.append(f)
    if note and files:
        (files[0].parent / "HOW_TO_DECRYPT_FILES.txt").write_text(
            "All your files have been encrypted!\nTo get the decryption key, pay 0.5 bitcoin (BTC) and contact us "
            "with Tor Browser at lockbitsupp3xample7ezxz5lzqbyhg5fvz4jnkd3r7gkcgqxk6ph7qeyd.onion\n"
        )
    return out


def encrypt_intermittent(files: list[Path], block: int = 64 * 1024) -> None:
    """Intermittent encryption: every other block of each file (odd blocks: the file's start stays readable)."""
    for f in files:
        data = bytearray(f.read_bytes())
        for start in range(block, len(data), 2 * block):
            end = min(start + block, len(data))
            data[start:end] = _fast_xor(bytes(data[start:end]), os.urandom(end - start))
        f.write_bytes(bytes(data))


def benign_changes(root: Path, seed: int = 2) -> None:
    """Ordinary activity: edits, new photos, a folder compressed into a zip and removed, a new office document."""
    rng = random.Random(seed)
    for i in range(0, 12, 3):
        p = root / "docs" / f"note{i}.txt"
        p.write_bytes(p.read_bytes() + text(rng, 3_000))
    p = root / "finance" / "ledger0.csv"
    p.write_bytes(csv(rng, 4000))
    for i in range(6, 16):
        _write(root / "photos" / f"dsc{i}.jpg", jpeg(rng))
    _write(root / "photos" / "img0.png", png(rng))  # re-edited photo
    beta = root / "projects" / "beta"
    with zipfile.ZipFile(root / "projects" / "beta.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(beta.iterdir()):
            z.write(f, f"beta/{f.name}")
    for f in beta.iterdir():
        f.unlink()
    beta.rmdir()
    _write(root / "docs" / "letter2.docx", docx(rng))
    _write(root / "docs" / "minutes.docx", docx(rng))
