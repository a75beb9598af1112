"""Metadata verification of restored entries, and the sample chooser, as small pure-ish checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sauvegarde.drill.sample import MIN_FILES, choose_sample, parse_sample
from sauvegarde.engine.verify import metadata_differences
from sauvegarde.repository import Node
from sauvegarde.repository.tree import DIR, FILE, SYMLINK


def _file(tmp_path: Path) -> tuple[bytes, Node]:
    p = tmp_path / "f"
    p.write_bytes(b"12345")
    os.chmod(p, 0o640)
    os.utime(p, ns=(1_000_000_000_000_000_001, 1_000_000_000_000_000_001))
    return os.fsencode(p), Node(b"f", FILE, mode=0o640, size=5, mtime_ns=1_000_000_000_000_000_001)


def test_matching_file_has_no_differences(tmp_path: Path) -> None:
    out, node = _file(tmp_path)
    assert metadata_differences(out, node) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"mode": 0o600}, "mode 640 instead of 600"),
        ({"size": 6}, "size 5 instead of 6"),
        ({"mtime_ns": 5}, "mtime"),
        ({"type": DIR}, "type differs"),
    ],
)
def test_each_difference_is_named(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    out, node = _file(tmp_path)
    for k, v in change.items():
        setattr(node, k, v)
    assert any(expected in d for d in metadata_differences(out, node))


def test_symlink_target_and_xattrs(tmp_path: Path) -> None:
    link = tmp_path / "l"
    os.symlink("there", link)
    node = Node(b"l", SYMLINK, target=b"elsewhere")
    assert any("symlink target" in d for d in metadata_differences(os.fsencode(link), node))
    out, fnode = _file(tmp_path)
    try:
        os.setxattr(out, b"user.x", b"1")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    assert metadata_differences(out, fnode) == ["xattrs differ: user.x"]
    fnode.xattrs = {b"user.x": b"1"}
    assert metadata_differences(out, fnode) == []
    assert metadata_differences(os.fsencode(tmp_path / "gone"), fnode)[0].startswith("missing")


def test_sample_by_bytes_with_a_minimum_of_files() -> None:
    entries = [(b"/d/big", Node(b"big", FILE, size=1000))] + [
        (f"/d/s{i}".encode(), Node(f"s{i}".encode(), FILE, size=10)) for i in range(10)
    ]
    s = choose_sample(entries, 0.05, seed=1)  # 5% of 1100 bytes: only small files fit
    assert b"/d/big" not in s.paths and s.files >= MIN_FILES and s.nbytes <= 55
    tiny = choose_sample(entries, 0.001, seed=1)  # nothing fits: the smallest files make the minimum
    assert tiny.files == MIN_FILES and tiny.nbytes == 30
    assert choose_sample(entries, 1.0, seed=1).files == 11
    assert choose_sample(entries, 0.05, seed=2).total_bytes == 1100


def test_parse_sample() -> None:
    assert parse_sample("10%") == 0.1 and parse_sample(" 100 % ") == 1.0 and parse_sample("0.5%") == 0.005
    for bad in ("0%", "101%", "10", "ten%"):
        with pytest.raises(ValueError):
            parse_sample(bad)


def test_plan_rejects_a_bad_drill_sample() -> None:
    from pydantic import ValidationError

    from sauvegarde.plan.model import Drill

    assert Drill(asset="a", repository="r", schedule="daily 02:00", sample="5%").sample == "5%"
    with pytest.raises(ValidationError, match="expected a share such as 10%"):
        Drill(asset="a", repository="r", schedule="daily 02:00", sample="150%")
