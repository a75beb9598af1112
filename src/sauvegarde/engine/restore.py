"""Restore: recreate a snapshot's tree under a target directory, exactly.

Entries land at ``TARGET/<original absolute path>``. The calling thread walks the snapshot, creates directories,
symlinks and special files, creates every regular file at its final size, and plans which blobs of which pack feed
which file offsets. A pool of workers then fetches each pack once (in a few range reads covering the blobs it
needs), authenticates and checks every blob against its ID, and writes it with ``pwrite`` to every place it belongs
(deduplicated content is fetched once); a file of 64 MiB or more leaves the page cache behind its writes. A file
gets its metadata when its last blob is written; a file hit by a damaged blob is removed and reported, never left
with wrong bytes. Hardlinks are made after all files exist; directory metadata (modes and times) is applied last,
deepest first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sauvegarde.engine.events import (
    Counters,
    FileError,
    FileWarning,
    Reporter,
    SentCounters,
    add_progress,
    ignore,
    report_problems,
)
from sauvegarde.engine.verify import metadata_differences
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.errors import ObjectNotFound, SauvegardeError
from sauvegarde.repository import Node, Repository, Snapshot, layout
from sauvegarde.repository.blobs import BlobEntry
from sauvegarde.repository.tree import DIR, FILE, SOCKET, SYMLINK
from sauvegarde.source import Excluder
from sauvegarde.source.metadata import gid_for, uid_for
from sauvegarde.target.writing import (
    create,
    create_fresh,
    current_umask,
    has_xattr,
    make_special,
    pwrite_all,
    pwrite_sparse,
    remove_existing,
)
from sauvegarde.util.forked import Child, ChildFailed, Send, can_fork
from sauvegarde.util.malloc import keep_freed
from sauvegarde.util.pagecache import drop_behind

_MAX_GAP = 1024 * 1024  # blobs of one pack closer than this are fetched in one read...
_MAX_RUN = 4 * 1024 * 1024  # ... of at most this many bytes (unless one blob is larger): memory per worker
_MAX_RUN_REMOTE = 8 * 1024 * 1024  # on S3, SFTP, REST: half the requests (S3 restore 8.4 -> 7.5 s, +9 MiB RSS)
_MAX_RUN_CHILD = 1024 * 1024  # in a child process, which has buffers of its own: tree restore peak -6 MiB, as fast


# A file this big is dropped from the page cache behind its writes, each time this much more of it is written:
# it does not push out what the machine was using, and its writes reuse a few pages instead of taking fresh ones
# (on a VM whose freed memory goes back to the host, fresh pages cost a host fault each: restoring a 700 MB file
# 1.6-2.2 -> 1.1-1.2 s there). Writeback then happens during the restore rather than after it.
_DROP_BEHIND_FROM = 64 * 1024 * 1024
_DROP_BEHIND_EVERY = 32 * 1024 * 1024

# Each blob read, decrypted and decompressed takes buffers of up to a few MiB that are freed right after: kept in
# the heap for the next blob rather than given back (see util.malloc.keep_freed), 700 MB file restore 190,000 ->
# 80,000 page faults, 0.98-1.11 -> 0.84-0.93 s; peak memory the same. Process-wide, and left so afterwards (a
# daemon's drills included): at most this much more memory kept per heap arena.
_KEEP_FREED = 8 * 1024 * 1024

_CREATE_BATCH = 256
_BATCH_FILES = 4096  # files planned, then written (and verified) before the walk goes on: memory stays flat


@dataclass
class RestoreOptions:
    target: str
    include: Excluder = field(default_factory=Excluder)
    exclude: Excluder = field(default_factory=Excluder)
    path: str | None = None
    only: frozenset[bytes] | None = None  # restore exactly these snapshot paths (b"/home/a/x"), and their parents
    verify: bool = False  # read back every restored file and check its blobs against the snapshot
    verify_metadata: bool = False  # with verify: also compare each restored entry's metadata (engine.verify)
    workers: int = max(2, min(8, (os.cpu_count() or 2) * 2))
    # batches of files written by this many forked processes at once, the threads above shared among them, while
    # this one walks on (local repositories only; 0: every batch in this process)
    processes: int = min(2, os.cpu_count() or 1)


@dataclass
class RestoreSummary:
    files: int = 0
    dirs: int = 0
    other: int = 0
    bytes: int = 0
    verified: int = 0
    duration_s: float = 0.0
    first_byte_s: float | None = None  # from the start of the run to the first content byte written
    verify_s: float = 0.0  # of duration_s, the time spent verifying
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _OpenDir:
    path: bytes
    node: Node
    made: bool = False


@dataclass
class _File:
    out: bytes
    node: Node
    remaining: int  # planned blob writes not done yet; the last one finishes the file
    failed: str = ""
    # made by its only blob write (most small files): no separate create, truncate and reopen, and its metadata
    # is set through the still open descriptor (no path lookups); a failed write leaves ``failed`` set
    created_by_write: bool = False
    written: int = 0  # bytes written so far, counted for files dropped behind their writes (_DROP_BEHIND_FROM)


# one use of a blob: (file, offset in the file)
_Use = tuple[_File, int]


class Restore:
    """One restore run; create, then call :meth:`run` once."""

    def __init__(
        self, repo: Repository, snapshot: Snapshot, options: RestoreOptions, reporter: Reporter = ignore
    ) -> None:
        self.repo = repo
        self.snap = snapshot
        self.opts = options
        self.report = reporter
        self.counters = Counters()
        self.summary = RestoreSummary()
        self._lock = threading.Lock()
        self._trees = TreeLoader(repo)
        self._is_root = os.geteuid() == 0
        self._target = os.fsencode(os.path.abspath(options.target))
        # Owner new files get without a chown, when known for sure (see _plain_creation); None: always chown
        self._plain_owner: tuple[int, int] | None = None
        self._umask = 0o077  # the process's, read in run()
        self._dirs_made: list[tuple[bytes, Node]] = []
        self._links: dict[tuple[int, int], bytes] = {}
        self._deferred_links: list[tuple[bytes, bytes]] = []
        self._files: list[_File] = []
        self._others: list[tuple[bytes, Node]] = []  # symlinks and special files made (for verify_metadata)
        self._only_dirs = _ancestors(options.only) if options.only is not None else None
        self._start = 0.0
        # pack ID -> blob ID -> (entry, uses)
        self._plan: dict[bytes, dict[bytes, tuple[BlobEntry, list[_Use]]]] = {}
        # batches being written by child processes, oldest first (see _flush)
        self._children: list[tuple[Child, list[bytes]]] = []  # and where the batch's files go
        self._forking = options.processes > 0 and not repo.remote and can_fork()
        self._forked = False
        self._max_run = _MAX_RUN_REMOTE if repo.remote else _MAX_RUN

    def run(self) -> RestoreSummary:
        try:
            return self._run()
        finally:
            for child, _paths in self._children:  # only on the way out of an error: all are waited otherwise
                child.kill()

    def _run(self) -> RestoreSummary:
        start = self._start = time.monotonic()
        keep_freed(_KEEP_FREED)
        root = bytes.fromhex(self.snap.tree)
        os.makedirs(self._target, exist_ok=True)
        if self.opts.path and self.opts.path.strip("/"):
            node, _ = resolve(self._trees, root, self.opts.path)
            assert node is not None
            prefix = os.fsencode("/" + self.opts.path.strip("/"))
            os.makedirs(self._target + os.path.dirname(prefix), exist_ok=True)
            self._plain_creation(self._target + os.path.dirname(prefix))
            self._restore_entry(prefix, node, [])
        else:
            self._plain_creation(self._target)
            self._restore_tree(root, b"", [])
        self.counters.scan_finished = True
        self._flush(last=True)
        while self._children:
            self._wait_child()
        self._make_deferred_links()
        for path, dnode in reversed(self._dirs_made):
            self._apply_metadata(path, dnode)
        if self.opts.verify:
            verify_start = time.monotonic()
            self._verify_others()
            self.summary.verify_s = round(self.summary.verify_s + time.monotonic() - verify_start, 3)
        self.summary.duration_s = round(time.monotonic() - start, 3)
        return self.summary

    def _plain_creation(self, top: bytes) -> None:
        """Whether a file this restore creates gets exactly the process's owner, group and the mode asked for
        (minus the umask): then a one-blob file whose snapshot owner and simple mode match is created with that
        mode and needs no chown or chmod (two inode updates fewer per file). Not so under a set-group-ID or
        default-ACL directory (``top``, where the restore creates its first entries, is looked at; directories
        that existed before the restore turn this off, see _make_dirs)."""
        self._umask = current_umask()
        try:
            st = os.stat(top)
            default_acl = has_xattr(top, b"system.posix_acl_default")
        except OSError:
            return
        if not st.st_mode & stat.S_ISGID and not default_acl:
            self._plain_owner = (os.geteuid(), os.getegid())

    def _creation_mode(self, node: Node) -> int | None:
        """The final mode to create a one-blob file with, if creating with it gives exactly that mode."""
        mode = node.mode
        if self._plain_owner is None or mode & ~0o777 or mode & self._umask:
            return None
        if self._is_root and (uid_for(node.user, node.uid), gid_for(node.group, node.gid)) != self._plain_owner:
            return None  # a chown follows
        return mode

    # ---- walking --------------------------------------------------------------------------------------

    def _restore_tree(self, tree_id: bytes, prefix: bytes, stack: list[_OpenDir]) -> None:
        try:
            tree = self._trees.load(tree_id)
        except SauvegardeError as exc:
            self._error(prefix or b"/", str(exc))
            return
        for node in tree.nodes:
            self._restore_entry(prefix + b"/" + node.name, node, stack)

    def _restore_entry(self, path: bytes, node: Node, stack: list[_OpenDir]) -> None:
        if self.opts.exclude and self.opts.exclude.excluded(path):
            return
        selected = not self.opts.include or self.opts.include.excluded(path)
        if self.opts.only is not None:
            selected = selected and path in self.opts.only
            if node.type == DIR and not selected and path not in (self._only_dirs or ()):
                return  # nothing asked for below it: not even its tree is read
        if node.type == DIR:
            stack.append(_OpenDir(path, node))
            if selected:
                self._make_dirs(stack)
            if node.subtree is not None:
                self._restore_tree(node.subtree, path, stack)
            stack.pop()
            return
        if not selected:
            return
        self._make_dirs(stack)
        out = self._target + path
        if node.type == FILE:
            if node.nlink > 1 and node.inode:
                first = self._links.get((node.dev, node.inode))
                if first is not None:
                    self._deferred_links.append((out, first))
                    return
                self._links[(node.dev, node.inode)] = out
            self._plan_file(out, node)
            return
        if node.type == SOCKET:
            self._warn(path, "sockets are not restored")
            return
        try:
            try:
                make_special(out, node)
            except FileExistsError:  # something in the way (rare: looked for only then, not before each entry)
                remove_existing(out)
                make_special(out, node)
        except OSError as exc:
            self._error(path, exc.strerror or str(exc))
            return
        self._apply_metadata(out, node)
        if self.opts.verify_metadata:
            self._others.append((out, node))
        self.summary.other += 1
        self.counters.add(files=1)

    def _make_dirs(self, stack: list[_OpenDir]) -> None:
        """Create the directories on the stack that do not exist yet (a directory is made only when needed)."""
        for d in stack:
            if d.made:
                continue
            d.made = True
            out = self._target + d.path
            try:
                os.mkdir(out, 0o700)
            except FileExistsError:
                if not os.path.isdir(out) or os.path.islink(out):
                    remove_existing(out)
                    os.mkdir(out, 0o700)
                else:
                    self._plain_owner = None  # it may be set-group-ID or carry a default ACL: chown and chmod
            except OSError as exc:
                self._error(d.path, exc.strerror or str(exc))
                continue
            self._dirs_made.append((out, d.node))
            self.summary.dirs += 1

    # ---- file contents --------------------------------------------------------------------------------

    def _plan_file(self, out: bytes, node: Node) -> None:
        """Add a file to the batch; the file itself is created later, in parallel (see :meth:`_plan_blobs`)."""
        if len(self._files) >= _BATCH_FILES:
            self._flush()
        self._files.append(_File(out, node, 0))

    def _plan_blobs(self, files: list[_File]) -> None:
        """Record where each blob of the files goes. The blobs of the whole batch are looked up in one search of
        the index (one per directory cost 0.1 s more for 3,300 directories: the search's fixed cost)."""
        hits = self.repo.index.lookup_many([blob_id for f in files for blob_id in f.node.content])
        plan = self._plan
        k = 0
        for f in files:
            content = f.node.content
            offset = 0
            for blob_id, hit in zip(content, hits[k : k + len(content)], strict=True):
                if hit is None:
                    f.failed = f"blob {blob_id.hex()} is missing from the repository"
                    break
                pack_id, entry = hit
                blobs = plan.setdefault(pack_id, {})
                slot = blobs.get(blob_id)
                if slot is None:
                    blobs[blob_id] = (entry, [(f, offset)])
                else:
                    slot[1].append((f, offset))
                f.remaining += 1
                offset += entry.plain_length
            k += len(content)

    def _create_files(self, files: list[_File]) -> None:
        for f in files:
            self._create_file(f)

    def _create_file(self, f: _File) -> None:
        """Create (or truncate) the file at its final size, so blobs can be written at any offset; a file made of
        one blob, not sparse, is created by that blob's write instead."""
        if not f.failed and f.remaining == 1 and len(f.node.content) == 1 and not f.node.sparse:
            f.created_by_write = True
        elif not f.failed:
            try:
                fd = create(f.out)
                try:
                    os.ftruncate(fd, f.node.size)
                finally:
                    os.close(fd)
            except OSError as exc:
                f.failed = exc.strerror or str(exc)
        if f.remaining == 0:
            self._finish_file(f)  # no blob will be written to it: finish (or report) now

    def _flush(self, last: bool = False) -> None:
        """Write (and verify) the files planned so far, then forget them: in a child process while this one
        walks on (see _fork_batch), or here."""
        files, self._files = self._files, []
        self.counters.add_total(files=len(files), nbytes=sum(f.node.size for f in files))
        if not files:
            return
        # a restore of one batch is written here: a child would only add its start-up and have half the threads
        fork = self._forking and (self._forked or not last)
        while fork and self._forking and len(self._children) >= self.opts.processes:
            self._wait_child()
        if fork and self._forking:  # (still: a child that failed turns it off)
            self._forked = True
            self._fork_batch(files)
        else:
            self._write_batch(files)

    def _write_batch(self, files: list[_File]) -> None:
        self._plan_blobs(files)
        self._write_contents(files)
        if self.opts.verify:
            verify_start = time.monotonic()
            self._verify_files(files)
            self.summary.verify_s = round(self.summary.verify_s + time.monotonic() - verify_start, 3)

    # ---- child processes ------------------------------------------------------------------------------
    # Writing is mostly Python work per file and blob (decode, pwrite, metadata calls) under one interpreter lock:
    # a batch written by a forked copy of this process runs on another core, with its own lock, while this one
    # walks the snapshot (which made the batch's directories already) and hands out the next batch. A child
    # reports progress as it goes and its summary (files, errors, warnings) at the end; hardlinks and directory
    # metadata wait until every child has ended.

    def _fork_batch(self, files: list[_File]) -> None:
        child = Child(lambda send: self._child_work(files, send), add_progress(self.counters))
        # only the paths are kept, to remove the files if the child fails (not the files, for a second try: 10 MiB
        # more at the peak for something that should never happen)
        self._children.append((child, [f.out for f in files]))

    def _child_work(self, files: list[_File], send: Send) -> dict[str, object]:  # pragma: no cover - in the child
        """In the child: write the batch with this process's share of the threads; return the summary."""
        self.repo.after_fork()
        self._lock = threading.Lock()  # a parent thread may have held the old one at the fork
        self.report = ignore  # events are sent back with the summary and reported by the parent
        self.summary = RestoreSummary()
        self.counters = SentCounters(send)
        self.opts.workers = max(1, self.opts.workers // max(1, self.opts.processes))
        self._max_run = _MAX_RUN_CHILD
        self._write_batch(files)
        self.counters.send_now()
        s = self.summary
        return {
            "files": s.files,
            "bytes": s.bytes,
            "verified": s.verified,
            "verify_s": s.verify_s,
            "first_byte_s": s.first_byte_s,
            "errors": s.errors,
            "warnings": s.warnings,
        }

    def _wait_child(self) -> None:
        child, paths = self._children.pop(0)
        try:
            result = child.wait()
        except ChildFailed as exc:
            # any of its files may be half written: each is removed and reported
            self._forking = False  # the next batches are written here
            for out in paths:
                self._error(out[len(self._target) :], f"{exc}; file not restored")
                with contextlib.suppress(OSError):
                    os.unlink(out)
            return
        s = self.summary
        s.files += result["files"]
        s.bytes += result["bytes"]
        s.verified += result["verified"]
        s.verify_s = round(s.verify_s + result["verify_s"], 3)
        if result["first_byte_s"] is not None:
            s.first_byte_s = min(s.first_byte_s or result["first_byte_s"], result["first_byte_s"])
        s.errors.extend(result["errors"])
        s.warnings.extend(result["warnings"])
        report_problems(self.report, result["errors"], result["warnings"])

    def _write_contents(self, files: list[_File]) -> None:
        with ThreadPoolExecutor(self.opts.workers, thread_name_prefix="restore") as pool:
            # files are created in batches: a future per file would cost more memory than the files' plan
            batches = [files[i : i + _CREATE_BATCH] for i in range(0, len(files), _CREATE_BATCH)]
            for done in pool.map(self._create_files, batches):
                del done
            futures: list[Future[None]] = [
                pool.submit(self._restore_pack, pid, blobs) for pid, blobs in self._plan.items()
            ]
            for fut in futures:
                fut.result()
        self._plan.clear()

    def _restore_pack(self, pack_id: bytes, blobs: dict[bytes, tuple[BlobEntry, list[_Use]]]) -> None:
        items = sorted(blobs.values(), key=lambda item: item[0].offset)
        max_run = self._max_run
        run: list[tuple[BlobEntry, list[_Use]]] = []
        for item in items:
            end = item[0].offset + item[0].length
            if run and (
                item[0].offset - (run[-1][0].offset + run[-1][0].length) > _MAX_GAP or end - run[0][0].offset > max_run
            ):
                self._restore_run(pack_id, run)
                run = []
            run.append(item)
        if run:
            self._restore_run(pack_id, run)

    def _restore_run(self, pack_id: bytes, run: list[tuple[BlobEntry, list[_Use]]]) -> None:
        start = run[0][0].offset
        end = run[-1][0].offset + run[-1][0].length
        try:
            data = memoryview(self.repo.load_pack_range(pack_id, start, end - start))
        except SauvegardeError as exc:
            if len(run) > 1 and self._pack_exists(pack_id):
                # the damage may not span the whole range (a truncated pack, an unreadable sector): blob by blob
                for item in run:
                    self._restore_run(pack_id, [item])
                return
            for entry, uses in run:
                self._from_other_copy(pack_id, entry, uses, SauvegardeError(f"blob {entry.id.hex()}: {exc}"))
            return
        for entry, uses in run:
            try:
                plain = self.repo.decode_blob(entry, data[entry.offset - start : entry.offset - start + entry.length])
            except SauvegardeError as exc:
                self._from_other_copy(pack_id, entry, uses, SauvegardeError(f"{exc} (pack {pack_id.hex()})"))
                continue
            for f, offset in uses:
                self._write_blob(f, offset, plain)

    def _from_other_copy(self, pack_id: bytes, entry: BlobEntry, uses: list[_Use], error: SauvegardeError) -> None:
        """A blob whose copy in ``pack_id`` cannot be read: write it from another copy if the repository has one
        (the files come out whole, with a warning naming the damage), else the files using it fail."""
        try:
            plain = self.repo.load_other_copy(entry.id, pack_id, error)
        except SauvegardeError as exc:
            self._blob_failed(uses, str(exc))
            return
        first = uses[0][0].out[len(self._target) :]
        self._warn(first, f"{error}; restored from another copy (run `check --read-data`)")
        for f, offset in uses:
            self._write_blob(f, offset, plain)

    def _pack_exists(self, pack_id: bytes) -> bool:
        try:
            self.repo.storage.stat(layout.pack_name(pack_id))
        except ObjectNotFound:
            return False
        except SauvegardeError:
            pass  # cannot tell: try the blobs
        return True

    def _write_blob(self, f: _File, offset: int, plain: bytes) -> None:
        if self.summary.first_byte_s is None:
            with self._lock:
                if self.summary.first_byte_s is None:
                    self.summary.first_byte_s = round(time.monotonic() - self._start, 4)
        if not f.failed:
            try:
                created_with: int | None = None
                if not f.created_by_write:
                    fd = os.open(f.out, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                else:
                    mode = self._creation_mode(f.node)
                    fd, fresh = create_fresh(f.out, 0o600 if mode is None else mode)
                    created_with = mode if fresh else None
                try:
                    if f.node.sparse:
                        pwrite_sparse(fd, plain, offset)
                    else:
                        pwrite_all(fd, plain, offset)
                    if f.node.size >= _DROP_BEHIND_FROM:
                        self._drop_behind(f, fd, len(plain))
                    if f.created_by_write:
                        self._apply_metadata(f.out, f.node, fd, created_with)
                finally:
                    os.close(fd)
            except OSError as exc:
                f.failed = exc.strerror or str(exc)
        self.counters.add(nbytes=len(plain))
        self._blob_done(f)

    def _drop_behind(self, f: _File, fd: int, n: int) -> None:
        """Count ``n`` more bytes written to big file ``f``; every _DROP_BEHIND_EVERY bytes and at its end, have
        its dirty pages written out and those already on disk dropped from the cache."""
        with self._lock:
            before = f.written
            f.written = after = before + n
        if before // _DROP_BEHIND_EVERY != after // _DROP_BEHIND_EVERY or after >= f.node.size:
            drop_behind(fd)

    def _blob_failed(self, uses: list[_Use], msg: str) -> None:
        for f, _offset in uses:
            if not f.failed:
                f.failed = msg
            self._blob_done(f)

    def _blob_done(self, f: _File) -> None:
        with self._lock:
            f.remaining -= 1
            last = f.remaining == 0
        if last:
            self._finish_file(f)

    def _finish_file(self, f: _File) -> None:
        path = f.out[len(self._target) :]
        if f.failed:
            self._error(path, f"{f.failed}; file not restored")
            with contextlib.suppress(OSError):
                os.unlink(f.out)
            return
        if not f.created_by_write:  # otherwise set with its write (a file not written has failed, above)
            self._apply_metadata(f.out, f.node)
        with self._lock:
            self.summary.files += 1
            self.summary.bytes += f.node.size
        self.counters.add(files=1)

    def _make_deferred_links(self) -> None:
        for out, first in self._deferred_links:
            if not os.path.lexists(first):
                self._error(out[len(self._target) :], "hardlink target was not restored")
                continue
            try:
                remove_existing(out)
                os.link(first, out)
            except OSError as exc:
                self._error(out[len(self._target) :], f"hardlink: {exc.strerror or exc}")
                continue
            self.summary.files += 1
            self.counters.add(files=1)

    # ---- metadata -------------------------------------------------------------------------------------

    def _apply_metadata(self, out: bytes, node: Node, fd: int | None = None, created_with: int | None = None) -> None:
        """Owner (as root), xattrs, mode, then times, in that order (chown clears setuid bits; times come last).
        Through ``fd`` when the file is still open (a regular file just written), else by path, never following a
        symlink. ``created_with``: the file was just created with this mode, which is its snapshot mode, and
        with its snapshot owner (see _creation_mode): no chown, no chmod."""
        path = out[len(self._target) :]
        where: bytes | int = out if fd is None else fd
        follow = fd is not None  # a descriptor is the file itself; a path is never followed
        if self._is_root and created_with is None:
            try:
                os.chown(where, uid_for(node.user, node.uid), gid_for(node.group, node.gid), follow_symlinks=follow)
            except OSError as exc:
                self._warn(path, f"cannot set owner: {exc.strerror}")
        for name, value in node.xattrs.items():
            try:
                os.setxattr(where, name, value, follow_symlinks=follow)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM) or name.startswith(b"user."):
                    self._warn(path, f"cannot set xattr {os.fsdecode(name)}: {exc.strerror}")
        if node.type != SYMLINK and created_with is None:
            try:
                os.chmod(where, node.mode)
            except OSError as exc:
                self._warn(path, f"cannot set mode: {exc.strerror}")
        try:
            atime = node.atime_ns or node.mtime_ns
            os.utime(where, ns=(atime, node.mtime_ns), follow_symlinks=follow)
        except OSError as exc:
            self._warn(path, f"cannot set times: {exc.strerror}")

    # ---- verification ---------------------------------------------------------------------------------

    def _verify_files(self, files: list[_File]) -> None:
        todo = [f for f in files if not f.failed]
        with ThreadPoolExecutor(self.opts.workers, thread_name_prefix="verify") as pool:
            results = list(pool.map(self._verify_file, todo))
        self.summary.verified += sum(results)
        if self.opts.verify_metadata:
            self._verify_metadata([(f.out, f.node) for f, ok in zip(todo, results, strict=True) if ok])

    def _verify_others(self) -> None:
        """Symlinks, special files and directories, once everything is in place."""
        if self.opts.verify_metadata:
            self._verify_metadata(self._others + self._dirs_made)

    def _verify_metadata(self, entries: list[tuple[bytes, Node]]) -> None:
        for out, node in entries:
            differences = metadata_differences(out, node, self._is_root)
            if differences:
                self._error(out[len(self._target) :], f"verify: {'; '.join(differences)}")

    def _verify_file(self, f: _File) -> bool:
        try:
            with open(f.out, "rb") as fh:
                for blob_id in f.node.content:
                    hit = self.repo.index.lookup(blob_id)
                    if hit is None:
                        raise SauvegardeError(f"blob {blob_id.hex()} missing from index")
                    if self.repo.blob_id(fh.read(hit[1].plain_length)) != blob_id:
                        raise SauvegardeError("content differs from the snapshot")
                if fh.read(1):
                    raise SauvegardeError("file is longer than in the snapshot")
        except (OSError, SauvegardeError) as exc:
            self._error(f.out[len(self._target) :], f"verify: {exc}")
            return False
        return True

    # ---- reporting ------------------------------------------------------------------------------------

    def _error(self, path: bytes, msg: str) -> None:
        text = os.fsdecode(path)
        with self._lock:
            self.summary.errors.append({"path": text, "error": msg})
        self.report(FileError(text, msg))

    def _warn(self, path: bytes, msg: str) -> None:
        text = os.fsdecode(path)
        with self._lock:
            self.summary.warnings.append({"path": text, "warning": msg})
        self.report(FileWarning(text, msg))


def _ancestors(paths: frozenset[bytes]) -> frozenset[bytes]:
    """Every directory above the given snapshot paths (b"/a/b/c" gives b"/a" and b"/a/b")."""
    out: set[bytes] = set()
    for p in paths:
        parts = p.split(b"/")
        out.update(b"/".join(parts[:i]) for i in range(2, len(parts)))
    return frozenset(out)
