"""Pure signal tests: entropy, chi-square, randomness, magic bytes, structure, names and ransom-note text."""

from __future__ import annotations

import os
import random
import zlib

from guard_trees import docx, jpeg, pdf, png, text
from sauvegarde.engine.observe import BlockSampler
from sauvegarde.guard import signals as sig
from sauvegarde.guard.verdict import judge_file


def test_entropy_and_chi_square() -> None:
    rnd = os.urandom(4096)
    e, chi2 = sig.byte_stats(rnd)
    assert e > 7.9 and chi2 < sig.CHI2_RANDOM
    e, chi2 = sig.byte_stats(b"a" * 4096)
    assert e == 0.0 and chi2 > 100_000
    e, _ = sig.byte_stats(bytes(range(256)) * 16)
    assert abs(e - 8.0) < 1e-9
    assert sig.byte_stats(b"") == (0.0, 0.0)


def test_looks_random() -> None:
    rng = random.Random(3)
    assert sig.looks_random(os.urandom(4096))
    assert sig.looks_random(os.urandom(1500))  # short blocks: threshold corrected for the estimator's bias
    assert not sig.looks_random(os.urandom(500))  # too short to say
    assert not sig.looks_random(text(rng, 4096))
    assert not sig.looks_random(bytes(rng.randrange(0, 40) for _ in range(4096)))  # skewed binary
    assert not sig.looks_random("é à ü ß 中文 ".encode() * 300)


def test_magic_kinds() -> None:
    rng = random.Random(4)
    assert sig.magic_kind(docx(rng)[:4096]) == "zip"
    assert sig.magic_kind(png(rng)[:4096]) == "png"
    assert sig.magic_kind(jpeg(rng)[:4096]) == "jpeg"
    assert sig.magic_kind(pdf(rng)[:4096]) == "pdf"
    assert sig.magic_kind(zlib.compress(b"x") and b"\x1f\x8b\x08\x00" + os.urandom(100)) == "gz"
    assert sig.magic_kind(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sig.magic_kind(b"hello world") == "text"
    assert sig.magic_kind("naïve café".encode()) == "text"
    assert sig.magic_kind(b"\x00\x01\x02\xfe") == "bin"
    assert sig.magic_kind(b"") == ""


def test_structure_hints() -> None:
    rng = random.Random(5)
    for kind, data in (("zip", docx(rng)), ("png", png(rng)), ("jpeg", jpeg(rng)), ("pdf", pdf(rng))):
        assert sig.structure_ok(kind, data[:4096], data[-4096:]), kind
        broken = data[:-4096] + os.urandom(4096)
        assert not sig.structure_ok(kind, broken[:4096], broken[-4096:]), kind
    assert sig.structure_ok("gz", b"\x1f\x8b", os.urandom(4096))  # no recognisable end: trusted


def test_names() -> None:
    assert sig.extension(b"/a/b/Report.DOCX") == "docx"
    assert sig.extension(b".bashrc") == ""
    assert sig.stem(b"a.txt.locked") == b"a.txt"
    assert sig.ransom_extension(b"a.txt.locked")
    assert sig.ransom_extension(b"photo.jpg.wncry")
    assert sig.ransom_extension(b"x.docx." + b"a1b2c3d4e5f6a7b8c9d0e1f2")  # per-victim random extension
    assert not sig.ransom_extension(b"Cargo.lock")
    assert not sig.ransom_extension(b"Main.java")
    assert not sig.ransom_extension(b"notes.txt")
    assert sig.note_name(b"HOW_TO_DECRYPT_FILES.txt")
    assert sig.note_name(b"!!!READ_ME!!!.html")
    assert sig.note_name(b"RESTORE-MY-FILES.TXT")
    assert not sig.note_name(b"README.md")
    assert not sig.note_name(b"notes.txt")


def test_note_text() -> None:
    note = b"Your files have been encrypted. Pay 1 BTC for the decryption key: abcdefghijklmnop.onion"
    found = sig.note_text(note)
    assert found and any("onion" in f for f in found)
    assert sig.note_text(b"Meeting notes: the budget review is on Monday.") == []


def _sample(data: bytes, chunk: int = 1 << 20) -> BlockSampler:
    s = BlockSampler()
    for i in range(0, len(data), chunk):
        s.feed(data[i : i + chunk])
    return s


def _judge(name: bytes, data: bytes, previous: str = "") -> tuple[str, list[str], str]:
    s = _sample(data)
    return judge_file(name, len(data), s.head, s.tail, s.inner, previous)


def test_judge_known_formats_are_not_flagged_for_entropy() -> None:
    rng = random.Random(6)
    for name, data in ((b"a.docx", docx(rng)), (b"a.png", png(rng)), (b"a.jpg", jpeg(rng)), (b"a.pdf", pdf(rng))):
        _kind, rules, _ = _judge(name, data, "zip")
        assert rules == [], (name, rules)
    assert _judge(b"a.gz", b"\x1f\x8b\x08\x00" + os.urandom(200_000))[1] == []
    assert _judge(b"vault.kdbx", os.urandom(50_000), "rnd")[1] == []  # ciphertext by design
    assert _judge(b"cache.bin", os.urandom(50_000))[1] == []  # unknown random file, no history


def test_judge_encrypted_files() -> None:
    rng = random.Random(7)
    assert "magic-mismatch" in _judge(b"a.docx", os.urandom(80_000), "zip")[1]
    assert "encrypted-content" in _judge(b"a.csv", os.urandom(80_000), "text")[1]
    assert "type-changed" in _judge(b"data.dat", os.urandom(80_000), "bin")[1]
    rules = _judge(b"a.txt.locked", os.urandom(30_000))[1]
    assert "ransom-extension" in rules and "encrypted-content" in rules
    # intermittent: the text head survives, every other 64 KiB block is ciphertext
    data = bytearray(text(rng, 1_000_000))
    for at in range(65536, len(data), 131072):
        data[at : at + 65536] = os.urandom(len(data[at : at + 65536]))
    kind, rules, detail = _judge(b"big.log", bytes(data), "text")
    assert kind == "text" and rules == ["intermittent"], detail
    # a zip whose end was encrypted
    z = docx(rng)
    assert "format-broken" in _judge(b"a.docx", z[:-5000] + os.urandom(5000), "zip")[1]


def test_ransom_note() -> None:
    note = b"ALL YOUR FILES HAVE BEEN ENCRYPTED. To buy the decryption key pay in bitcoin via Tor Browser."
    assert "ransom-note" in _judge(b"HOW_TO_DECRYPT.txt", note)[1]
    assert _judge(b"HOW_TO_DECRYPT.txt", b"install steps for the build tool we wrote")[1] == []


def test_sampler_spreads_blocks() -> None:
    data = os.urandom(3 << 20)
    s = _sample(data)
    assert s.head == data[:4096] and s.tail == data[-4096:]
    assert 6 <= len(s.inner) <= 16
    small = _sample(b"abc")
    assert small.head == small.tail == b"abc" and small.inner == []
