"""Files that change between the walk and the read: small files are read in batches on a fast path, and whatever
no longer looks as the walk saw it must still end up in the snapshot correctly, or be reported, never hang."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.events import Event, FileError, FileWarning
from sauvegarde.repository import Repository, Snapshot
from sauvegarde.repository.testing import memory_repository
from sauvegarde.repository.tree import DIR, Node, Tree

SMALL = 1500  # below the test chunker's min_size (2048): these files take the batched path


def _nodes(repo: Repository, snap: Snapshot, root: Path) -> dict[str, Node]:
    """Every node of the snapshot below ``root``, by path relative to it."""
    out: dict[str, Node] = {}

    def walk(tree_id: bytes, prefix: str) -> None:
        for node in Tree.decode(repo.load_blob(tree_id)).nodes:
            path = f"{prefix}/{os.fsdecode(node.name)}"
            out[path] = node
            if node.type == DIR and node.subtree is not None:
                walk(node.subtree, path)

    walk(bytes.fromhex(snap.tree), "")
    prefix = str(root)
    return {p[len(prefix) + 1 :]: n for p, n in out.items() if p.startswith(prefix + "/")}


def _content(repo: Repository, node: Node) -> bytes:
    return b"".join(repo.load_blob(c) for c in node.content or [])


def _backup_with(
    monkeypatch: pytest.MonkeyPatch, root: Path, before_read: Callable[[], None]
) -> tuple[Repository, Snapshot, list[Event]]:
    """Back up ``root``, calling ``before_read`` once after the walk has seen the files and before any is read."""
    original = Backup._save_batch
    done = []

    def patched(self: Backup, items: list) -> list:  # type: ignore[type-arg]
        if not done:
            done.append(True)
            before_read()
        return original(self, items)

    monkeypatch.setattr(Backup, "_save_batch", patched)
    repo = memory_repository()
    events: list[Event] = []
    snap = Backup(repo, BackupOptions(paths=[str(root)], hostname="box", workers=1), events.append).run()
    return repo, snap, events


def _tree(root: Path) -> dict[str, bytes]:
    files = {f"f{i}": bytes([i]) * (SMALL - i) for i in range(10)}
    files["empty"] = b""
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def test_unchanged_small_files_are_stored_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path)
    repo, snap, events = _backup_with(monkeypatch, tmp_path, lambda: None)
    nodes = _nodes(repo, snap, tmp_path)
    assert {n: _content(repo, nodes[n]) for n in files} == files
    assert events == []
    assert snap.summary["files_new"] == len(files)
    assert snap.summary["bytes_processed"] == sum(map(len, files.values()))


def test_a_file_rewritten_after_the_walk_is_stored_as_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path)

    def rewrite() -> None:
        (tmp_path / "f3").write_bytes(b"new content, other size")
        with (tmp_path / "f4").open("ab") as f:
            f.write(b"x" * 5000)  # grew past the chunker's minimum

    repo, snap, _events = _backup_with(monkeypatch, tmp_path, rewrite)
    nodes = _nodes(repo, snap, tmp_path)
    assert _content(repo, nodes["f3"]) == b"new content, other size"
    assert nodes["f3"].size == len(b"new content, other size")
    st = os.stat(tmp_path / "f3")
    assert (nodes["f3"].mtime_ns, nodes["f3"].ctime_ns) == (st.st_mtime_ns, st.st_ctime_ns)
    assert _content(repo, nodes["f4"]) == files["f4"] + b"x" * 5000
    assert nodes["f4"].size == len(files["f4"]) + 5000
    assert _content(repo, nodes["f5"]) == files["f5"]


def test_a_file_replaced_by_a_fifo_is_skipped_without_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)

    def replace() -> None:
        os.unlink(tmp_path / "f2")
        os.mkfifo(tmp_path / "f2")  # opening it for reading without O_NONBLOCK would wait for a writer forever

    repo, snap, events = _backup_with(monkeypatch, tmp_path, replace)
    assert "f2" not in _nodes(repo, snap, tmp_path)
    warnings = [e for e in events if isinstance(e, FileWarning)]
    assert [os.path.basename(w.path) for w in warnings] == ["f2"]
    assert "replaced" in warnings[0].message


def test_a_file_deleted_after_the_walk_is_reported_as_vanished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tree(tmp_path)
    repo, snap, events = _backup_with(monkeypatch, tmp_path, lambda: os.unlink(tmp_path / "f7"))
    nodes = _nodes(repo, snap, tmp_path)
    assert "f7" not in nodes
    assert _content(repo, nodes["f8"]) == files["f8"]
    warnings = [e for e in events if isinstance(e, FileWarning)]
    assert [(os.path.basename(w.path), w.message) for w in warnings] == [("f7", "vanished before it could be read")]
    assert snap.summary["files_new"] == len(files) - 1


def test_a_file_made_unreadable_after_the_walk_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    _tree(tmp_path)
    repo, snap, events = _backup_with(monkeypatch, tmp_path, lambda: os.chmod(tmp_path / "f1", 0))
    assert "f1" not in _nodes(repo, snap, tmp_path)
    assert [os.path.basename(e.path) for e in events if isinstance(e, FileError)] == ["f1"]
