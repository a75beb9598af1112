"""Files in a format compressed already (gzip, PNG, ...) are stored raw without a compression attempt: all their
chunks, in each of the three ways a backup reads a file (whole and small, whole and cut, streamed), and they are
restored exactly; other files are still compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

from sauvegarde.engine.walk import TreeLoader, walk
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.repository.testing import SMALL_CHUNKS

from .repo_helpers import backup, memory_repository, reopen


def _text(tag: str) -> bytes:
    """~190 kB that zstd compresses well, different for each file (no chunk shared with another file)."""
    return b"".join(b"line %d of %s, a very compressible text\n" % (i, tag.encode()) for i in range(4000))


def _files(root: Path) -> dict[str, bytes]:
    # a real gzip header, then text zstd would compress well: the start of the file decides
    head = gzip.compress(b"")[:10]
    small, cut = SMALL_CHUNKS.min_size // 2, SMALL_CHUNKS.max_size - 100
    files = {
        "small.gz": head + _text("a")[:small],  # under the smallest chunk: one blob, batched
        "cut.gz": head + _text("b")[:cut],  # read whole, cut in memory
        "streamed.gz": head + _text("c"),  # larger than the largest chunk: streamed
        "streamed.png": b"\x89PNG\r\n\x1a\n" + _text("d"),
        "streamed.txt": _text("e"),
        "cut.txt": _text("f")[:cut],
        "small.txt": _text("g")[:small],
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def _raw_lengths(repo: Repository, snap: Snapshot) -> dict[str, list[int]]:
    """Each file's chunks as the index has them: their raw length (0: stored without compression)."""
    out: dict[str, list[int]] = {}
    for path, node in walk(TreeLoader(repo), bytes.fromhex(snap.tree)):
        if node.content:
            hits = [repo.index.lookup(blob_id) for blob_id in node.content]
            out[path.rsplit(b"/", 1)[1].decode()] = [hit[1].raw_length for hit in hits if hit is not None]
    return out


def test_compressed_formats_are_stored_raw_in_every_chunk(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = _files(src)
    repo = memory_repository()
    snap = backup(repo, src)
    fresh = reopen(repo)
    stored = _raw_lengths(fresh, snap)
    assert set(stored) == set(files)
    for name, lengths in stored.items():
        chunks = len(lengths)
        assert chunks >= (3 if name.startswith("streamed") else 2 if name.startswith("cut") else 1), name
        if name.endswith(".txt"):
            assert all(n > 0 for n in lengths), (name, lengths)  # compressed
        else:
            assert lengths == [0] * chunks, name  # raw, the later chunks (no magic of their own) too
    for path, node in walk(TreeLoader(fresh), bytes.fromhex(snap.tree)):
        name = path.rsplit(b"/", 1)[1].decode()
        if name in files:
            assert b"".join(fresh.load_blob(b) for b in node.content) == files[name]
