"""The Repository facade on memory storage: init/open, blobs, packs, index recovery, keys and snapshots."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from sauvegarde.crypto import KdfParams
from sauvegarde.errors import (
    FormatError,
    IntegrityError,
    ObjectNotFound,
    RepositoryExists,
    RepositoryNotFound,
    StorageError,
    WrongPassword,
)
from sauvegarde.repository import Repository, Snapshot, layout
from sauvegarde.repository import repo as repo_module
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.config import RepoConfig
from sauvegarde.repository.index import IndexFile
from sauvegarde.repository.packed_index import pack_rows
from sauvegarde.repository.testing import PASSWORD, memory_repository
from sauvegarde.storage.memory import MemoryStorage

CHEAP = KdfParams.cheap()


def _blobs(n: int, seed: int, lo: int = 1000, hi: int = 6000) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(lo, hi)) for _ in range(n)]


def _storage(repo: Repository) -> MemoryStorage:
    assert isinstance(repo.storage, MemoryStorage)
    return repo.storage


def _reopen(repo: Repository, password: bytes = PASSWORD) -> Repository:
    return Repository.open(repo.storage, password)


def _pack_headers(repo: Repository) -> Iterator[tuple[bytes, list[BlobEntry]]]:
    for name in repo.iter_pack_names():
        pid = layout.id_from_name(name)
        yield pid, repo.read_pack_header(pid)


def _flip(storage: MemoryStorage, name: str, offset: int) -> None:
    data = bytearray(storage.objects[name])
    data[offset] ^= 0x40
    storage.objects[name] = bytes(data)


# ---- init and open ----------------------------------------------------------------------------------------


def test_init_then_open_with_the_right_password() -> None:
    repo = memory_repository()
    again = _reopen(repo)
    assert again.config == repo.config
    assert again.master == repo.master
    assert again.key_id == repo.key_id
    assert set(_storage(repo).objects) == {"config", layout.named(layout.KEYS, repo.key_id)}


def test_open_with_a_wrong_password() -> None:
    repo = memory_repository()
    with pytest.raises(WrongPassword):
        _reopen(repo, b"not the password")
    assert WrongPassword.exit_code == 12


def test_open_on_empty_storage_is_repository_not_found() -> None:
    with pytest.raises(RepositoryNotFound):
        Repository.open(MemoryStorage(), PASSWORD)
    created = MemoryStorage()
    created.create()
    with pytest.raises(RepositoryNotFound):
        Repository.open(created, PASSWORD)


def test_open_without_key_files_is_repository_not_found() -> None:
    repo = memory_repository()
    repo.storage.delete(layout.named(layout.KEYS, repo.key_id))
    with pytest.raises(RepositoryNotFound):
        _reopen(repo)


def test_init_twice_is_repository_exists() -> None:
    repo = memory_repository()
    with pytest.raises(RepositoryExists):
        Repository.init(repo.storage, b"other", CHEAP)
    # a config without keys (interrupted init, or keys lost) is not overwritten either
    repo.storage.delete(layout.named(layout.KEYS, repo.key_id))
    config = repo.storage.load(layout.CONFIG)
    with pytest.raises(RepositoryExists):
        Repository.init(repo.storage, b"other", CHEAP)
    assert repo.storage.load(layout.CONFIG) == config


def test_init_uses_the_given_config() -> None:
    config = RepoConfig.generate()
    repo = Repository.init(MemoryStorage(), b"pw", CHEAP, config)
    assert repo.config == config
    assert Repository.open(repo.storage, b"pw").config == config


def test_newer_format_is_reported_before_the_password_is_checked() -> None:
    repo = memory_repository()
    newer = RepoConfig(repo_id=repo.config.repo_id, chunker=repo.config.chunker, version=2)
    repo.storage.delete(layout.CONFIG)
    repo.storage.save(layout.CONFIG, newer.encode(repo.cipher))
    with pytest.raises(FormatError, match="format 2"):
        _reopen(repo, b"wrong password")
    with pytest.raises(FormatError, match="format 2"):
        _reopen(repo)


def test_damaged_key_file_does_not_prevent_opening_with_another() -> None:
    repo = memory_repository()
    # sorts before the real key file, so it is tried first
    repo.storage.save(layout.named(layout.KEYS, b"\x00" * 32), b'{"version": 1, "kdf": "argon2id"}')
    repo.storage.save(layout.named(layout.KEYS, b"\x01" * 32), b"{truncated")
    assert _reopen(repo).master == repo.master
    with pytest.raises(WrongPassword):
        _reopen(repo, b"wrong")


# ---- blobs ------------------------------------------------------------------------------------------------


def test_blob_id_is_the_keyed_content_id() -> None:
    repo = memory_repository()
    blob_id, new = repo.save_blob(BlobType.DATA, b"content")
    assert new
    assert blob_id == repo.blob_id(b"content") == repo.master.content_id(b"content")


def test_save_blob_deduplicates() -> None:
    repo = memory_repository()
    data = _blobs(1, 1)[0]
    first = repo.save_blob(BlobType.DATA, data)
    second = repo.save_blob(BlobType.DATA, bytearray(data))
    assert first == (repo.blob_id(data), True)
    assert second == (repo.blob_id(data), False)
    assert repo.has_blob(first[0])
    repo.flush()
    assert repo.save_blob(BlobType.DATA, data) == (first[0], False)
    repo.flush()
    entries = [e for _pid, es in _pack_headers(repo) for e in es]
    assert [e.id for e in entries] == [first[0]]
    assert len(repo.index) == 1
    fresh = _reopen(repo)
    assert fresh.save_blob(BlobType.DATA, data) == (first[0], False)


def test_save_blobs_stores_a_batch_like_save_blob_one_by_one() -> None:
    repo = memory_repository(pack_size=64 * 1024)
    blobs = [*_blobs(200, 11, lo=10, hi=3000), b"text " * 300, b"", b"x"]
    known = repo.save_blob(BlobType.DATA, blobs[5])[0]
    batch: list[bytes | bytearray] = [
        *blobs,
        blobs[7],
        bytearray(blobs[9]),
    ]  # repeats within the batch and an already saved blob
    ids = repo.save_blobs(BlobType.DATA, batch)
    assert ids == [repo.blob_id(b) for b in batch]
    assert ids[5] == known
    repo.flush()
    entries = [e for _pid, es in _pack_headers(repo) for e in es]
    assert sorted(e.id for e in entries) == sorted(set(ids))  # each blob stored once, across several packs
    assert len({pid for pid, _es in _pack_headers(repo)}) >= 3
    fresh = _reopen(repo)
    assert [fresh.load_blob(i) for i in ids] == [bytes(b) for b in batch]
    hit = fresh.index.lookup(ids[len(blobs) - 3])
    assert hit is not None and 0 < hit[1].length < hit[1].raw_length  # the text was stored compressed


def test_load_blob_after_flush() -> None:
    repo = memory_repository()
    raw = _blobs(1, 2)[0]
    text = b"compressible " * 500
    ids = [repo.save_blob(BlobType.DATA, d)[0] for d in (raw, text, b"", b"x")]
    repo.flush()
    assert [repo.load_blob(i) for i in ids] == [raw, text, b"", b"x"]
    hit = repo.index.lookup(ids[1])
    assert hit is not None
    assert hit[1].raw_length == len(text)  # stored compressed
    assert hit[1].length < len(text)
    hit = repo.index.lookup(ids[0])
    assert hit is not None
    assert hit[1].raw_length == 0  # random data stored raw
    assert hit[1].plain_length == len(raw)


def test_many_blobs_span_many_packs_and_index_objects() -> None:
    repo = memory_repository(pack_size=64 * 1024)
    blobs = _blobs(300, 3)
    ids = [repo.save_blob(BlobType.DATA, b)[0] for b in blobs]
    repo.flush()
    headers = dict(_pack_headers(repo))
    assert len(headers) >= 10
    assert sum(len(es) for es in headers.values()) == 300
    assert len(repo.list_index_ids()) >= 2  # written every INDEX_EVERY_PACKS packs, then at flush
    assert repo.stored_bytes == sum(i.size for i in repo.storage.list(layout.DATA))
    for pid, entries in headers.items():
        for e in entries:
            assert repo.index.lookup(e.id) == (pid, e)
    for i, b in zip(ids, blobs, strict=True):
        assert repo.load_blob(i) == b

    fresh = _reopen(repo)
    assert len(fresh.index) == 300
    assert all(fresh.load_blob(i) == b for i, b in zip(ids, blobs, strict=True))


def test_index_objects_are_cut_at_a_blob_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packs of many small blobs: an index object is written once it names INDEX_MAX_BLOBS blobs, before 8 packs
    (loading one big object was the peak of opening a repository of small files)."""
    monkeypatch.setattr(repo_module, "INDEX_MAX_BLOBS", 40)
    repo = memory_repository(pack_size=1024)
    blobs = _blobs(400, 1, 20, 60)
    for b in blobs:
        repo.save_blob(BlobType.DATA, b)
    repo.flush()
    sizes = [repo.load_index_file(i).blob_count() for i in repo.list_index_ids()]
    per_pack = max(len(es) for _pid, es in _pack_headers(repo))
    assert sum(sizes) == 400 and len(sizes) >= 400 // (40 + per_pack)
    assert max(sizes) < 40 + per_pack
    assert len(dict(_pack_headers(repo))) < 8 * len(sizes)  # the count cut them, not the 8 packs


def test_write_index_takes_packed_entries_and_writes_the_superseding_object_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """prune hands the packs it keeps over packed (repository.packed_index); each object is cut at INDEX_MAX_BLOBS
    and written as it fills, the one superseding the old objects last."""
    monkeypatch.setattr(repo_module, "INDEX_MAX_BLOBS", 40)
    repo = memory_repository()
    rng = random.Random(3)
    packs = {
        rng.randbytes(32): [BlobEntry(k % 2, rng.randbytes(32), 100 * k, 100, 150) for k in range(30)] for _ in range(5)
    }
    given = {pid: pack_rows(list(es)) if n % 2 else es for n, (pid, es) in enumerate(packs.items())}
    order: list[str] = []
    save = _storage(repo).save
    monkeypatch.setattr(_storage(repo), "save", lambda name, data: (order.append(name), save(name, data))[1])
    written = repo.write_index(given, [b"\x07" * 32])
    assert len(written) == 3 and order == [layout.named(layout.INDEX, i) for i in written]
    files = [repo.load_index_file(i) for i in written]
    assert [f.supersedes for f in files] == [[], [], [b"\x07" * 32]]
    assert [f.blob_count() for f in files] == [60, 60, 30]
    assert {pid: es for f in files for pid, es in f.packs.items()} == packs


def test_flush_without_new_blobs_writes_nothing() -> None:
    repo = memory_repository()
    before = set(_storage(repo).objects)
    repo.flush()
    repo.flush()
    assert set(_storage(repo).objects) == before


def test_tree_and_data_blobs_go_to_separate_packs() -> None:
    repo = memory_repository()
    data_ids = {repo.save_blob(BlobType.DATA, b)[0] for b in _blobs(10, 4, 100, 200)}
    tree_ids = {repo.save_blob(BlobType.TREE, b)[0] for b in _blobs(10, 5, 100, 200)}
    repo.flush()
    headers = dict(_pack_headers(repo))
    assert len(headers) == 2
    by_type = {}
    for entries in headers.values():
        (btype,) = {e.type for e in entries}
        by_type[btype] = {e.id for e in entries}
    assert by_type == {BlobType.DATA: data_ids, BlobType.TREE: tree_ids}


def test_concurrent_saves_store_each_blob_once() -> None:
    repo = memory_repository(pack_size=16 * 1024)
    blobs = _blobs(120, 6, 200, 2000)
    barrier = threading.Barrier(6)
    results: list[tuple[bytes, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(seed: int) -> None:
        order = blobs[:]
        random.Random(seed).shuffle(order)
        barrier.wait()
        try:
            out = [repo.save_blob(BlobType.DATA, b) for b in order]
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    repo.flush()
    assert errors == []
    assert sum(new for _i, new in results) == len(blobs)
    stored = [e.id for _pid, es in _pack_headers(repo) for e in es]
    assert sorted(stored) == sorted(repo.blob_id(b) for b in blobs)
    assert all(repo.load_blob(repo.blob_id(b)) == b for b in blobs)


# ---- damage -----------------------------------------------------------------------------------------------


def test_flipped_byte_in_a_pack_names_the_blob() -> None:
    repo = memory_repository()
    blobs = _blobs(5, 7)
    ids = [repo.save_blob(BlobType.DATA, b)[0] for b in blobs]
    repo.flush()
    hit = repo.index.lookup(ids[2])
    assert hit is not None
    pid, entry = hit
    _flip(_storage(repo), layout.pack_name(pid), entry.offset + entry.length // 2)
    with pytest.raises(IntegrityError, match=ids[2].hex()):
        repo.load_blob(ids[2])
    for i in (0, 1, 3, 4):
        assert repo.load_blob(ids[i]) == blobs[i]


def test_blob_that_does_not_match_its_id_is_rejected() -> None:
    repo = memory_repository()
    a, _ = repo.save_blob(BlobType.DATA, b"blob a " * 10)
    b, _ = repo.save_blob(BlobType.DATA, b"blob b " * 10)
    repo.flush()
    hit_a, hit_b = repo.index.lookup(a), repo.index.lookup(b)
    assert hit_a is not None and hit_b is not None
    sealed_b = repo.storage.load(layout.pack_name(hit_b[0]), hit_b[1].offset, hit_b[1].length)
    swapped = hit_b[1]._replace(id=a)
    with pytest.raises(IntegrityError, match="does not match its ID"):
        repo.decode_blob(swapped, sealed_b)


def test_missing_blob_or_pack_is_an_integrity_error() -> None:
    repo = memory_repository()
    blob_id, _ = repo.save_blob(BlobType.DATA, b"data")
    with pytest.raises(IntegrityError, match="not in the index"):
        repo.load_blob(b"\x00" * 32)
    repo.flush()
    hit = repo.index.lookup(blob_id)
    assert hit is not None
    repo.storage.delete(layout.pack_name(hit[0]))
    with pytest.raises(IntegrityError, match="missing"):
        repo.load_blob(blob_id)


def test_damaged_index_object_is_detected_on_open() -> None:
    repo = memory_repository()
    repo.save_blob(BlobType.DATA, b"data")
    repo.flush()
    (index_id,) = repo.list_index_ids()
    _flip(_storage(repo), layout.named(layout.INDEX, index_id), 50)
    with pytest.raises(IntegrityError):
        _reopen(repo)


# ---- index recovery ---------------------------------------------------------------------------------------


def test_index_orphan_packs_recovers_unindexed_packs() -> None:
    repo = memory_repository(pack_size=32 * 1024)
    blobs = _blobs(60, 8)
    ids = [repo.save_blob(BlobType.DATA, b)[0] for b in blobs]
    repo.flush()
    n_packs = len(list(repo.iter_pack_names()))
    assert n_packs > 2
    for index_id in repo.list_index_ids():  # as if the backup died before writing its index
        repo.storage.delete(layout.named(layout.INDEX, index_id))

    fresh = _reopen(repo)
    assert len(fresh.index) == 0
    assert not fresh.has_blob(ids[0])
    assert fresh.index_orphan_packs() == n_packs
    assert all(fresh.load_blob(i) == b for i, b in zip(ids, blobs, strict=True))
    assert fresh.index_orphan_packs() == 0
    assert len(fresh.list_index_ids()) == 1

    again = _reopen(repo)
    assert len(again.index) == 60
    assert again.index_orphan_packs() == 0
    assert all(again.load_blob(i) == b for i, b in zip(ids, blobs, strict=True))


def test_index_orphan_packs_skips_damaged_packs() -> None:
    repo = memory_repository()
    blob_id, _ = repo.save_blob(BlobType.DATA, b"good blob")
    repo.flush()
    for index_id in repo.list_index_ids():
        repo.storage.delete(layout.named(layout.INDEX, index_id))
    repo.storage.save(layout.pack_name(b"\xee" * 32), b"not a pack at all, just junk bytes")
    repo.storage.save(layout.pack_name(b"\xef" * 32), b"")
    fresh = _reopen(repo)
    assert fresh.index_orphan_packs() == 1
    assert fresh.load_blob(blob_id) == b"good blob"


def test_superseded_index_objects_are_ignored() -> None:
    repo = memory_repository()
    old_blob, new_blob = b"o" * 32, b"n" * 32
    entry = BlobEntry(0, old_blob, 0, 50, 0)
    old_id = repo.save_index_file(IndexFile(packs={b"p" * 32: [entry]}))
    repo.save_index_file(IndexFile(packs={b"q" * 32: [entry._replace(id=new_blob)]}, supersedes=[old_id]))
    fresh = _reopen(repo)
    assert fresh.index.lookup(old_blob) is None
    assert fresh.index.lookup(new_blob) == (b"q" * 32, entry._replace(id=new_blob))


# ---- upload failures --------------------------------------------------------------------------------------


class _FailingPacks(MemoryStorage):
    """Memory storage whose pack uploads fail after a delay (so the failure happens in the upload thread)."""

    def save(self, name: str, data: bytes | bytearray | memoryview) -> None:
        if name.startswith(layout.DATA):
            time.sleep(0.02)
            raise StorageError(f"{name}: disk on fire")
        super().save(name, data)


class _SlowLock:
    """A lock that yields for a while after each release in an upload thread: widens scheduling races."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> _SlowLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        if threading.current_thread().name.startswith("upload"):
            time.sleep(0.02)


def test_flush_raises_upload_errors() -> None:
    repo = Repository.init(_FailingPacks(), PASSWORD, CHEAP, memory_repository().config)
    repo.save_blob(BlobType.DATA, b"data that will not be stored")
    with pytest.raises(StorageError, match="disk on fire"):
        repo.flush()
    with pytest.raises(StorageError):
        repo.save_blob(BlobType.DATA, b"more data")
    assert repo.list_index_ids() == []


@pytest.mark.parametrize("round_", range(3))
def test_flush_raises_upload_errors_whatever_the_thread_timing(round_: int) -> None:
    repo = Repository.init(_FailingPacks(), PASSWORD, CHEAP, memory_repository().config)
    repo._state_lock = _SlowLock()  # type: ignore[assignment]
    repo.save_blob(BlobType.DATA, b"data that will not be stored %d" % round_)
    with pytest.raises(StorageError, match="disk on fire"):
        repo.flush()


# ---- keys -------------------------------------------------------------------------------------------------


def test_add_list_and_remove_keys() -> None:
    repo = memory_repository()
    first = repo.key_id
    second = repo.add_key(b"second password", CHEAP)
    assert second != first
    assert {k.key_id for k in repo.list_keys()} == {first, second}
    assert _reopen(repo, b"second password").master == repo.master
    assert _reopen(repo, b"second password").key_id == second
    assert _reopen(repo).key_id == first

    repo.remove_key(first)
    assert [k.key_id for k in repo.list_keys()] == [second]
    with pytest.raises(WrongPassword):
        _reopen(repo)
    assert _reopen(repo, b"second password").master == repo.master
    with pytest.raises(ObjectNotFound):
        repo.remove_key(first)


# ---- snapshots --------------------------------------------------------------------------------------------


def _snapshot(when: str, tree: str = "ab" * 32, **kw: object) -> Snapshot:
    return Snapshot(time=when, tree=tree, paths=["/home/u"], hostname="host", **kw)  # type: ignore[arg-type]


def test_snapshots_save_load_and_list() -> None:
    repo = memory_repository()
    later = _snapshot("2026-11-25T06:00:00.000000002+01:00", tags=["daily"], summary={"files": 3})
    earlier = _snapshot("2026-11-25T04:59:59.999999999Z", parent=None, extra={"future_field": [1]})
    sid_later = repo.save_snapshot(later)
    sid_earlier = repo.save_snapshot(earlier)
    assert later.id == sid_later and len(sid_later) == 64
    assert sorted(repo.snapshot_ids()) == sorted([sid_later, sid_earlier])

    loaded = repo.load_snapshot(sid_later)
    assert loaded == later
    assert loaded.id == sid_later
    assert loaded.short_id == sid_later[:8]
    assert repo.load_snapshot(sid_earlier).extra == {"future_field": [1]}

    fresh = _reopen(repo)
    assert [s.id for s in fresh.snapshots()] == [sid_earlier, sid_later]  # oldest first, across time zones

    repo.delete_snapshot(sid_earlier)
    assert repo.snapshot_ids() == [sid_later]


def test_damaged_or_misnamed_snapshot_is_an_integrity_error() -> None:
    repo = memory_repository()
    sid = repo.save_snapshot(_snapshot("2026-01-01T00:00:00Z"))
    name = layout.SNAPSHOTS + sid
    raw = repo.storage.load(name)
    other = "cd" * 32
    repo.storage.save(layout.SNAPSHOTS + other, raw)
    with pytest.raises(IntegrityError):
        repo.load_snapshot(other)
    _flip(_storage(repo), name, len(raw) - 1)
    with pytest.raises(IntegrityError):
        repo.load_snapshot(sid)


def test_context_manager_releases_locks() -> None:
    repo = memory_repository()
    storage = repo.storage
    with repo:
        repo.lock(exclusive=True)
        assert len(list(storage.list(layout.LOCKS))) == 1
    assert list(storage.list(layout.LOCKS)) == []


def test_blobs_marked_incompressible_are_stored_raw() -> None:
    """A later chunk of a file in a compressed format: stored raw even though it would compress."""
    repo = memory_repository()
    texts = [b"compressible %d " % i * 400 for i in range(4)]
    one, _new = repo.save_blob(BlobType.DATA, texts[0], compressible=False)
    many = repo.save_blobs(BlobType.DATA, texts[1:3], compressible=False)
    usual = repo.save_blobs(BlobType.DATA, texts[3:])
    repo.flush()
    fresh = _reopen(repo)
    for blob_id, text in zip([one, *many, *usual], texts, strict=True):
        assert fresh.load_blob(blob_id) == text
    lengths = []
    for blob_id in [one, *many, *usual]:
        hit = fresh.index.lookup(blob_id)
        assert hit is not None
        lengths.append(hit[1].raw_length)
    assert lengths == [0, 0, 0, len(texts[3])]
