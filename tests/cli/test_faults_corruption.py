"""Corruption injection (issue 3, point 8): damaged objects are detected by ``check`` and contained by ``restore``.

Each kind of damage (a flipped byte, a truncation, a deletion) is applied to each kind of object (a data pack, a tree
pack, an index object, a snapshot object) of a copy of a small repository holding two snapshots. ``check --read-data``
must exit 1 and name the damaged object in its ``--json`` problems; ``check`` alone must already catch packs that
are missing or truncated, and name them on stderr. Where the damage is random (the byte flipped, the length kept),
it is drawn from a seed shown in the failure.

Two cases cannot name the object, by design, and are held to what is possible instead: a deleted index object leaves
no trace of its ID, so ``check`` must name the packs it listed (now indexed nowhere) and fail on the snapshot data
they hold; and a deleted snapshot object is indistinguishable from a forgotten one (nothing refers to snapshots), so
``check`` passes and only reports the data it used as unreferenced.

``restore`` of the snapshot whose data pack is damaged restores every file that does not use the damage exactly,
names every one that does on stderr, leaves none of them behind, and exits 1.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_harness import CHEAP_KDF, PASSWORD, Cli, private_env
from cli_trees import Entry, restored, scan
from fault_helpers import MiB, assert_restores, base_seed, build, check_read_data, make_spec, snapshot_ids

from sauvegarde.repository import Repository, Tree
from sauvegarde.repository.blobs import BlobEntry, BlobType
from sauvegarde.repository.layout import id_from_name
from sauvegarde.repository.tree import DIR, FILE
from sauvegarde.storage import open_storage

DAMAGES = ("flip", "truncate", "delete")
TARGETS = ("data_pack", "tree_pack", "index", "snapshot")


@dataclass
class Base:
    cli: Cli
    repo: Path
    source: Path
    state: Path  # the tree of the newest snapshot
    first: str  # snapshot of the first part of the tree only
    latest: str
    objects: dict[str, Path]  # target kind -> object of the newest backup, relative to the repository


def _open(repo: Path, load_index: bool) -> Repository:
    return Repository.open(open_storage(str(repo)), PASSWORD.encode(), load_index=load_index)


def _index_packs(repo: Path, rel: Path) -> list[bytes]:
    r = _open(repo, load_index=False)
    try:
        return list(r.load_index_file(id_from_name(rel.name)).packs)
    finally:
        r.close()


def _pack_blobs(repo: Path, rel: Path) -> list[BlobEntry]:
    r = _open(repo, load_index=False)
    try:
        return r.read_pack_header(id_from_name(rel.name))
    finally:
        r.close()


def _files_using(repo: Path, snapshot: str, blobs: set[bytes], source: Path) -> set[bytes]:
    """Paths (relative to ``source``, as bytes) of the snapshot's files whose content uses any of ``blobs``."""
    r = _open(repo, load_index=True)
    try:
        hit: set[bytes] = set()
        stack = [(b"/", bytes.fromhex(r.load_snapshot(snapshot).tree))]
        while stack:
            where, tree_id = stack.pop()
            for node in Tree.decode(r.load_blob(tree_id)).nodes:
                path = where + node.name
                if node.type == DIR and node.subtree is not None:
                    stack.append((path + b"/", node.subtree))
                elif node.type == FILE and blobs.intersection(node.content):
                    hit.add(path)
    finally:
        r.close()
    root = bytes(source) + b"/"
    assert all(p.startswith(root) for p in hit), hit
    return {p[len(root) :] for p in hit}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """Two snapshots: one of part ``a`` of a tree (~2 MB), then one of ``a`` and ``b`` (~3 MB more, new packs)."""
    root = tmp_path_factory.mktemp("corruption-base")
    (root / "env").mkdir()
    cli = Cli(private_env(root / "env", root / "repo"), root)
    repo, source, state = root / "repo", root / "source", root / "state"
    part_a = make_spec(31, 30, 2 * MiB)
    both = {**{f"a/{k}": v for k, v in part_a.items()}, **{f"b/{k}": v for k, v in make_spec(32, 40, 3 * MiB).items()}}
    cli.run("init", *CHEAP_KDF)
    build(source, {f"a/{k}": v for k, v in part_a.items()})
    cli.run("backup", source)
    before = {p.relative_to(repo) for p in repo.rglob("*") if p.is_file()}
    build(source, both)
    build(state, both)
    cli.run("backup", source)
    new = {p.relative_to(repo) for p in repo.rglob("*") if p.is_file()} - before
    # The backup's worker processes each write packs and an index object of their own: the index damaged is one
    # that lists both a new data pack and a new tree pack, and those are the packs damaged (a deleted index must
    # name them); the tests work out what each held.
    objects: dict[str, Path] = {}
    packs = {rel.name: rel for rel in new if rel.parts[0] == "data"}
    for rel in sorted(new):
        if rel.parts[0] == "snapshots":
            objects["snapshot"] = rel
        if rel.parts[0] != "index" or "index" in objects:
            continue
        kinds: dict[str, Path] = {}
        for pack_id in sorted(_index_packs(repo, rel)):
            if pack_id.hex() in packs:
                types = {e.type for e in _pack_blobs(repo, packs[pack_id.hex()])}
                assert len(types) == 1, (pack_id.hex(), types)
                kinds.setdefault("tree_pack" if types == {BlobType.TREE} else "data_pack", packs[pack_id.hex()])
        if len(kinds) == 2:
            objects.update(kinds, index=rel)
    assert set(objects) == set(TARGETS), sorted(map(str, new))
    first, latest = snapshot_ids(cli, repo)
    return Base(cli, repo, source, state, first, latest, objects)


def _damage(path: Path, damage: str, rng: random.Random) -> str:
    """Damage the file; returns what was done."""
    size = path.stat().st_size
    if damage == "delete":
        path.unlink()
        return "deleted"
    path.chmod(0o600)
    if damage == "flip":
        offset = rng.randrange(size)
        bit = 1 << rng.randrange(8)
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([b ^ bit]))
        return f"bit {bit:#04x} of byte {offset}/{size} flipped"
    keep = rng.randrange(size)
    with open(path, "r+b") as f:
        f.truncate(keep)
    return f"truncated to {keep}/{size} bytes"


def _damaged_copy(base: Base, tmp_path: Path, target: str, damage: str, seed: int) -> tuple[Path, str, str]:
    """A copy of the base repository with one object damaged: (repository, object ID, description)."""
    repo = tmp_path / "repo"
    shutil.copytree(base.repo, repo)
    rel = base.objects[target]
    what = _damage(repo / rel, damage, random.Random(seed))
    return repo, rel.name, f"seed {seed}: {target} {rel}: {what}"


def _seed(target: str, damage: str) -> int:
    return base_seed() + 300_000 + 10 * TARGETS.index(target) + DAMAGES.index(damage)


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("target", TARGETS)
def test_check_read_data_names_the_damaged_object(base: Base, tmp_path: Path, target: str, damage: str) -> None:
    seed = _seed(target, damage)
    repo, object_id, what = _damaged_copy(base, tmp_path, target, damage, seed)
    env = {"SAUVEGARDE_REPOSITORY": str(repo)}
    if (target, damage) == ("snapshot", "delete"):
        # nothing refers to snapshots: a deleted one looks forgotten, and its data merely unreferenced
        report = check_read_data(base.cli, repo)
        assert report["snapshots"] == 1 and report["unused_blobs"], f"{what}: {report}"
        return
    report = base.cli.json("check", "--read-data", env=env, check_exit=1)
    assert not report["ok"] and report["errors"], f"{what}: {report}"
    named = {str(p["object"]) for p in report["problems"]}
    if (target, damage) == ("index", "delete"):
        # the ID of a deleted index is gone with it: the packs it listed must be named, and the data they hold lost
        listed = {rel.name for kind, rel in base.objects.items() if kind.endswith("pack")}
        assert all(any(pack in o for o in named) for pack in listed), f"{what}: packs {listed} not in {named}"
        assert any(p["severity"] == "error" for p in report["problems"]), f"{what}: {report}"
        return
    assert any(object_id in o for o in named), f"{what}: {object_id} not named in --json problems: {named}"


@pytest.mark.parametrize("damage", ("truncate", "delete"))
@pytest.mark.parametrize("target", ("data_pack", "tree_pack"))
def test_check_without_read_data_finds_missing_and_truncated_packs(
    base: Base, tmp_path: Path, target: str, damage: str
) -> None:
    seed = _seed(target, damage)
    repo, pack_id, what = _damaged_copy(base, tmp_path, target, damage, seed)
    res = base.cli.run("check", env={"SAUVEGARDE_REPOSITORY": str(repo)}, check_exit=1)
    stderr = res.stderr.decode(errors="replace")
    assert pack_id in stderr, f"{what}: {pack_id} not named on stderr:\n{stderr}"


def _blobs_hit(repo: Path, rel: Path, damage: str, rng: random.Random) -> tuple[set[bytes], str]:
    """Damage the data pack so that some of its blobs (returned) are lost and the rest (if any) stay readable."""
    entries = _pack_blobs(repo, rel)
    path = repo / rel
    if damage == "delete":
        path.unlink()
        return {e.id for e in entries}, "deleted"
    path.chmod(0o600)
    if damage == "flip":
        victim = rng.choice(entries)
        offset = victim.offset + rng.randrange(victim.length)
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([b ^ 0x01]))
        return {victim.id}, f"byte {offset} flipped (in blob {victim.id.hex()})"
    ends = sorted({e.offset + e.length for e in entries})
    keep = rng.randrange(ends[0], ends[-1])  # cuts into one blob at least, keeps the first
    with open(path, "r+b") as f:
        f.truncate(keep)
    return {e.id for e in entries if e.offset + e.length > keep}, f"truncated to {keep} bytes"


@pytest.mark.parametrize("damage", DAMAGES)
def test_restore_of_a_damaged_snapshot_restores_the_rest_and_names_the_lost(
    base: Base, tmp_path: Path, damage: str
) -> None:
    seed = _seed("data_pack", damage) + 100
    repo = tmp_path / "repo"
    shutil.copytree(base.repo, repo)
    rel = base.objects["data_pack"]
    lost_blobs, what = _blobs_hit(repo, rel, damage, random.Random(seed))
    what = f"seed {seed}: data pack {rel.name}: {what}"
    lost = _files_using(repo, base.latest, lost_blobs, base.source)
    assert lost, what
    env = {"SAUVEGARDE_REPOSITORY": str(repo)}

    target = tmp_path / "target"
    res = base.cli.run("restore", base.latest, "--target", target, env=env, check_exit=1)
    stderr = res.stderr.decode(errors="replace")
    for path in lost:
        assert path.decode() in stderr, f"{what}: {path!r} not named on stderr:\n{stderr}"
    assert "error(s) during restore" in stderr.splitlines()[-1], f"{what}: no summary line:\n{stderr}"

    expected, got = scan(base.state).entries, scan(restored(target, base.source)).entries
    for path in lost:
        assert path not in got, f"{what}: {path!r} was left behind, its content cannot be right"
    unaffected: dict[bytes, Entry] = {p: e for p, e in expected.items() if p not in lost}
    wrong = sorted(p for p in unaffected if got.get(p) != unaffected[p])
    assert not wrong, f"{what}: not restored exactly although not damaged: {wrong}"
    assert set(got) == set(unaffected), f"{what}: extra entries {set(got) - set(unaffected)}"
    # the snapshot that does not use the damaged pack is not affected at all
    assert_restores(base.cli, repo, base.first, base.state / "a", base.source / "a", tmp_path, what)
