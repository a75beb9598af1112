"""Password-based key derivation and the master key."""

from __future__ import annotations

import blake3
import pytest

from sauvegarde.crypto import KdfParams, MasterKey, derive_key
from sauvegarde.crypto.kdf import new_salt

CHEAP = KdfParams.cheap()
SALT = b"0123456789abcdef"


def test_kdf_defaults_follow_rfc9106_second_option() -> None:
    p = KdfParams()
    assert (p.memory_kib, p.iterations, p.lanes) == (64 * 1024, 3, 4)


def test_derive_key_is_deterministic_and_32_bytes() -> None:
    a = derive_key(b"password", SALT, CHEAP)
    b = derive_key(b"password", SALT, KdfParams(memory_kib=64, iterations=1, lanes=1))
    assert len(a) == 32
    assert a == b


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
