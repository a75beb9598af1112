"""The guard inside real backups (memory repository, real files): attacks are caught, ordinary work is not."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from guard_trees import benign_changes, encrypt_files, encrypt_intermittent, make_tree
from sauvegarde.engine.backup import Backup, BackupOptions
from sauvegarde.engine.parent import ParentTrees
from sauvegarde.guard.guard import Guard
from sauvegarde.repository import Repository
from sauvegarde.repository.testing import memory_repository


class Share:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = make_tree(root)
        self.repo: Repository = memory_repository()

    def backup(self, canaries: tuple[str, ...] = ()) -> dict[str, Any]:
        snap = Backup(self.repo, BackupOptions(paths=[str(self.root)], observer=Guard("enforce", canaries))).run()
        guard = snap.extra["guard"]
        assert isinstance(guard, dict)
        return guard


@pytest.fixture
def share(tmp_path: Path) -> Share:
    root = tmp_path / "share"
    root.mkdir()
    s = Share(root)
    assert s.backup()["verdict"] == "clean"
    return s


def _paths(g: dict[str, Any]) -> set[str]:
    return {f["path"] for f in g["files"]}


def test_benign_changes_stay_clean(share: Share) -> None:
    benign_changes(share.root)
    g = share.backup()
    assert g["verdict"] == "clean", g
    assert g["stats"]["files_checked"] > 10


def test_encryption_with_renames_and_note_is_an_attack(share: Share) -> None:
    victims = [f for f in share.files if f.parent.name in ("docs", "finance")][:12]
    encrypted = encrypt_files(victims)
    g = share.backup()
    assert g["verdict"] == "attack"
    assert {str(p) for p in encrypted[:5]} <= _paths(g)
    assert g["rules"]["ransom-note"] == 1 and g["rules"]["ransom-extension"] == 12
    assert "mass-rename" in g["rules"]
    assert any(f["path"].endswith("HOW_TO_DECRYPT_FILES.txt") for f in g["files"])
    assert len(g["files"]) <= 25 and "guard: ATTACK" in g["summary"]


def test_in_place_encryption_without_note(share: Share) -> None:
    victims = [share.files[i] for i in (0, 1, 24, 25, 40)]  # text, docx, csv, pdf, png
    encrypt_files(victims, rename=None, note=False)
    g = share.backup()
    assert g["verdict"] == "attack"
    assert {str(v) for v in victims} <= _paths(g)


def test_one_encrypted_file_is_suspicious(share: Share) -> None:
    encrypt_files([share.files[0]], rename=None, note=False)
    g = share.backup()
    assert g["verdict"] == "suspicious"
    assert _paths(g) == {str(share.files[0])}


def test_intermittent_encryption(share: Share) -> None:
    victims = [f for f in share.files if f.stat().st_size > 140_000 or f.suffix in (".txt", ".csv")]
    victims = [f for f in victims if f.stat().st_size > 70_000]
    encrypt_intermittent(victims)
    g = share.backup()
    assert g["verdict"] == "attack", g
    assert "intermittent" in g["rules"]


def test_canary_change_and_deletion(share: Share, tmp_path: Path) -> None:
    canary = share.root / "docs" / "note3.txt"
    assert share.backup((str(canary),))["verdict"] == "clean"
    canary.write_bytes(canary.read_bytes().replace(b"e", b"E", 1))
    g = share.backup((str(canary),))
    assert g["verdict"] == "attack" and g["rules"] == {"canary-changed": 1}
    canary.unlink()
    g = share.backup((str(canary),))
    assert g["verdict"] == "attack" and "canary-deleted" in g["rules"]


def test_untouched_canary_and_unchanged_files_cost_nothing(share: Share) -> None:
    canary = share.root / "docs" / "note3.txt"
    g = share.backup((str(canary),))
    assert g["verdict"] == "clean" and g["stats"]["files_checked"] == 0


def test_kind_is_stored_on_nodes(share: Share) -> None:
    snap = share.repo.snapshots()[-1]
    trees = ParentTrees(share.repo)
    root = trees.listing(bytes.fromhex(snap.tree))
    node: Any = root
    for part in str(share.root).strip("/").split("/"):
        node = trees.subtree(node[part.encode()]) if isinstance(node, dict) and part.encode() in node else node
    docs = trees.subtree(node[b"docs"])
    assert docs[b"note0.txt"]["k"] == "text"
    assert docs[b"letter0.docx"]["k"] == "zip"


def test_guard_off_leaves_no_trace(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.txt").write_text("hello\n")
    repo = memory_repository()
    snap = Backup(repo, BackupOptions(paths=[str(root)])).run()
    assert "guard" not in snap.extra
    assert os.path.exists(root / "a.txt")


def test_random_extension_and_notes_without_a_note_name(share: Share) -> None:
    """LockBit 3 style: one random 9-letter extension per victim and '<ext>.README.txt' notes in every folder.
    Neither the extension nor the note's name is in any list: the renamed files are judged as what they were, and
    the note by being the same new text with ransom wording in several folders."""
    ext = ".HLJkNskOq"
    victims = [f for f in share.files if f.parent.name in ("docs", "finance", "alpha")]
    encrypt_files(victims, rename=ext, note=False)
    note = "Your data is stolen and encrypted. Download Tor Browser, pay in Bitcoin for the decryption key.\n"
    folders = {f.parent for f in victims}
    for d in folders:
        (d / f"{ext[1:]}.README.txt").write_text(note)
    g = share.backup()
    assert g["verdict"] == "attack"
    assert g["rules"]["ransom-note"] == len(folders) == 3
    assert "ransom-extension" not in g["rules"] and "mass-rename" in g["rules"]
    flagged = {f["path"] for f in g["files"] if f["rules"] != ["ransom-note"]}
    assert len(flagged) >= 20 and g["stats"]["files_flagged"] >= len(victims) - 2
    renamed = [f for f in g["files"] if f["path"].endswith(ext)]
    assert renamed and all(f["detail"].startswith("renamed from ") for f in renamed)
    assert {f["previous"] for f in renamed} >= {"text"}


def test_ordinary_renames_and_repeated_files_stay_clean(share: Share) -> None:
    """Backup copies (.bak), files gzipped in place, two files encrypted on purpose with gpg, and the same new
    README (without ransom wording) in every folder."""
    docs = share.root / "docs"
    for f in sorted(docs.glob("letter*.docx"))[:6]:
        f.rename(f.with_name(f.name + ".bak"))
    for f in sorted(docs.glob("note*.txt"))[:3]:
        f.with_name(f.name + ".gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    for f in sorted((share.root / "finance").glob("statement*.pdf"))[:2]:
        f.with_name(f.name + ".gpg").write_bytes(os.urandom(f.stat().st_size))
        f.unlink()
    for d in {f.parent for f in share.files}:
        (d / "README.txt").write_text("This folder is synchronised with the team share; do not rename it.\n")
    g = share.backup()
    assert g["verdict"] == "clean", g
    assert g["stats"]["files_flagged"] == 0
