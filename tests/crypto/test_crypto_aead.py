"""Sealing and opening objects: round trips, tamper detection, and the byte layout of docs/format.md."""

from __future__ import annotations

import blake3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.crypto import OVERHEAD, Cipher
from sauvegarde.crypto import aead as aead_module
from sauvegarde.errors import IntegrityError

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(KEY)


@PROPERTY
@given(plaintext=st.binary(max_size=4096), aad=st.none() | st.binary(max_size=64))
def test_seal_open_round_trip(plaintext: bytes, aad: bytes | None) -> None:
    c = Cipher(KEY)
    sealed = c.seal(plaintext, aad=aad)
    assert len(sealed) == len(plaintext) + OVERHEAD
    assert c.open(sealed, aad=aad) == plaintext


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_seal_and_open_accept_any_buffer(cipher: Cipher, wrap: type) -> None:
    sealed = cipher.seal(wrap(b"hello"))
    assert cipher.open(wrap(sealed)) == b"hello"


def test_empty_plaintext_is_exactly_overhead(cipher: Cipher) -> None:
    sealed = cipher.seal(b"")
    assert len(sealed) == OVERHEAD == 40
    assert cipher.open(sealed) == b""


def test_flipping_any_bit_of_any_byte_fails(cipher: Cipher) -> None:
    sealed = cipher.seal(b"attack at dawn", aad=b"ctx")
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            damaged = bytearray(sealed)
            damaged[i] ^= bit
            with pytest.raises(IntegrityError):
                cipher.open(bytes(damaged), aad=b"ctx")


@PROPERTY
@given(plaintext=st.binary(max_size=512), data=st.data())
def test_tampering_any_byte_fails(plaintext: bytes, data: st.DataObject) -> None:
    c = Cipher(KEY)
    sealed = bytearray(c.seal(plaintext))
    i = data.draw(st.integers(0, len(sealed) - 1), label="index")
    delta = data.draw(st.integers(1, 255), label="xor")
    sealed[i] ^= delta
    with pytest.raises(IntegrityError):
        c.open(bytes(sealed))


def test_truncated_or_extended_message_fails(cipher: Cipher) -> None:
    sealed = cipher.seal(b"some plaintext of a few bytes")
    for cut in (1, 16, len(sealed) - OVERHEAD):
        with pytest.raises(IntegrityError):
            cipher.open(sealed[:-cut])
    with pytest.raises(IntegrityError):
        cipher.open(sealed + b"\x00")


def test_wrong_key_fails(cipher: Cipher) -> None:
    sealed = cipher.seal(b"secret")
    with pytest.raises(IntegrityError) as info:
        Cipher(OTHER_KEY).open(sealed, what="index/abcd")
    assert "index/abcd" in str(info.value)


@pytest.mark.parametrize(
    ("seal_aad", "open_aad"),
    [(b"sauvegarde index v1", b"sauvegarde snapshot v1"), (b"a", None), (None, b"a"), (b"abc", b"abd")],
)
def test_aad_mismatch_fails(cipher: Cipher, seal_aad: bytes | None, open_aad: bytes | None) -> None:
    sealed = cipher.seal(b"payload", aad=seal_aad)
    with pytest.raises(IntegrityError):
        cipher.open(sealed, aad=open_aad)
    assert cipher.open(sealed, aad=seal_aad) == b"payload"


def test_nonces_differ_between_seals(cipher: Cipher) -> None:
    sealed = [cipher.seal(b"same plaintext") for _ in range(200)]
    assert len({s[:24] for s in sealed}) == 200
    assert len(set(sealed)) == 200


@pytest.mark.parametrize("n", [0, 1, 23, 24, 39])
def test_too_short_input_is_an_integrity_error(cipher: Cipher, n: int) -> None:
    with pytest.raises(IntegrityError, match="too short"):
        cipher.open(b"\x00" * n, what="thing")


@pytest.mark.parametrize("n", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(n: int) -> None:
    with pytest.raises(ValueError):
        Cipher(b"k" * n)


def test_layout_matches_the_format_document(monkeypatch: pytest.MonkeyPatch) -> None:
    salt = bytes(range(100, 116))
    monkeypatch.setattr(aead_module.os, "urandom", lambda n: salt[:n])
    cipher = Cipher(KEY)
    subkey = blake3.blake3(salt, key=KEY).digest()
    for counter in range(3):
        sealed = cipher.seal(b"plaintext", aad=b"aad")
        nonce = counter.to_bytes(8, "big")
        expected = salt + nonce + AESGCM(subkey).encrypt(nonce + b"\x00\x00\x00\x00", b"plaintext", b"aad")
        assert sealed == expected


def test_each_thread_seals_under_its_own_salt() -> None:
    import threading

    cipher = Cipher(KEY)
    salts: list[bytes] = []

    def seal() -> None:
        salts.append(cipher.seal(b"x")[:16])

    threads = [threading.Thread(target=seal) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(salts)) == 4


def test_forked_child_never_reuses_the_parents_nonces() -> None:
    import os

    cipher = Cipher(KEY)
    parent_first = cipher.seal(b"x")[:24]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the salt and counter of its next message
        os.write(w, cipher.seal(b"x")[:24])
        os._exit(0)
    os.waitpid(pid, 0)
    child_next = os.read(r, 24)
    parent_next = cipher.seal(b"x")[:24]
    assert child_next[:16] != parent_first[:16]  # the child drew a new salt
    assert parent_next[:16] == parent_first[:16] and parent_next[16:] == (1).to_bytes(8, "big")
