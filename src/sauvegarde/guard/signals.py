"""Pure ransomware signals over a few sampled blocks of a file: entropy, chi-square, magic bytes, names.

Everything here is a function of bytes and names, without I/O. Blocks are a few KiB each; entropy and chi-square
use one ``numpy.bincount`` per block, and only for blocks that are not plain ASCII (``bytes.isascii`` runs in C and
answers for most text at once). Known high-entropy formats (zip and the office formats built on it, png, jpeg, gif,
gzip and other compressors, pdf, mp4) are judged by whether they still look like their format, never by entropy.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from sauvegarde.util.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # see sauvegarde.util.lazy

BLOCK = 4096  # bytes per sampled block
MIN_BLOCK = 256  # blocks shorter than this say too little about randomness (one expected count per byte value)
ENTROPY_RANDOM = 7.6  # bits per byte at or above which a block of >= 1 KiB may be ciphertext
# Chi-square of 256 byte counts has 255 degrees of freedom (mean 255, sd 22.6) for uniform bytes; compressed
# data and media stay near uniform too, which is why formats are recognised first. Above this, a block is not random.
CHI2_RANDOM = 400.0

# ---- kinds ---------------------------------------------------------------------------------------------------

TEXT, BINARY, RANDOM, EMPTY = "text", "bin", "rnd", ""
# kinds whose content is compressed (high entropy is normal); each is judged by its structure instead
COMPRESSED_KINDS = frozenset({"zip", "png", "jpeg", "gif", "gz", "bz2", "xz", "zst", "7z", "rar", "pdf", "mp4", "webp"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # empty archive
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x1f\x8b", "gz"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"%PDF-", "pdf"),
    (b"\x7fELF", "elf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),  # .doc, .xls, .msg
    (b"SQLite format 3\x00", "sqlite"),
)

MAGIC_PREFIXES = tuple(m for m, _k in _MAGIC)
_HIGH = bytes(range(128, 256))

# extension -> the kind its content must have
EXT_KIND: dict[str, str] = {
    "zip": "zip", "docx": "zip", "xlsx": "zip", "pptx": "zip", "odt": "zip", "ods": "zip", "odp": "zip",
    "jar": "zip", "epub": "zip", "apk": "zip", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif",
    "gz": "gz", "tgz": "gz", "bz2": "bz2", "xz": "xz", "zst": "zst", "7z": "7z", "rar": "rar", "pdf": "pdf",
    "mp4": "mp4", "m4a": "mp4", "mov": "mp4", "webp": "webp", "doc": "ole", "xls": "ole", "ppt": "ole",
    "sqlite": "sqlite", "db": "sqlite",
}  # fmt: skip
# extensions whose content is low-entropy (text and uncompressed formats)
LOW_ENTROPY_EXT = frozenset(
    [
        "txt",
        "csv",
        "tsv",
        "md",
        "rst",
        "log",
        "json",
        "xml",
        "html",
        "htm",
        "css",
        "js",
        "ts",
        "py",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "java",
        "go",
        "rs",
        "rb",
        "php",
        "pl",
        "sh",
        "sql",
        "ini",
        "cfg",
        "conf",
        "toml",
        "yaml",
        "yml",
        "tex",
        "rtf",
        "svg",
        "eml",
        "ics",
        "vcf",
        "bmp",
        "wav",
        "tif",
        "tiff",
        "ps",
        "po",
        "pot",
        "srt",
        "sub",
        "doc",
        "xls",
        "ppt",
    ]
)
# files that are ciphertext by design: never flagged for looking random
ENCRYPTED_EXT = frozenset(
    ["gpg", "pgp", "asc", "age", "kdbx", "kdb", "p12", "pfx", "hc", "tc", "vc", "luks", "enc-by-design"]
)

# extensions added or swapped by ordinary renames (backup copies, rotation, compression, signing, downloads): a file
# renamed so still counts as renamed for judging its content, but not towards a folder's mass renames
BENIGN_RENAME_EXT = frozenset(
    ["bak", "old", "orig", "backup", "save", "tmp", "temp", "swp", "part", "partial", "crdownload", "download", "new",
     "prev", "sav", "gz", "bz2", "xz", "zst", "lz4", "lzma", "z", "zip", "7z", "tgz", "gpg", "pgp", "asc", "sig", "age",
     "sha256", "md5"]
)  # fmt: skip

RANSOM_EXT = frozenset(
    [
        "locked",
        "encrypted",
        "crypt",
        "crypted",
        "cry",
        "cerber",
        "cerber3",
        "locky",
        "zepto",
        "odin",
        "thor",
        "aesir",
        "zzzzz",
        "wncry",
        "wnry",
        "wncryt",
        "wcry",
        "ryk",
        "ryuk",
        "conti",
        "lockbit",
        "phobos",
        "dharma",
        "onion",
        "cbf",
        "gdcb",
        "krab",
        "kraken",
        "djvu",
        "makop",
        "nephilim",
        "pay2key",
        "babyk",
        "blackcat",
        "akira",
        "medusa",
        "rhysida",
        "vvv",
        "ccc",
        "zzz",
        "ecc",
        "exx",
        "ezz",
        "xxx",
        "ttt",
        "r5a",
        "rdm",
        "rrk",
        "kkk",
    ]
)
_NOTE_NAME = re.compile(
    rb"(decrypt|ransom|recover[-_ ]?(your|my|all)?[-_ ]?files|restore[-_ ]?(my|your)?[-_ ]?files|how[-_ ]?to[-_ ]?"
    rb"(back|get|restore|decrypt|recover|return)|read[-_ ]?me[-_ ]?(now|first|!)|!!!|your[-_ ]?files|help[-_ ]?"
    rb"(decrypt|restore|recover|instructions?)|_readme|readme_|unlock[-_ ]?files|files[-_ ]?encrypted)",
    re.IGNORECASE,
)
_NOTE_TEXT = re.compile(
    rb"([a-z2-7]{56}\.onion|[a-z2-7]{16}\.onion|\bbitcoin\b|\bbtc\b|\bmonero\b|\bxmr\b|\bransom\b|"
    rb"(files|data|documents)[^.\n]{0,40}(have been|were|are) (encrypted|locked|stolen)|decrypt(ion|or)? "
    rb"(key|tool|software|program)|private key|tor browser|\bpay\b[^.\n]{0,40}\b(decrypt|key|bitcoin|btc|usd)\b)",
    re.IGNORECASE,
)

# ---- blocks ----------------------------------------------------------------------------------------------------


def byte_stats(block: bytes) -> tuple[float, float]:
    """Shannon entropy (bits per byte) and the chi-square statistic against uniform bytes of ``block``."""
    n = len(block)
    if n == 0:
        return 0.0, 0.0
    counts = np.bincount(np.frombuffer(block, dtype=np.uint8), minlength=256)
    nz = counts[counts > 0] / n
    entropy = float(-(nz * np.log2(nz)).sum())
    expected = n / 256
    chi2 = float(((counts - expected) ** 2).sum() / expected)
    return entropy, chi2


def looks_random(block: bytes) -> bool:
    """Whether a block is indistinguishable from ciphertext: high entropy and a flat byte histogram.

    ASCII blocks are never random (random bytes are ASCII with probability 2**-len); short blocks say too little.
    The entropy threshold falls for shorter blocks, whose estimate is biased low by about 255 / (2 n ln 2) bits.
    """
    n = len(block)
    if n < MIN_BLOCK or block.isascii():
        return False
    # Cheap refusals on the first KiB, where random bytes hold one zero in 256 (4 +- 2 per KiB) and half of them
    # >= 0x80 (512 +- 16 per KiB): most binaries have more zeros, text and most binaries fewer high bytes.
    probe = block[:1024]
    m = len(probe)
    if probe.count(0) > m / 32 or len(probe.translate(None, _HIGH)) > 0.6 * m:
        return False
    entropy, chi2 = byte_stats(block)
    bias = 255 / (2 * n * math.log(2))
    return entropy >= ENTROPY_RANDOM - bias and chi2 < CHI2_RANDOM


def magic_kind(head: bytes) -> str:
    """The format the first bytes announce, ``text`` for ASCII/UTF-8 text, ``bin`` otherwise ("" when empty)."""
    if not head:
        return EMPTY
    if head.startswith(MAGIC_PREFIXES):
        for magic, kind in _MAGIC:
            if head.startswith(magic):
                return kind
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if b"\x00" in head:
        return BINARY
    if head.isascii():
        return TEXT
    try:
        head.decode("utf-8")
        return TEXT
    except UnicodeDecodeError as exc:  # a multi-byte character may be cut at the end of the block
        return TEXT if exc.start >= len(head) - 3 and len(head) >= 64 else BINARY


def structure_ok(kind: str, head: bytes, tail: bytes) -> bool:
    """Whether a compressed format still has the structure its end should have (when it has a recognisable end).

    zip: end of central directory record; png: IEND chunk; jpeg: end-of-image marker; pdf: ``%%EOF``. A file
    encrypted after its first bytes, or with the first bytes restored, fails here.
    """
    end = tail or head
    if kind == "zip":
        return b"PK\x05\x06" in end[-4096:]
    if kind == "png":
        return b"IEND" in end[-64:]
    if kind == "jpeg":
        return b"\xff\xd9" in end[-1024:]
    if kind == "pdf":
        return b"%%EOF" in end[-1024:]
    return True


JPEG_BAD_MARKERS = 8  # an inner block of a JPEG with this many impossible 0xFF pairs is not entropy-coded data


def jpeg_scan_broken(block: bytes) -> bool:
    """Whether a block from inside a JPEG cannot be its entropy-coded data.

    In a JPEG's scans every 0xFF byte is followed by 0x00 (stuffing), a restart marker (0xD0-0xD7) or another 0xFF;
    other markers only sit between scans (a few per file). Random bytes hold 16 0xFF per 4 KiB, nearly all followed
    by something else: a photo encrypted between a kept header and a kept end fails here.
    """
    bad = 0
    i = block.find(b"\xff")
    last = len(block) - 1
    while 0 <= i < last:
        nxt = block[i + 1]
        if nxt and nxt != 0xFF and not 0xD0 <= nxt <= 0xD7:
            bad += 1
            if bad >= JPEG_BAD_MARKERS:
                return True
        i = block.find(b"\xff", i + 1)
    return False


def extension(name: bytes) -> str:
    """The lower-case extension of a file name, without the dot ("" if none)."""
    base = name.rsplit(b"/", 1)[-1]
    dot = base.rfind(b".")
    if dot <= 0:
        return ""
    return base[dot + 1 :].decode("utf-8", "replace").lower()


def stem(name: bytes) -> bytes:
    """A name without its last extension (``a.txt.locked`` -> ``a.txt``)."""
    dot = name.rfind(b".")
    return name[:dot] if dot > 0 else name


def ransom_extension(name: bytes) -> bool:
    """Whether a file name ends in an extension ransomware families append (``.locked``, ``.wncry``, ...)."""
    ext = extension(name)
    return ext in RANSOM_EXT or (len(ext) >= 20 and ext.isalnum())  # or a long random per-victim ID


def benign_rename(name: bytes) -> bool:
    """Whether a new name's extension is one ordinary renames give (``x.bak``, ``x.log.1``, ``x.gz``...)."""
    ext = extension(name)
    return ext in BENIGN_RENAME_EXT or ext.isdigit()


def note_name(name: bytes) -> bool:
    """Whether a file name is one ransom notes use (``HOW_TO_DECRYPT.txt``, ``!!!READ_ME!!!.html``, ...)."""
    return _NOTE_NAME.search(name.rsplit(b"/", 1)[-1]) is not None


def note_text(head: bytes) -> list[str]:
    """The ransom-note phrases found in the first bytes of a file (onion addresses, payment and decryption words)."""
    found = {m.group(0).decode("utf-8", "replace").lower() for m in _NOTE_TEXT.finditer(head)}
    return sorted(found)[:5]
