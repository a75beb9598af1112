"""Packs spooled to temporary files while they fill: the same bytes and ID as packs built in memory, linked into
place by local storage, read back and checked before a remote upload, and never left behind."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sauvegarde.crypto import KdfParams, MasterKey
from sauvegarde.errors import IntegrityError, ObjectExists, StorageError
from sauvegarde.repository import Repository, layout
from sauvegarde.repository.blobs import BlobType
from sauvegarde.repository.config import RepoConfig
from sauvegarde.repository.pack import PackWriter, SpooledPack, parse_pack
from sauvegarde.repository.testing import PASSWORD, SMALL_CHUNKS
from sauvegarde.storage.local import LocalStorage
from sauvegarde.storage.memory import MemoryStorage
from sauvegarde.storage.wrappers import LimitedStorage

MASTER = MasterKey(enc_key=b"E" * 32, id_key=b"I" * 32)
CIPHER = MASTER.cipher()


def _spooled_files(where: Path) -> list[str]:
    return sorted(n for n in os.listdir(where) if n.startswith(".tmp-spool-"))


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(blobs=st.lists(st.binary(max_size=3000), min_size=1, max_size=20))
def test_a_spooled_pack_is_the_pack_built_in_memory(blobs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as spool_dir:
        in_memory, spooled = PackWriter(BlobType.DATA), PackWriter(BlobType.DATA, spool_dir)
        for blob in blobs:
            sealed = CIPHER.seal(blob)
            for w in (in_memory, spooled):
                w.add(MASTER.content_id(blob), sealed, len(blob))
        assert spooled.size == in_memory.size
        mem_id, mem_data, mem_entries = in_memory.finish(CIPHER)
        spool_id, spool, spool_entries = spooled.finish(CIPHER)
        assert isinstance(spool, SpooledPack) and isinstance(mem_data, bytearray)
        # headers are sealed with fresh nonces: compare the blob areas, entries, and that each ID hashes its pack
        raw = Path(spool.path).read_bytes()
        assert spool.size == len(raw) and spool.read() == raw
        area = mem_entries[-1].offset + mem_entries[-1].length
        assert raw[:area] == bytes(mem_data[:area])
        assert spool_entries == mem_entries == parse_pack(raw, CIPHER, "spooled")
        assert spool_id != mem_id  # (each header sealed with its own nonce)
        assert blake3.blake3(raw).digest() == spool_id
        spool.remove()
        assert _spooled_files(Path(spool_dir)) == []


def test_a_writer_never_finished_leaves_no_file(tmp_path: Path) -> None:
    w = PackWriter(BlobType.DATA, str(tmp_path))
    assert _spooled_files(tmp_path) == []  # created with the first blob only
    w.add(b"i" * 32, CIPHER.seal(b"data"), 4)
    assert len(_spooled_files(tmp_path)) == 1
    w.discard()
    assert _spooled_files(tmp_path) == []


def test_an_unwritable_spool_directory_is_a_storage_error(tmp_path: Path) -> None:
    w = PackWriter(BlobType.DATA, str(tmp_path / "missing"))
    with pytest.raises(StorageError, match="cannot create a temporary pack file"):
        w.add(b"i" * 32, CIPHER.seal(b"data"), 4)


def _local_repo(root: Path) -> Repository:
    config = RepoConfig.generate(SMALL_CHUNKS)
    config = RepoConfig(repo_id=config.repo_id, chunker=SMALL_CHUNKS, pack_size=64 * 1024)
    return Repository.init(LocalStorage(str(root)), PASSWORD, KdfParams.cheap(), config)


def _blobs(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(1, 20_000)) for _ in range(n)]


def test_local_packs_are_spooled_in_the_repository_and_linked_into_place(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = _local_repo(root)
    assert repo._spool_dir == str(root)
    blobs = _blobs(60, seed=1)
    ids = repo.save_blobs(BlobType.DATA, blobs)
    assert _spooled_files(root)  # the pack being filled
    repo.flush()
    assert _spooled_files(root) == []
    assert not [i.name for i in repo.storage.list("") if ".tmp" in i.name]
    reopened = Repository.open(LocalStorage(str(root)), PASSWORD)
    assert [reopened.load_blob(i) for i in ids] == blobs
    for info in reopened.storage.list(layout.DATA):
        assert (root / info.name).stat().st_mode & 0o777 == 0o600
        reopened.load_pack(layout.id_from_name(info.name))  # whole pack: its ID is its hash


def test_an_interrupted_session_removes_its_spool_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    repo = _local_repo(root)
    repo.save_blobs(BlobType.DATA, _blobs(3, seed=2))
    assert len(_spooled_files(root)) == 1
    repo.close()  # no flush: the pack is dropped, as an interrupted backup drops it
    assert _spooled_files(root) == []
    assert list(LocalStorage(str(root)).list(layout.DATA)) == []


def test_local_save_file_is_write_once(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    source = tmp_path / ".tmp-spool-a.pack"
    source.write_bytes(b"first")
    storage.save_file("data/ab/ab01", str(source))
    source.unlink()  # the caller's part: the object is the same file (a link), never written again
    source.write_bytes(b"other")
    with pytest.raises(ObjectExists):
        storage.save_file("data/ab/ab01", str(source))
    assert storage.load("data/ab/ab01") == b"first"
    assert [i.name for i in storage.list("")] == ["data/ab/ab01"]  # temporary names are not objects


def _remote_repo(monkeypatch: pytest.MonkeyPatch, spool_dir: Path) -> tuple[Repository, MemoryStorage]:
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    inner = MemoryStorage()
    config = RepoConfig.generate(SMALL_CHUNKS)
    config = RepoConfig(repo_id=config.repo_id, chunker=SMALL_CHUNKS, pack_size=64 * 1024)
    repo = Repository.init(LimitedStorage(inner, 2), PASSWORD, KdfParams.cheap(), config)
    return repo, inner


def test_remote_packs_are_spooled_in_the_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, inner = _remote_repo(monkeypatch, tmp_path)
    assert repo._spool_dir == str(tmp_path)
    blobs = _blobs(60, seed=3)
    ids = repo.save_blobs(BlobType.DATA, blobs)
    repo.flush()
    assert _spooled_files(tmp_path) == []
    assert [Repository.open(inner, PASSWORD).load_blob(i) for i in ids] == blobs


def test_a_spooled_pack_changed_before_its_upload_is_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, inner = _remote_repo(monkeypatch, tmp_path)
    real_read = SpooledPack.read

    def damaged(self: SpooledPack) -> bytearray:
        data = real_read(self)
        data[10] ^= 1
        return data

    monkeypatch.setattr(SpooledPack, "read", damaged)
    repo.save_blobs(BlobType.DATA, _blobs(5, seed=4))
    with pytest.raises(IntegrityError, match="changed before the upload"):
        repo.flush()
    assert not [n for n in inner.objects if n.startswith(layout.DATA)]
    assert _spooled_files(tmp_path) == []
