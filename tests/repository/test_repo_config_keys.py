"""The config object and key files."""

from __future__ import annotations

import base64
import json

import blake3
import pytest

from sauvegarde.chunking import ChunkerParams
from sauvegarde.crypto import Cipher, KdfParams, MasterKey
from sauvegarde.errors import FormatError, IntegrityError
from sauvegarde.repository import keyfile, keyheader
from sauvegarde.repository.config import FORMAT_VERSION, MAGIC, RepoConfig

CIPHER = Cipher(b"c" * 32)
CHEAP = KdfParams.cheap()


# ---- config -----------------------------------------------------------------------------------------------


def test_config_round_trip() -> None:
    cfg = RepoConfig(repo_id="ab" * 16, chunker=ChunkerParams(1, 2, 3, 4), compression_level=7, pack_size=1234)
    assert RepoConfig.decode(cfg.encode(CIPHER), CIPHER) == cfg


def test_generated_config_defaults() -> None:
    cfg = RepoConfig.generate()
    assert len(cfg.repo_id) == 32
    int(cfg.repo_id, 16)
    assert cfg.version == FORMAT_VERSION == 1
    assert cfg.compression_level == 3
    assert cfg.pack_size == 16 * 1024 * 1024
    assert cfg.chunker.seed > 0
    assert RepoConfig.generate().repo_id != cfg.repo_id
    assert RepoConfig.decode(cfg.encode(CIPHER), CIPHER) == cfg


def test_config_layout_and_peek_version() -> None:
    raw = RepoConfig.generate().encode(CIPHER)
    assert raw.startswith(MAGIC + b"\x01")
    assert MAGIC == b"SAUVEGARDE-REPO\n"
    assert RepoConfig.peek_version(raw) == 1
    assert RepoConfig.check_version(raw) == 1
    body = json.loads(CIPHER.open(raw[len(MAGIC) + 1 :], aad=MAGIC))
    assert set(body) == {"version", "id", "chunker", "compression_level", "pack_size"}
    assert set(body["chunker"]) == {"min", "avg", "max", "seed"}


def test_unknown_fields_are_kept() -> None:
    cfg = RepoConfig(repo_id="00" * 16, chunker=ChunkerParams(), extra={"future": [1, 2], "other": "x"})
    back = RepoConfig.decode(cfg.encode(CIPHER), CIPHER)
    assert back.extra == {"future": [1, 2], "other": "x"}
    assert back == cfg


def test_unknown_version_is_a_format_error_before_any_key() -> None:
    cfg = RepoConfig(repo_id="00" * 16, chunker=ChunkerParams(), version=2)
    raw = cfg.encode(CIPHER)
    assert RepoConfig.peek_version(raw) == 2
    with pytest.raises(FormatError, match="format 2"):
        RepoConfig.check_version(raw)
    with pytest.raises(FormatError, match="format 2"):
        RepoConfig.decode(raw, Cipher(b"w" * 32))  # no IntegrityError: the version is checked first


@pytest.mark.parametrize("raw", [b"", MAGIC, b"SAUVEGARDE-REPX\n\x01", b"not a config", b"\x01" + MAGIC])
def test_not_a_config_is_a_format_error(raw: bytes) -> None:
    with pytest.raises(FormatError):
        RepoConfig.peek_version(raw)
    with pytest.raises(FormatError):
        RepoConfig.decode(raw, CIPHER)


def test_config_under_another_key_or_tampered_is_an_integrity_error() -> None:
    raw = RepoConfig.generate().encode(CIPHER)
    with pytest.raises(IntegrityError):
        RepoConfig.decode(raw, Cipher(b"w" * 32))
    damaged = bytearray(raw)
    damaged[-1] ^= 1
    with pytest.raises(IntegrityError):
        RepoConfig.decode(bytes(damaged), CIPHER)


def test_config_sealed_body_is_bound_to_the_config_aad() -> None:
    body = json.dumps({"version": 1, "id": "x", "chunker": ChunkerParams().to_dict()}).encode()
    raw = MAGIC + b"\x01" + CIPHER.seal(body, aad=b"sauvegarde index v1")
    with pytest.raises(IntegrityError):
        RepoConfig.decode(raw, CIPHER)


# ---- key files --------------------------------------------------------------------------------------------


def test_wrap_unwrap_with_right_and_wrong_password() -> None:
    mk = MasterKey.generate()
    raw = keyfile.wrap_master_key(mk, b"right", CHEAP)
    assert keyfile.unwrap_master_key(raw, b"right") == mk
    assert keyfile.unwrap_master_key(raw, b"wrong") is None
    assert keyfile.unwrap_master_key(raw, b"") is None
    assert keyfile.unwrap_master_key(raw, b"right ") is None


def test_each_wrap_uses_a_fresh_salt() -> None:
    mk = MasterKey.generate()
    a = keyfile.wrap_master_key(mk, b"pw", CHEAP)
    b = keyfile.wrap_master_key(mk, b"pw", CHEAP)
    assert json.loads(a)["salt"] != json.loads(b)["salt"]
    assert keyfile.key_id(a) != keyfile.key_id(b)
    assert keyfile.unwrap_master_key(b, b"pw") == mk


def test_key_file_fields_follow_the_format_document() -> None:
    raw = keyfile.wrap_master_key(MasterKey.generate(), b"pw", KdfParams(memory_kib=128, iterations=2, lanes=1))
    body = json.loads(raw)
    assert body["version"] == 1
    assert body["kdf"] == "argon2id"
    assert (body["memory_kib"], body["iterations"], body["lanes"]) == (128, 2, 1)
    assert len(base64.b64decode(body["salt"])) == 16
    assert {"created", "hostname", "username", "data"} <= set(body)
    assert keyfile.unwrap_master_key(raw, b"pw") is not None


def test_key_id_is_blake3_of_the_file() -> None:
    raw = keyfile.wrap_master_key(MasterKey.generate(), b"pw", CHEAP)
    assert keyfile.key_id(raw) == blake3.blake3(raw).digest()


def test_parse_key_info() -> None:
    raw = keyfile.wrap_master_key(MasterKey.generate(), b"pw", CHEAP)
    body = json.loads(raw)
    info = keyfile.parse_key_info(b"k" * 32, raw)
    assert info.key_id == b"k" * 32
    assert (info.created, info.hostname, info.username) == (body["created"], body["hostname"], body["username"])


def test_tampered_wrapped_key_does_not_open() -> None:
    raw = keyfile.wrap_master_key(MasterKey.generate(), b"pw", CHEAP)
    body = json.loads(raw)
    data = bytearray(base64.b64decode(body["data"]))
    data[30] ^= 4
    body["data"] = base64.b64encode(bytes(data)).decode()
    assert keyfile.unwrap_master_key(json.dumps(body).encode(), b"pw") is None


def _damaged(**changes: object) -> bytes:
    body = json.loads(keyfile.wrap_master_key(MasterKey.generate(), b"pw", CHEAP))
    for k, v in changes.items():
        if v is None:
            del body[k]
        else:
            body[k] = v
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"version": 1, "kdf": "scrypt"}',
        pytest.param(_damaged(version=2), id="version-2"),
        pytest.param(_damaged(salt=None), id="no-salt"),
        pytest.param(_damaged(data=None), id="no-data"),
        pytest.param(_damaged(memory_kib=None), id="no-memory"),
        pytest.param(_damaged(lanes="many"), id="bad-lanes"),
        pytest.param(_damaged(lanes=0), id="zero-lanes"),
        pytest.param(_damaged(salt="c2FsdA=="), id="short-salt"),
        pytest.param(_damaged(salt="!!not base64"), id="bad-base64"),
        pytest.param(_damaged(data=5), id="data-not-a-string"),
        pytest.param(_damaged(memory_kib=2**40), id="a-tebibyte-of-memory"),
        pytest.param(_damaged(iterations=10**9), id="a-billion-passes"),
    ],
)
def test_unreadable_key_files_are_format_errors(raw: bytes) -> None:
    with pytest.raises(FormatError):
        keyfile.unwrap_master_key(raw, b"pw")


def test_kdf_inputs_are_the_salt_and_parameters_the_key_file_was_wrapped_with() -> None:
    params = KdfParams(memory_kib=128, iterations=2, lanes=1)
    raw = keyfile.wrap_master_key(MasterKey.generate(), b"pw", params)
    salt, got = keyheader.kdf_inputs(raw)
    assert got == params
    assert salt == base64.b64decode(json.loads(raw)["salt"])
    with pytest.raises(FormatError):
        keyheader.kdf_inputs(_damaged(salt=None))
