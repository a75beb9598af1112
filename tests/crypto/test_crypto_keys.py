"""Password-based key derivation and the master key."""

from __future__ import annotations

import blake3
import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.crypto import KdfParams, MasterKey, derive_key
from sauvegarde.crypto.kdf import argon2id, new_salt

CHEAP = KdfParams.cheap()
SALT = b"0123456789abcdef"


def test_kdf_defaults_follow_rfc9106_second_option() -> None:
    p = KdfParams()
    assert (p.memory_kib, p.iterations, p.lanes) == (64 * 1024, 3, 4)


def test_kdf_params_are_an_immutable_value() -> None:
    p = KdfParams(memory_kib=128, iterations=2, lanes=1)
    assert p == KdfParams(128, 2, 1) != KdfParams(128, 2, 2)
    assert p != (128, 2, 1)
    assert len({p, KdfParams(128, 2, 1), KdfParams()}) == 2
    assert repr(p) == "KdfParams(memory_kib=128, iterations=2, lanes=1)"
    with pytest.raises(AttributeError):
        p.lanes = 4
    with pytest.raises(AttributeError):
        del p.memory_kib
    with pytest.raises(AttributeError):
        p.other = 1
    assert (p.memory_kib, p.iterations, p.lanes) == (128, 2, 1)


def test_derive_key_is_deterministic_and_32_bytes() -> None:
    a = derive_key(b"password", SALT, CHEAP)
    b = derive_key(b"password", SALT, KdfParams(memory_kib=64, iterations=1, lanes=1))
    assert len(a) == 32
    assert a == b


def test_default_parameters_give_the_key_existing_repositories_were_made_with() -> None:
    """Key files written before the switch to libargon2 (2026-11, then cryptography's Argon2id) still open: the
    value below was computed by cryptography 46 for the default parameters."""
    key = derive_key(b"correct horse", b"sauvegarde-salt!", KdfParams())
    assert key.hex() == "71e05631acf5634118a9bc4c78898e9665161ea18ecf3893fc5b7a79e770f211"


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    password=st.binary(max_size=40),
    salt=st.binary(min_size=8, max_size=32),
    memory_blocks=st.integers(1, 64),
    iterations=st.integers(1, 3),
    lanes=st.integers(1, 4),
    length=st.integers(4, 64),
)
def test_argon2id_agrees_with_cryptography(  # type: ignore[no-untyped-def]
    password, salt, memory_blocks, iterations, lanes, length
) -> None:
    params = KdfParams(memory_kib=8 * lanes * memory_blocks, iterations=iterations, lanes=lanes)
    theirs = Argon2id(
        salt=salt, length=length, iterations=iterations, lanes=lanes, memory_cost=params.memory_kib
    ).derive(password)
    assert argon2id(password, salt, params, length) == theirs


@pytest.mark.parametrize(
    ("salt", "params", "length"),
    [
        (b"short", CHEAP, 32),
        (SALT, KdfParams(memory_kib=8 * 4 - 1, iterations=1, lanes=4), 32),
        (SALT, KdfParams(memory_kib=5 * 1024 * 1024, iterations=1, lanes=1), 32),
        (SALT, KdfParams(memory_kib=64, iterations=0, lanes=1), 32),
        (SALT, KdfParams(memory_kib=64, iterations=10_000, lanes=1), 32),
        (SALT, KdfParams(memory_kib=64 * 1024, iterations=1, lanes=0), 32),
        (SALT, KdfParams(memory_kib=64 * 1024, iterations=1, lanes=256), 32),
        (SALT, CHEAP, 3),
    ],
)
def test_parameters_out_of_bounds_are_value_errors(salt: bytes, params: KdfParams, length: int) -> None:
    with pytest.raises(ValueError, match="out of bounds"):
        argon2id(b"pw", salt, params, length)


@pytest.mark.parametrize(
    ("password", "salt", "params"),
    [
        (b"Password", SALT, CHEAP),
        (b"password ", SALT, CHEAP),
        (b"password", b"0123456789abcdeF", CHEAP),
        (b"password", SALT, KdfParams(memory_kib=128, iterations=1, lanes=1)),
        (b"password", SALT, KdfParams(memory_kib=64, iterations=2, lanes=1)),
        (b"password", SALT, KdfParams(memory_kib=64, iterations=1, lanes=2)),
    ],
)
def test_derive_key_depends_on_every_input(password: bytes, salt: bytes, params: KdfParams) -> None:
    assert derive_key(password, salt, params) != derive_key(b"password", SALT, CHEAP)


def test_salts_are_fresh() -> None:
    salts = {new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(len(s) == 16 for s in salts)


def test_master_keys_are_random_and_distinct() -> None:
    keys = [MasterKey.generate() for _ in range(20)]
    assert len({k.enc_key for k in keys}) == 20
    assert all(len(k.enc_key) == 32 and len(k.id_key) == 32 and k.enc_key != k.id_key for k in keys)


def test_content_id_is_keyed_blake3() -> None:
    mk = MasterKey(enc_key=b"e" * 32, id_key=b"i" * 32)
    assert mk.content_id(b"data") == blake3.blake3(b"data", key=b"i" * 32).digest()
    assert mk.content_id(b"data") != blake3.blake3(b"data").digest()
    assert len(mk.content_id(b"")) == 32


def test_content_id_differs_per_key_and_is_stable_per_key() -> None:
    a, b = MasterKey.generate(), MasterKey.generate()
    assert a.content_id(b"same content") != b.content_id(b"same content")
    assert a.content_id(b"same content") == a.content_id(bytearray(b"same content"))
    assert a.content_id(b"same content") == a.content_id(memoryview(b"same content"))
    assert a.content_id(b"same content") != a.content_id(b"same content!")


def test_content_id_ignores_the_encryption_key() -> None:
    a = MasterKey(enc_key=b"a" * 32, id_key=b"i" * 32)
    b = MasterKey(enc_key=b"b" * 32, id_key=b"i" * 32)
    assert a.content_id(b"x") == b.content_id(b"x")


def test_master_key_dict_round_trip() -> None:
    mk = MasterKey.generate()
    assert MasterKey.from_dict(mk.to_dict()) == mk
    assert MasterKey.from_dict({"enc": bytearray(mk.enc_key), "id": bytearray(mk.id_key)}) == mk


def test_master_key_cipher_uses_enc_key() -> None:
    mk = MasterKey.generate()
    sealed = mk.cipher().seal(b"x")
    assert MasterKey(mk.enc_key, b"z" * 32).cipher().open(sealed) == b"x"


def test_a_key_derived_ahead_is_taken_once_by_the_same_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from sauvegarde.crypto import kdf

    calls: list[bytes] = []
    real = kdf.argon2id

    def counted(password: bytes, salt: bytes, params: KdfParams, length: int) -> bytes:
        calls.append(password)
        return real(password, salt, params, length)

    monkeypatch.setattr(kdf, "argon2id", counted)
    salt, params = new_salt(), KdfParams.cheap()
    expected = real(b"pw", salt, params, 32)
    kdf.derive_ahead(b"pw", salt, params)
    assert derive_key(b"pw", salt, params) == expected
    assert calls == [b"pw"]  # derived once, ahead
    assert derive_key(b"pw", salt, params) == expected
    assert calls == [b"pw", b"pw"]  # taken once: the next call derives again
    # other inputs do not take it, and forget it
    kdf.derive_ahead(b"pw", salt, params)
    assert derive_key(b"other", salt, params) == real(b"other", salt, params, 32)
    assert derive_key(b"pw", new_salt(), params) != expected
    assert derive_key(b"pw", salt, params) == expected
    assert calls == [b"pw", b"pw", b"pw", b"other", b"pw", b"pw"]
