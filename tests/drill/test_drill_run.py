"""Drills against real repositories on disk: sample and full pass, damage fails naming files, measurements,
the scratch directory always removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from drill_helpers import NOW, DrillEnv

from sauvegarde.drill.plan import DrillTarget, run_drill
from sauvegarde.drill.run import latest_snapshot
from sauvegarde.engine.walk import TreeLoader, resolve
from sauvegarde.plan.access import opened
from sauvegarde.plan.observe import asset_tag
from sauvegarde.repository import layout


def _scratch_left(env: DrillEnv) -> list[str]:
    root = env.tmp / "cache" / "sauvegarde" / "drills"
    return os.listdir(root) if root.exists() else []


def test_full_drill_from_the_offsite_copy_passes(drill_env: DrillEnv) -> None:
    r = run_drill(drill_env.plan, DrillTarget("data", "offsite", 1.0), NOW, seed=1)
    assert r.passed, r.reasons
    assert r.errors == [] and r.files == r.asset_files == 13 and r.bytes == r.asset_bytes > 0
    assert r.ttfb_s is not None and 0 < r.ttfb_s < r.seconds
    assert r.throughput is not None and r.throughput > 0
    assert r.estimated_full_s is not None and r.estimated_full_s < 4 * 3600 == r.rto_s
    assert _scratch_left(drill_env) == []


def test_sample_drill_restores_part_of_the_bytes_and_passes(drill_env: DrillEnv) -> None:
    r = run_drill(drill_env.plan, DrillTarget("data", "local", 0.1), NOW, seed=42)
    assert r.passed, r.reasons
    assert 3 <= r.files < r.asset_files
    assert r.bytes <= 0.1 * r.asset_bytes or r.files == 3
    again = run_drill(drill_env.plan, DrillTarget("data", "local", 0.1), NOW, seed=42)
    assert (again.files, again.bytes) == (r.files, r.bytes)  # seeded
    assert r.estimated_full_s is not None and r.estimated_full_s > 0
    assert _scratch_left(drill_env) == []


def _damage_a_file_blob(env: DrillEnv, repo: str, name: str) -> None:
    with opened(env.plan, repo, lock=None) as r:
        snap = latest_snapshot(r, asset_tag("data"))
        node, _ = resolve(TreeLoader(r), bytes.fromhex(snap.tree), str(env.data / name))
        assert node is not None and node.content
        pack_id, entry = r.index.lookup(node.content[0])  # type: ignore[misc]
        pack = env.tmp / f"repo-{repo}" / layout.pack_name(pack_id)
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(entry.offset + entry.length // 2)
        byte = f.read(1)
        f.seek(entry.offset + entry.length // 2)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_pack_fails_the_drill_naming_the_file(drill_env: DrillEnv) -> None:
    _damage_a_file_blob(drill_env, "offsite", "f00.bin")
    r = run_drill(drill_env.plan, DrillTarget("data", "offsite", 1.0), NOW, seed=1)
    assert not r.passed
    assert any(e["path"].endswith("/data/f00.bin") for e in r.errors)
    assert any("f00.bin" in reason for reason in r.reasons)
    assert r.record().errors == len(r.errors) > 0
    ok = run_drill(drill_env.plan, DrillTarget("data", "local", 1.0), NOW, seed=1)  # the other copy is intact
    assert ok.passed, ok.reasons
    assert _scratch_left(drill_env) == []


def test_missing_snapshot_is_a_failed_drill(drill_env: DrillEnv, tmp_path: Path) -> None:
    for snap in (tmp_path / "repo-offsite" / "snapshots").iterdir():
        os.chmod(snap, 0o644)
        snap.unlink()
    r = run_drill(drill_env.plan, DrillTarget("data", "offsite", 1.0), NOW, seed=1)
    assert not r.passed and r.errors and "offsite" in r.reasons[0]


def test_estimate_over_the_rto_fails(drill_env: DrillEnv) -> None:
    plan = drill_env.reload(rto="0s")
    r = run_drill(plan, DrillTarget("data", "local", 0.2), NOW, seed=3)
    assert not r.passed and r.errors == []
    assert any("exceeds the RTO" in reason for reason in r.reasons)


def test_scratch_directory_removed_when_the_restore_crashes(
    drill_env: DrillEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sauvegarde.engine import restore as restore_module

    real_run = restore_module.Restore.run

    def crash(self: restore_module.Restore) -> object:
        real_run(self)
        os.chmod(self.opts.target, 0o500)  # a read-only directory left behind, too
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(restore_module.Restore, "run", crash)
    r = run_drill(drill_env.plan, DrillTarget("data", "local", 1.0), NOW, seed=1)
    assert not r.passed and "No space left" in r.reasons[0]
    assert _scratch_left(drill_env) == []


def test_estimate_scales_what_follows_the_first_byte() -> None:
    """The walk before the first byte is paid once; only the rest of a sample's restore scales with the bytes."""
    from datetime import UTC, datetime

    from sauvegarde.drill.run import DrillResult, _measure
    from sauvegarde.engine.restore import RestoreSummary

    result = DrillResult("a", "r", datetime(2025, 1, 1, tzinfo=UTC), "s", "t", 0.1, 1, asset_bytes=10_000_000)
    summary = RestoreSummary(files=10, bytes=1_000_000, duration_s=10.0, first_byte_s=6.0)
    _measure(result, summary, setup_s=1.0)
    assert (result.restore_s, result.throughput, result.ttfb_s) == (10.0, 100_000.0, 7.0)
    assert result.estimated_full_s == 1.0 + 6.0 + 4.0 * 10  # not 1 + 10 * 10
    full = DrillResult("a", "r", datetime(2025, 1, 1, tzinfo=UTC), "s", "t", 1.0, 1, asset_bytes=1_000_000)
    _measure(full, summary, setup_s=1.0)
    assert full.estimated_full_s == 1.0 + 10.0  # a full drill estimates what it took
