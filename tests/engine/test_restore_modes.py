"""restore creates a one-blob file with its final mode when that is exact, and skips chown and chmod then: modes,
owners and groups still come back exactly, into fresh or existing targets, under a set-group-ID directory, with
any umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sauvegarde.engine.restore import Restore, RestoreOptions

from .repo_helpers import backup, memory_repository, reopen

IS_ROOT = os.geteuid() == 0
MODES = [0o644, 0o600, 0o755, 0o664, 0o640, 0o444, 0o4755, 0o2750, 0o1777, 0o000]
OTHER = (4321, 8765)  # an owner and group no file here has


def make_tree(src: Path) -> dict[str, tuple[int, int, int]]:
    """Files of every mode, some owned by someone else (as root); name -> (mode, uid, gid)."""
    src.mkdir()
    want = {}
    for i, mode in enumerate(MODES):
        for owned in (False, True) if IS_ROOT else (False,):
            p = src / f"m{mode:o}-{int(owned)}"
            p.write_bytes(b"x" * (i + 1))
            if owned:
                os.chown(p, *OTHER)
            os.chmod(p, mode)  # after chown, which clears set-ID bits
            st = p.stat()
            want[p.name] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return want


def restored(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in root.iterdir():
        st = p.lstat()
        out[p.name] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def run_restore(repo, snap, target: Path) -> None:  # type: ignore[no-untyped-def]
    summary = Restore(reopen(repo), snap, RestoreOptions(target=str(target), workers=2)).run()
    assert summary.errors == [] and summary.warnings == []


def backed_up(tmp_path: Path):  # type: ignore[no-untyped-def]
    """make_tree under tmp_path/src, backed up: (wanted metadata, repository, snapshot)."""
    want = make_tree(tmp_path / "src")
    repo = memory_repository()
    return want, repo, backup(repo, tmp_path / "src")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_modes_and_owners_into_a_fresh_target(tmp_path: Path, umask: int) -> None:
    want, repo, snap = backed_up(tmp_path)
    old = os.umask(umask)
    try:
        run_restore(repo, snap, tmp_path / "t")
    finally:
        os.umask(old)
    assert restored(tmp_path / "t" / str(tmp_path / "src").lstrip("/")) == want


def test_existing_files_get_their_snapshot_mode_and_owner(tmp_path: Path) -> None:
    want, repo, snap = backed_up(tmp_path)
    where = tmp_path / "t" / str(tmp_path / "src").lstrip("/")
    where.mkdir(parents=True)
    for name in want:  # in the way: other content, mode and owner; the open keeps those, so all must be set
        p = where / name
        p.write_bytes(b"old content, longer than the new")
        os.chmod(p, 0o4711 if IS_ROOT else 0o711)
        if IS_ROOT:
            os.chown(p, 1111, 2222)
    run_restore(repo, snap, tmp_path / "t")
    assert restored(where) == want
    assert (where / "m644-0").read_bytes() == b"x"


@pytest.mark.skipif(not IS_ROOT, reason="needs a group to set on the target and chown to undo it")
def test_set_group_id_target_does_not_leak_its_group(tmp_path: Path) -> None:
    want, repo, snap = backed_up(tmp_path)
    target = tmp_path / "t"
    target.mkdir()
    os.chown(target, 0, 3333)
    os.chmod(target, 0o2775)  # new entries below inherit group 3333 and set-group-ID directories
    run_restore(repo, snap, target)
    assert restored(target / str(tmp_path / "src").lstrip("/")) == want


@pytest.mark.skipif(shutil.which("setfacl") is None, reason="needs setfacl (Debian: acl)")
def test_default_acl_on_the_target_does_not_change_modes(tmp_path: Path) -> None:
    want, repo, snap = backed_up(tmp_path)
    target = tmp_path / "t"
    target.mkdir()
    # new files below would get group and other permissions from this, whatever mode they are created with
    subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::---,o::---", str(target)], check=True)
    run_restore(repo, snap, target)
    assert restored(target / str(tmp_path / "src").lstrip("/")) == want


def test_symlinks_and_fifos_replace_what_is_in_their_way(tmp_path: Path) -> None:
    """Special files are created first and what is in the way removed only when creating fails."""
    src = tmp_path / "src"
    src.mkdir()
    os.symlink("target-a", src / "link")
    os.mkfifo(src / "fifo")
    repo = memory_repository()
    snap = backup(repo, src)
    target = tmp_path / "t"
    out = target / str(src).lstrip("/")
    (out / "link" / "deep").mkdir(parents=True)  # a directory with content where the symlink goes
    (out / "link" / "deep" / "f").write_bytes(b"x")
    (out / "fifo").write_bytes(b"a file where the FIFO goes")
    run_restore(repo, snap, target)
    assert os.readlink(out / "link") == "target-a"
    assert stat.S_ISFIFO(os.lstat(out / "fifo").st_mode)
    run_restore(repo, snap, target)  # and over themselves
    assert os.readlink(out / "link") == "target-a"
