"""The Repository facade: open or create a repository and move blobs, indexes and snapshots in and out.

The engine sees blobs and snapshots; packs, the index and encryption stay in here. Blobs are compressed and sealed
in the caller's thread (the native libraries release the GIL, so several callers run in parallel), gathered into
packs, and uploaded by a small pool of uploader threads. A blob counts as stored for deduplication as soon as it
is queued; :meth:`flush` waits for every upload and then writes the index objects that name the new packs, so a
snapshot saved after ``flush`` never refers to unindexed data.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import blake3

from sauvegarde.compression import compress, compress_many, decompress
from sauvegarde.crypto import Cipher, KdfParams, MasterKey
from sauvegarde.errors import (
    FormatError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    RepositoryExists,
    RepositoryNotFound,
    SauvegardeError,
    StorageError,
    WrongPassword,
)
from sauvegarde.repository import deletions, keyfile, layout
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.config import RepoConfig
from sauvegarde.repository.index import ID_PREFIX, IndexColumns, IndexFile, MasterIndex, decode_columns
from sauvegarde.repository.locks import Lock
from sauvegarde.repository.pack import (
    TRAILER_SIZE,
    PackWriter,
    SpooledPack,
    check_bounds,
    decode_header,
    header_length,
)
from sauvegarde.repository.packed_index import PackedIndex, decode_packed
from sauvegarde.repository.packed_index import entries as packed_entries
from sauvegarde.repository.snapshot import Snapshot
from sauvegarde.storage import Storage
from sauvegarde.storage.base import Buffer
from sauvegarde.storage.capabilities import object_lock_storage, temporary_cleanup
from sauvegarde.storage.wrappers import is_remote
from sauvegarde.util.malloc import release_free_memory

_T = TypeVar("_T")
INDEX_EVERY_PACKS = 8  # a backup writes an index object every 8 packs, or sooner at INDEX_MAX_BLOBS blobs
_TREE_CACHE_BYTES = 32 * 1024 * 1024  # tree packs kept when reading trees from remote storage (see _tree_pack)
INDEX_MAX_BLOBS = 100_000  # blobs per index object written by prune and repair; a backup passes it by a pack at most
_AAD_INDEX = b"sauvegarde index v1"
_AAD_SNAPSHOT = b"sauvegarde snapshot v1"


class Repository:
    """An open repository. Create with :meth:`init` or :meth:`open`; call :meth:`close` when done."""

    def __init__(self, storage: Storage, master: MasterKey, config: RepoConfig, key_id: bytes) -> None:
        self.storage = storage
        self.master = master
        self.config = config
        self.key_id = key_id
        self.cipher: Cipher = master.cipher()
        self._index: MasterIndex | None = None  # made on first use (see index)
        self._index_lock = threading.Lock()
        self._inflight: set[bytes] = set()
        self._state_lock = threading.Lock()
        self._pack_lock = threading.Lock()
        # Packs being filled go to a temporary file, not memory: local storage links the file into place;
        # remote storage reads it back just before the upload (restic spools the same way). Memory storage
        # (tests) keeps them in memory.
        self._spool_dir: str | None = getattr(storage, "spool_dir", None) or (
            tempfile.gettempdir() if is_remote(storage) else None
        )
        self._writers = {t: self._new_writer(t) for t in BlobType}
        self._uploads: ThreadPoolExecutor | None = None
        # Local disks take a pack in a few milliseconds: two uploaders keep up. Remote storage is latency-bound:
        # more packs in flight. A slot is a finished pack waiting to be stored (a spooled file, read back into
        # memory for its upload on remote storage), so slots bound memory and temporary disk space.
        self.remote = is_remote(storage)  # requests cost: fewer, larger ones pay
        # what a forked copy of this process stores there, this one sees (a local directory; not memory storage,
        # nor a connection two processes cannot share)
        self.shared_by_processes = bool(getattr(storage, "shared_by_processes", False))
        self._upload_threads = 4 if self.remote else 2
        self._upload_slots = threading.BoundedSemaphore(self._upload_threads + 1)
        self._compress_threads = -1  # batches of small blobs: one per core (see compression.compress_many)
        self._pending_uploads: set[Future[None]] = set()
        self._upload_error: BaseException | None = None
        self._unindexed = IndexFile()
        self._tree_packs: OrderedDict[bytes, bytes] = OrderedDict()  # remote storage: recently read tree packs
        self._locks: list[Lock] = []
        self._announced: set[str] = set()  # names in a deletion log written by this session
        self.stored_bytes = 0  # bytes of new packs written by this session

    @property
    def index(self) -> MasterIndex:
        """The in-memory index, made on first use: building it imports NumPy (60 ms, several MiB), which a
        command that never looks a blob up by ID (``check`` reads its index objects itself) does without."""
        index = self._index
        if index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = MasterIndex(ID_PREFIX, resolver=self.read_pack_header)
                index = self._index
        return index

    # ---- creation and opening -------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        storage: Storage,
        password: bytes,
        kdf: KdfParams | None = None,
        config: RepoConfig | None = None,
    ) -> Repository:
        if storage.exists() and any(True for _ in storage.list(layout.KEYS)):
            raise RepositoryExists(f"a repository already exists at {storage.location}")
        storage.create()
        try:
            storage.stat(layout.CONFIG)
            raise RepositoryExists(f"a repository already exists at {storage.location}")
        except ObjectNotFound:
            pass
        master = MasterKey.generate()
        config = config or RepoConfig.generate()
        _apply_retention(storage, config)
        raw_key = keyfile.wrap_master_key(master, password, kdf or KdfParams())
        kid = keyfile.key_id(raw_key)
        storage.save(layout.named(layout.KEYS, kid), raw_key)
        storage.save(layout.CONFIG, config.encode(master.cipher()))
        return cls(storage, master, config, kid)

    @classmethod
    def open(cls, storage: Storage, password: bytes, load_index: bool = True) -> Repository:
        try:
            raw_config = storage.load(layout.CONFIG)
        except ObjectNotFound:
            raise RepositoryNotFound(f"no repository at {storage.location}") from None
        RepoConfig.check_version(raw_config)  # before unlocking: a newer format may use other key files
        master, kid = cls._unlock(storage, password)
        repo = cls(storage, master, RepoConfig.decode(raw_config, master.cipher()), kid)
        _apply_retention(storage, repo.config)
        repo.reveal_hidden()
        if load_index:
            repo.load_index()
        return repo

    @staticmethod
    def _unlock(storage: Storage, password: bytes) -> tuple[MasterKey, bytes]:
        names = sorted(info.name for info in storage.list(layout.KEYS))
        ols = object_lock_storage(storage)
        if ols is not None and ols.object_lock_enabled():
            # key files hidden behind delete markers (tampering) come last: they are read from retained versions
            names += sorted(n for n in ols.hidden_objects() if n.startswith(layout.KEYS) and n not in names)
        if not names:
            raise RepositoryNotFound(f"no key files in {storage.location}: not a repository or damaged")
        for name in names:
            raw = storage.load(name)
            try:
                master = keyfile.unwrap_master_key(raw, password)
            except FormatError:
                continue
            if master is not None:
                return master, layout.id_from_name(name)
        raise WrongPassword("wrong password, or no key file for this password")

    def close(self) -> None:
        try:
            if self._uploads is not None:
                self._uploads.shutdown(wait=True)
                self._uploads = None
        finally:
            with self._pack_lock:
                for writer in self._writers.values():
                    writer.discard()  # packs never finished (an interrupted backup): their spool files go
            for lock in self._locks:
                lock.release()
            self._locks = []
            self.storage.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self, exclusive: bool = False) -> Lock:
        lk = Lock(self.storage, self.cipher, exclusive).acquire()
        self._locks.append(lk)
        return lk

    # ---- keys -----------------------------------------------------------------------------------------

    def add_key(self, password: bytes, kdf: KdfParams | None = None) -> bytes:
        raw = keyfile.wrap_master_key(self.master, password, kdf or KdfParams())
        kid = keyfile.key_id(raw)
        self.storage.save(layout.named(layout.KEYS, kid), raw)
        return kid

    def list_keys(self) -> list[keyfile.KeyInfo]:
        out = []
        for info in self.storage.list(layout.KEYS):
            kid = layout.id_from_name(info.name)
            out.append(keyfile.parse_key_info(kid, self.storage.load(info.name)))
        return sorted(out, key=lambda k: k.created)

    def remove_key(self, kid: bytes) -> None:
        self.delete_object(layout.named(layout.KEYS, kid))

    # ---- deletions ------------------------------------------------------------------------------------

    @property
    def logs_deletions(self) -> bool:
        """Whether deletions are logged first: on versioned storage, where a deletion only hides data."""
        ols = object_lock_storage(self.storage)
        return ols is not None and (self.config.immutability is not None or ols.versioning_enabled())

    def announce_deletions(self, names: list[str]) -> None:
        """Write one deletion log for ``names`` before deleting them (see :mod:`deletions`)."""
        todo = [n for n in names if n not in self._announced]
        if todo and self.logs_deletions:
            deletions.write_log(self.storage, self.cipher, todo)
        self._announced.update(todo)

    def reveal_hidden(self) -> list[str]:
        """On an immutable repository: make objects hidden or overwritten by someone else (no authentic deletion
        log names them) readable and listed again, from their retained versions; returns their names."""
        ols = object_lock_storage(self.storage)
        if ols is None or self.config.immutability is None:
            return []
        hidden = ols.hidden_objects()
        logged, _forged = deletions.logged_names(self.storage, self.cipher, hidden)
        tampered = [n for n in hidden if n not in logged]
        ols.reveal(tampered)
        return tampered

    def remove_stale_temporaries(self, older_than_s: float = 3600, dry_run: bool = False) -> tuple[int, int]:
        """Temporary files left in the storage by killed processes (local and SFTP storage), older than
        ``older_than_s``: removed (unless ``dry_run``); their count and bytes. Needs the exclusive lock."""
        backend = temporary_cleanup(self.storage)
        return (0, 0) if backend is None else backend.remove_temporaries(older_than_s, dry_run)

    def delete_object(self, name: str) -> None:
        """Delete an object the repository no longer needs, logging the deletion first where that matters."""
        self.announce_deletions([name])
        self.storage.delete(name)

    # ---- index ----------------------------------------------------------------------------------------

    def list_index_ids(self) -> list[bytes]:
        return [layout.id_from_name(i.name) for i in self.storage.list(layout.INDEX)]

    def load_index_file(self, index_id: bytes) -> IndexFile:
        name = layout.named(layout.INDEX, index_id)
        raw = self.storage.load(name)
        self._verify_name(name, raw, index_id)
        index = IndexFile.decode(self.cipher.open(raw, aad=_AAD_INDEX, what=name), name)
        index.index_id = index_id
        return index

    def _load_index_plain(self, index_id: bytes) -> tuple[bytes, str]:
        """An index object's plaintext, authenticated, and its name."""
        name = layout.named(layout.INDEX, index_id)
        raw = self.storage.load(name)
        self._verify_name(name, raw, index_id)
        return self.cipher.open(raw, aad=_AAD_INDEX, what=name), name

    def load_index(self) -> None:
        """Load every index object into the in-memory index.

        Objects arrive through :meth:`index_objects`, decoded into columns one at a time, so memory holds the
        columns and little else. Freed decoding buffers are then handed back to the system (glibc keeps them
        otherwise).
        """

        def loaded() -> Iterator[IndexColumns]:
            for index_id, columns in self.index_objects(decode_columns):
                if isinstance(columns, SauvegardeError):
                    raise columns
                columns.index_id = index_id
                yield columns

        self.index.add_files(loaded())
        release_free_memory()

    def index_objects(self, decode: Callable[[bytes, str], _T]) -> Iterator[tuple[bytes, _T | SauvegardeError]]:
        """Every index object, in the order of :meth:`list_index_ids`, as ``decode(plaintext, name)`` makes it, or
        the error that kept it from loading or decoding.

        Reader threads fetch, authenticate and decrypt a few objects ahead (the GIL is released); the caller's
        thread decodes them one at a time, so at most one object's decoding is in memory at once.
        """
        ids = self.list_index_ids()
        threads = 8 if self.remote else 2
        window: deque[tuple[bytes, Future[tuple[bytes, str]]]] = deque()

        def oldest() -> tuple[bytes, _T | SauvegardeError]:
            index_id, fut = window.popleft()
            try:
                return index_id, decode(*fut.result())
            except SauvegardeError as exc:
                return index_id, exc

        with ThreadPoolExecutor(threads) as pool:
            for index_id in ids:
                window.append((index_id, pool.submit(self._load_index_plain, index_id)))
                if len(window) > threads:
                    yield oldest()
            while window:
                yield oldest()

    def load_packed_index_files(self) -> tuple[list[PackedIndex], dict[bytes, str]]:
        """Every index object that loads, each pack's entries packed (45 bytes per blob, see
        repository.packed_index), and an error message per one that does not (for prune and retention upkeep,
        which go over every entry). Objects superseded by another loaded one are left out of the list."""
        files: list[PackedIndex] = []
        errors: dict[bytes, str] = {}
        for index_id, got in self.index_objects(decode_packed):
            if isinstance(got, SauvegardeError):
                errors[index_id] = str(got)
                continue
            got.index_id = index_id
            files.append(got)
        superseded = {s for f in files for s in f.supersedes}
        return [f for f in files if f.index_id not in superseded], errors

    def write_index(self, packs: Mapping[bytes, list[BlobEntry] | bytes], supersedes: list[bytes]) -> list[bytes]:
        """Write index objects covering ``packs`` (entries as a list, or packed: see repository.packed_index), the
        last of them superseding ``supersedes``.

        Each object is written once it holds :data:`INDEX_MAX_BLOBS` blobs, so only its entries are unpacked at a
        time. The superseding object is written last, so an interruption leaves the old objects in force.
        """
        written: list[bytes] = []
        current = IndexFile()
        count = 0
        for pid, entries in packs.items():
            rows = packed_entries(entries) if isinstance(entries, bytes) else entries
            current.packs[pid] = rows
            count += len(rows)
            if count >= INDEX_MAX_BLOBS:
                written.append(self.save_index_file(current))
                current, count = IndexFile(), 0
        current.supersedes = list(supersedes)
        written.append(self.save_index_file(current))
        return written

    def delete_index(self, index_id: bytes) -> None:
        self.delete_object(layout.named(layout.INDEX, index_id))

    def save_index_file(self, index: IndexFile) -> bytes:
        raw = self.cipher.seal(index.encode(), aad=_AAD_INDEX)
        index_id = blake3.blake3(raw).digest()
        self.storage.save(layout.named(layout.INDEX, index_id), raw)
        return index_id

    def _verify_name(self, name: str, raw: bytes, object_id: bytes) -> None:
        if blake3.blake3(raw).digest() != object_id:
            raise IntegrityError(f"{name}: content does not match its name (damaged)")

    def read_pack_header(self, pack_id: bytes, size: int | None = None) -> list[BlobEntry]:
        name = layout.pack_name(pack_id)
        if size is None:
            size = self.storage.stat(name).size
        n = header_length(self.storage.load(name, max(0, size - TRAILER_SIZE)), size, name)
        sealed = self.storage.load(name, size - TRAILER_SIZE - n, n)
        return check_bounds(decode_header(sealed, self.cipher, name), size - TRAILER_SIZE - n, name)

    def index_orphan_packs(self) -> int:
        """Index packs present in storage but in no index (left by an interrupted backup); returns their number."""
        found = IndexFile()
        for info in self.storage.list(layout.DATA):
            pid = layout.id_from_name(info.name)
            if self.index.has_pack(pid):
                continue
            try:
                found.packs[pid] = self.read_pack_header(pid, info.size)
            except SauvegardeError:
                continue  # a damaged pack is for `check` to report, not for backup to reuse
        if found.packs:
            for pid, entries in found.packs.items():
                self.index.add_pack(pid, entries)
            self.save_index_file(found)
        return len(found.packs)

    # ---- blobs ----------------------------------------------------------------------------------------

    def has_blob(self, blob_id: bytes) -> bool:
        return blob_id in self.index or blob_id in self._inflight

    def blob_id(self, data: Buffer) -> bytes:
        return self.master.content_id(data)

    def save_blob(
        self, btype: BlobType, data: Buffer, blob_id: bytes | None = None, compressible: bool = True
    ) -> tuple[bytes, bool]:
        """Store a blob unless already known. Returns ``(id, newly_stored)``. Thread-safe. ``compressible=False``
        stores it raw without trying (a later chunk of a file whose start
        :func:`~sauvegarde.compression.looks_compressed`)."""
        if self._upload_error is not None:
            raise self._upload_error
        if blob_id is None:
            blob_id = self.master.content_id(data)
        with self._state_lock:
            if blob_id in self._inflight or blob_id in self.index:
                return blob_id, False
            self._inflight.add(blob_id)
        packed = compress(data, self.config.compression_level) if compressible else None
        sealed = self.cipher.seal(data if packed is None else packed)
        full: PackWriter | None = None
        with self._pack_lock:
            writer = self._writers[btype]
            writer.add(blob_id, sealed, 0 if packed is None else len(data))
            if writer.size >= self.config.pack_size:
                full = writer
                self._writers[btype] = self._new_writer(btype)
        if full is not None:
            self._submit(full)
        return blob_id, True

    def save_blobs(self, btype: BlobType, datas: Sequence[Buffer], compressible: bool = True) -> list[bytes]:
        """:meth:`save_blob` for many small blobs at once: their IDs, one index check, one native call compressing
        them all on every core, and one pass into the pack. Returns the IDs in order. Thread-safe."""
        if self._upload_error is not None:
            raise self._upload_error
        content_id = self.master.content_id
        ids = [content_id(d) for d in datas]
        fresh: list[int] = []
        with self._state_lock:
            # one vectorized search of the index for the batch; a blob being uploaded is in flight until it is
            # in the index (the upload adds it there before leaving the in-flight set, under this lock)
            known = self.index.known(ids)
            for i, blob_id in enumerate(ids):
                if blob_id in self._inflight or known[i]:
                    continue  # also a repeat within this batch: its first occurrence is now in flight
                self._inflight.add(blob_id)
                fresh.append(i)
        if not fresh:
            return ids
        level = self.config.compression_level if compressible else 0
        packed = compress_many([datas[i] for i in fresh], level, self._compress_threads)
        seal = self.cipher.seal
        sealed = [seal(datas[i] if p is None else p) for i, p in zip(fresh, packed, strict=True)]
        full: list[PackWriter] = []
        with self._pack_lock:
            writer = self._writers[btype]
            for i, p, s in zip(fresh, packed, sealed, strict=True):
                writer.add(ids[i], s, 0 if p is None else len(datas[i]))
                if writer.size >= self.config.pack_size:
                    full.append(writer)
                    writer = self._writers[btype] = self._new_writer(btype)
        for w in full:
            self._submit(w)
        return ids

    def save_sealed_blob(self, entry: BlobEntry, sealed: bytes) -> None:
        """Put an already sealed blob (read from another pack) into a new pack, for repacking. Thread-safe."""
        if self._upload_error is not None:
            raise self._upload_error
        with self._state_lock:
            self._inflight.add(entry.id)
        full: PackWriter | None = None
        with self._pack_lock:
            writer = self._writers[BlobType(entry.type)]
            writer.add(entry.id, sealed, entry.raw_length)
            if writer.size >= self.config.pack_size:
                full = writer
                self._writers[BlobType(entry.type)] = self._new_writer(entry.type)
        if full is not None:
            self._submit(full)

    def _new_writer(self, btype: int) -> PackWriter:
        return PackWriter(btype, self._spool_dir)

    def _submit(self, writer: PackWriter) -> None:
        pack_id, data, entries = writer.finish(self.cipher)
        self._upload_slots.acquire()
        if self._uploads is None:
            self._uploads = ThreadPoolExecutor(self._upload_threads, thread_name_prefix="upload")
        fut = self._uploads.submit(self._upload, pack_id, data, entries)
        with self._state_lock:
            self._pending_uploads.add(fut)
        fut.add_done_callback(self._upload_done)

    def _upload(self, pack_id: bytes, data: bytearray | SpooledPack, entries: list[BlobEntry]) -> None:
        name = layout.pack_name(pack_id)
        size = data.size if isinstance(data, SpooledPack) else len(data)
        try:
            if isinstance(data, SpooledPack):
                self._store_spooled(name, pack_id, data)
            else:
                self.storage.save(name, data)
        except ObjectExists:
            if self.storage.stat(name).size != size:
                raise StorageError(f"{name}: exists with a different size") from None
        to_write: IndexFile | None = None
        self.index.add_pack(pack_id, entries)
        with self._state_lock:
            self.stored_bytes += size
            for e in entries:
                self._inflight.discard(e.id)
            self._unindexed.packs[pack_id] = entries
            unindexed = self._unindexed
            if len(unindexed.packs) >= INDEX_EVERY_PACKS or unindexed.blob_count() >= INDEX_MAX_BLOBS:
                to_write, self._unindexed = unindexed, IndexFile()
        if to_write is not None:
            self.save_index_file(to_write)

    def _store_spooled(self, name: str, pack_id: bytes, spool: SpooledPack) -> None:
        """Store a spooled pack under ``name`` and remove its file: moved into place by storage that can
        (local), else read back, checked against its ID (the temporary file could have been damaged) and saved."""
        try:
            save_file = getattr(self.storage, "save_file", None)
            if save_file is not None:
                save_file(name, spool.path)
                return
            try:
                data = spool.read()
            except OSError as exc:
                raise StorageError(f"{name}: cannot read its spooled copy: {exc}") from None
            if blake3.blake3(data).digest() != pack_id:
                raise IntegrityError(f"{name}: its spooled copy in {self._spool_dir} changed before the upload")
            self.storage.save(name, data)
        finally:
            spool.remove()

    def _upload_done(self, fut: Future[None]) -> None:
        exc = fut.exception()
        with self._state_lock:
            # record the error before the future leaves the pending set, or flush() could miss it
            if exc is not None and self._upload_error is None:
                self._upload_error = exc
            self._pending_uploads.discard(fut)
        self._upload_slots.release()

    def after_fork(self) -> None:
        """In a forked child: fresh locks throughout (a thread the child does not have may have held one) and no
        upload threads (they do not exist in the child). Call first thing in the child."""
        self._index_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pack_lock = threading.Lock()
        self._upload_slots = threading.BoundedSemaphore(self._upload_threads + 1)
        self._uploads = None
        self._compress_threads = 1  # the processes share the cores: no compression threads of its own
        if self._index is not None:
            self._index.after_fork()
        reset = getattr(self.storage, "after_fork", None)
        if reset is not None:
            reset()

    def has_unsaved_work(self) -> bool:
        """Whether this session has blobs not yet in a stored pack, packs being stored or not yet indexed, or has
        started its upload threads (a forked copy of it must start with none of these)."""
        with self._pack_lock:
            filling = any(len(w) for w in self._writers.values()) or bool(self._inflight)
        with self._state_lock:
            storing = bool(self._pending_uploads) or self._uploads is not None or bool(self._unindexed.packs)
        return filling or storing

    def flush(self) -> None:
        """Upload every partial pack and write the index for everything uploaded; raises upload errors."""
        with self._pack_lock:
            writers = [w for w in self._writers.values() if len(w)]
            self._writers = {t: self._new_writer(t) for t in BlobType}
        for w in writers:
            self._submit(w)
        while True:
            with self._state_lock:
                pending = list(self._pending_uploads)
            if not pending:
                break
            for fut in pending:
                fut.exception()
        if self._upload_error is not None:
            raise self._upload_error
        with self._state_lock:
            to_write, self._unindexed = self._unindexed, IndexFile()
        if to_write.packs:
            self.save_index_file(to_write)

    def load_blob(self, blob_id: bytes) -> bytes:
        """The plaintext of a blob, authenticated and checked against its ID; from another copy if the first
        one is damaged or missing (see :meth:`load_other_copy`)."""
        hit = self.index.lookup(blob_id)
        if hit is None:
            raise IntegrityError(f"blob {blob_id.hex()} is not in the index (data missing)")
        try:
            return self.load_blob_at(*hit)
        except IntegrityError as exc:
            return self.load_other_copy(blob_id, hit[0], exc)

    def load_other_copy(self, blob_id: bytes, failed_pack: bytes, error: SauvegardeError) -> bytes:
        """The plaintext of a blob from a copy outside ``failed_pack``, whose copy gave ``error``: a blob stored
        twice is lost only when every copy is. Raises ``error`` (saying how many other copies failed too) if no
        copy reads. (``check --read-data`` reports the damaged copy.)"""
        others = [(pid, entry) for pid, entry in self.index.copies(blob_id) if pid != failed_pack]
        for pid, entry in others:
            with contextlib.suppress(IntegrityError):
                return self.load_blob_at(pid, entry)
        if not others:
            raise error
        raise IntegrityError(f"{error} (and {len(others)} other cop{'y' if len(others) == 1 else 'ies'} failed too)")

    def load_blob_at(self, pack_id: bytes, entry: BlobEntry) -> bytes:
        """The plaintext of the blob ENTRY of a pack, authenticated and checked against its ID (trees on remote
        storage come from a cache of recently read tree packs)."""
        if entry.type == BlobType.TREE:
            pack = self._tree_pack(pack_id)
            if pack is not None and entry.offset + entry.length <= len(pack):
                return self.decode_blob(entry, memoryview(pack)[entry.offset : entry.offset + entry.length])
        return self.decode_blob(entry, self.load_pack_range(pack_id, entry.offset, entry.length))

    def _tree_pack(self, pack_id: bytes) -> bytes | None:
        """A whole tree pack from remote storage, kept while trees are read from it: walking a snapshot reads its
        trees in about the order they were written, so one request serves thousands of trees (a request per tree
        is slow on S3). The trees of a snapshot made after changes are spread over the packs of every backup that
        changed them, and a walk goes back and forth between those: the last few packs read are kept (up to
        _TREE_CACHE_BYTES; with one pack kept, restoring such a snapshot read 879 whole packs instead of 2). Local
        storage reads each tree by its range: no pack is kept. None if the pack is not to be read whole, or
        cannot be (the caller falls back to a ranged read and its precise error)."""
        if not self.remote:
            return None
        with self._state_lock:
            data = self._tree_packs.get(pack_id)
            if data is not None:
                self._tree_packs.move_to_end(pack_id)
                return data
        try:
            data = self.storage.load(layout.pack_name(pack_id))
        except SauvegardeError:
            return None
        with self._state_lock:
            self._tree_packs[pack_id] = data
            total = sum(len(d) for d in self._tree_packs.values())
            while total > _TREE_CACHE_BYTES and len(self._tree_packs) > 1:
                total -= len(self._tree_packs.popitem(last=False)[1])
        return data

    def fetch_pack_ahead(self, pack_id: bytes) -> None:
        """Hint that the whole pack will be read soon: local storage asks the disk for it now; others do nothing."""
        fetch = getattr(self.storage, "fetch_ahead", None)
        if fetch is not None:
            fetch(layout.pack_name(pack_id))

    def load_pack_range(self, pack_id: bytes, offset: int, length: int) -> bytes:
        """Raw bytes of a pack (for reading several blobs at once); damaged or missing packs raise IntegrityError."""
        name = layout.pack_name(pack_id)
        # packs are named by their hash: local storage keeps them open between reads
        load = getattr(self.storage, "load_unchanging", None) or self.storage.load
        try:
            return load(name, offset, length)
        except ObjectNotFound:
            raise IntegrityError(f"pack {pack_id.hex()} is missing") from None
        except StorageError as exc:
            raise IntegrityError(f"pack {pack_id.hex()}: {exc}") from None

    def decode_blob(self, entry: BlobEntry, sealed: Buffer) -> bytes:
        what = f"blob {entry.id.hex()}"
        plain = self.cipher.open(sealed, what=what)
        if entry.raw_length:
            plain = decompress(plain, entry.raw_length, what)
        if self.master.content_id(plain) != entry.id:
            raise IntegrityError(f"{what}: content does not match its ID")
        return plain

    # ---- snapshots ------------------------------------------------------------------------------------

    def save_snapshot(self, snap: Snapshot) -> str:
        for lk in self._locks:
            lk.check_held()  # a lock that lapsed may have let a prune delete data this snapshot refers to
        raw = self.cipher.seal(snap.encode(), aad=_AAD_SNAPSHOT)
        sid = blake3.blake3(raw).digest()
        self.storage.save(layout.named(layout.SNAPSHOTS, sid), raw)
        snap.id = sid.hex()
        return snap.id

    def load_snapshot(self, sid: str) -> Snapshot:
        name = layout.SNAPSHOTS + sid
        raw = self.storage.load(name)
        self._verify_name(name, raw, bytes.fromhex(sid))
        return Snapshot.decode(self.cipher.open(raw, aad=_AAD_SNAPSHOT, what=name), sid)

    def snapshot_ids(self) -> list[str]:
        return [i.name.rsplit("/", 1)[-1] for i in self.storage.list(layout.SNAPSHOTS)]

    def snapshots(self) -> list[Snapshot]:
        """All snapshots, oldest first."""
        ids = self.snapshot_ids()
        with ThreadPoolExecutor(8) as pool:
            snaps = list(pool.map(self.load_snapshot, ids))
        return sorted(snaps, key=lambda s: (s.datetime, s.id))

    def delete_snapshot(self, sid: str) -> None:
        self.delete_object(layout.SNAPSHOTS + sid)

    def iter_pack_names(self) -> Iterator[str]:
        for info in self.storage.list(layout.DATA):
            yield info.name

    # ---- packs, for check and prune ------------------------------------------------------------------

    def list_packs(self) -> dict[bytes, int]:
        """Every pack in storage and its size."""
        out: dict[bytes, int] = {}
        for info in self.storage.list(layout.DATA):
            try:
                out[layout.id_from_name(info.name)] = info.size
            except ValueError:
                continue  # not an object of ours
        return out

    def load_pack(self, pack_id: bytes, verify: bool = True) -> bytes:
        """A whole pack, checked against its name unless ``verify`` is false."""
        name = layout.pack_name(pack_id)
        try:
            raw = self.storage.load(name)
        except ObjectNotFound:
            raise IntegrityError(f"pack {pack_id.hex()} is missing") from None
        if verify:
            self._verify_name(name, raw, pack_id)
        return raw

    def delete_pack(self, pack_id: bytes) -> None:
        self.delete_object(layout.pack_name(pack_id))


def _apply_retention(storage: Storage, config: RepoConfig) -> None:
    """Make an Object Lock capable storage retain what it saves, as the repository config asks."""
    policy = config.immutability
    ols = object_lock_storage(storage)
    if ols is not None:
        ols.set_retention(policy)
