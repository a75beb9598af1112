"""kill -9 at random moments during backup, prune and copy (issue 3, point 8).

After every kill: ``check --read-data`` passes, every snapshot that existed before restores exactly, and running the
interrupted command again succeeds with no ``unlock`` (the dead process's lock is stale because its pid is gone,
which prune's exclusive lock puts to the test). Then ``check`` passes again: with ``--read-data`` after prune (whose
rerun must also leave no unused data), and after backup and copy followed by a restore of the snapshot the rerun
saved or copied, which reads all of its data.

Each kind of trial starts from a base repository, built once per test run (xdist workers share it) and copied for
each trial. The moment of the kill is drawn from a per-trial seed, shown in every failure: a number of repository
changes (objects added or deleted) between 0 and what an uninterrupted run of the same command makes, measured once
in the run, plus a random part of the mean time between two changes. ``SAUVEGARDE_FAULT_SEED`` varies the seeds;
``-m slow`` runs the long version (skipped otherwise).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from cli_harness import CHEAP_KDF, Cli, private_env
from fault_helpers import (
    KillOutcome,
    MiB,
    Reference,
    assert_restores,
    base_seed,
    build,
    check_read_data,
    copy_repo,
    described,
    evolve,
    lock_files,
    make_spec,
    measure,
    run_and_kill,
    snapshot_ids,
    spec_bytes,
)

BACKUP_TRIALS = 12
PRUNE_TRIALS = 12
COPY_TRIALS = 8
SLOW_TRIALS = {"backup": 40, "prune": 40, "copy": 20}
FROM_PASSWORD = "the other repository's password"


@dataclass
class State:
    """A snapshot and a copy of the tree it was taken of."""

    snapshot: str
    tree: str


@dataclass
class Base:
    """A repository to copy for each trial, the command to kill in it, and what the trial must find afterwards."""

    repo: str  # never changed: trials copy it
    source: str  # the path that was backed up (its tree is in its final state)
    states: list[State]  # snapshots that must restore exactly after a kill
    snapshots: int  # how many snapshots the base repository has
    args: list[str]
    ref: Reference
    final_tree: str | None = None  # what the snapshot the rerun saves (backup) or copies (copy) restores to
    env: dict[str, str] = field(default_factory=dict)  # added to every command's environment

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Base:
        d = json.loads(text)
        d["states"] = [State(**s) for s in d["states"]]
        d["ref"] = Reference(**d["ref"])
        return cls(**d)


def _cli(root: Path) -> Cli:
    env_dir = root / "env"
    env_dir.mkdir(exist_ok=True)
    return Cli(private_env(env_dir, root / "repo"), root)


def _with_repo(repo: Path, base_env: dict[str, str] | None = None) -> dict[str, str]:
    return {**(base_env or {}), "SAUVEGARDE_REPOSITORY": str(repo)}


def _shared_base(factory: pytest.TempPathFactory, name: str, build_base: Callable[[Path, Cli], Base]) -> Base:
    """Build a base once per test run, not once per xdist worker (they wait on a file lock for the first one)."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    where, meta = root / f"faults-{name}", root / f"faults-{name}.json"
    with open(root / f"faults-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if meta.exists():
            return Base.from_json(meta.read_text())
        shutil.rmtree(where, ignore_errors=True)  # a build that failed in another worker
        where.mkdir()
        base = build_base(where, _cli(where))
        scratch = copy_repo(Path(base.repo), where / "reference")
        base.ref = measure(_cli(where), tuple(base.args), scratch, _with_repo(scratch, base.env))
        if base.args[0] == "prune":
            report = check_read_data(_cli(where), scratch, base.env)
            assert report["unused_blobs"] == 0 and not report["problems"], report
            assert base.ref.changes >= 6, f"prune should repack and delete several objects: {base.ref}"
        shutil.rmtree(scratch)
        meta.write_text(base.to_json())
        return base


@pytest.fixture(scope="module")
def worker_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return _cli(tmp_path_factory.mktemp("faults-cli"))


# --- bases -------------------------------------------------------------------------------------------------------


def _backup_base(root: Path, cli: Cli) -> Base:
    """A repository with one snapshot of a small tree, and the tree grown to ~33 MB in ~400 files: several packs."""
    repo, source = root / "repo", root / "source"
    spec0 = make_spec(1, 200, 6 * MiB)
    spec1 = evolve(spec0, 2, 250, 28 * MiB)
    assert spec_bytes(spec1) > 2 * 16 * MiB  # two full packs at least
    cli.run("init", *CHEAP_KDF)
    build(source, spec0)
    cli.run("backup", source)
    build(root / "state0", spec0)
    build(root / "state1", spec1)
    build(source, spec1)
    states = [State(snapshot_ids(cli, repo)[0], str(root / "state0"))]
    args = ["backup", str(source)]
    return Base(str(repo), str(source), states, 1, args, Reference(0, 0.0, 0.0), str(root / "state1"))


def _prune_base(root: Path, cli: Cli) -> Base:
    """Three snapshots of a changing ~20 MB tree, the first one forgotten: prune deletes and repacks."""
    repo, source = root / "repo", root / "source"
    specs = [make_spec(11, 200, 20 * MiB)]
    specs.append(evolve(specs[0], 12, 50, 5 * MiB))
    specs.append(evolve(specs[1], 13, 50, 5 * MiB))
    cli.run("init", *CHEAP_KDF)
    states = []
    for i, spec in enumerate(specs):
        build(source, spec)
        cli.run("backup", source)
        build(root / f"state{i}", spec)
        states.append(State(snapshot_ids(cli, repo)[-1], str(root / f"state{i}")))
    cli.run("forget", states[0].snapshot)
    return Base(str(repo), str(source), states[1:], 2, ["prune", "--max-unused", "0%"], Reference(0, 0.0, 0.0))


def _copy_base(root: Path, cli: Cli) -> Base:
    """A source repository with two snapshots (~6 MB, then ~33 MB); a destination (other key) holding the first."""
    from_repo, source, repo = root / "from", root / "source", root / "repo"
    spec0 = make_spec(21, 200, 6 * MiB)
    spec1 = evolve(spec0, 22, 250, 28 * MiB)
    from_env = {"SAUVEGARDE_REPOSITORY": str(from_repo), "SAUVEGARDE_PASSWORD": FROM_PASSWORD}
    cli.run("init", *CHEAP_KDF, env=from_env)
    for i, spec in enumerate((spec0, spec1)):
        build(source, spec)
        cli.run("backup", source, env=from_env)
        build(root / f"state{i}", spec)
    first = snapshot_ids(cli, from_repo, from_env)[0]
    env = {"SAUVEGARDE_FROM_PASSWORD": FROM_PASSWORD}
    cli.run("init", *CHEAP_KDF)
    cli.run("copy", "--from-repo", from_repo, first, env=env)
    states = [State(snapshot_ids(cli, repo)[0], str(root / "state0"))]
    args = ["copy", "--from-repo", str(from_repo)]
    return Base(str(repo), str(source), states, 1, args, Reference(0, 0.0, 0.0), str(root / "state1"), env)


@pytest.fixture(scope="module")
def backup_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return _shared_base(tmp_path_factory, "backup", _backup_base)


@pytest.fixture(scope="module")
def prune_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return _shared_base(tmp_path_factory, "prune", _prune_base)


@pytest.fixture(scope="module")
def copy_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return _shared_base(tmp_path_factory, "copy", _copy_base)


# --- one trial ---------------------------------------------------------------------------------------------------


def kill_trial(cli: Cli, base: Base, seed: int, work: Path) -> KillOutcome:
    """Kill the base's command in a copy of its repository at a moment drawn from ``seed``, then check everything."""
    rng = random.Random(seed)
    repo = copy_repo(Path(base.repo), work / f"repo-{seed}")
    env = _with_repo(repo, base.env)
    args, source = tuple(base.args), Path(base.source)
    try:
        outcome = run_and_kill(cli, args, repo, env, base.ref, rng, seed)
        locks = len(lock_files(repo))
        print(f"{outcome.description}; {locks} lock(s) left")  # shown with -rP or -s
        with described(f"{outcome.description}; {locks} lock(s) left"):
            # no `unlock`: the dead process's lock must not stop anything (exclusive ones included, for prune)
            report = check_read_data(cli, repo, env)
            assert report["snapshots"] >= base.snapshots, report
            for state in base.states:
                assert_restores(cli, repo, state.snapshot, Path(state.tree), source, work, "after the kill")
            cli.run(*args, env=env)
            # backup and copy: the restore below reads all the data of the new snapshot, the rest was read above
            report = check_read_data(cli, repo, env, read_data=base.final_tree is None)
            if args[0] == "prune":
                assert report["snapshots"] == base.snapshots, report
                assert report["unused_blobs"] == 0, f"the rerun of prune left unused data: {report}"
                assert not report["problems"], f"the rerun of prune left problems: {report}"
            elif args[0] == "copy":
                assert report["snapshots"] == base.snapshots + 1, f"copied nothing, or twice: {report}"
            else:
                assert report["snapshots"] in (base.snapshots + 1, base.snapshots + 2), report
            if base.final_tree is not None:  # the snapshot the rerun saved, or copied (the newest)
                assert_restores(cli, repo, "latest", Path(base.final_tree), source, work, "after the rerun")
        return outcome
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def trial_seed(kind: str, i: int) -> int:
    return base_seed() + {"backup": 0, "prune": 100_000, "copy": 200_000}[kind] + i


# --- default suite -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("i", range(BACKUP_TRIALS))
def test_kill_backup(worker_cli: Cli, backup_base: Base, tmp_path: Path, i: int) -> None:
    kill_trial(worker_cli, backup_base, trial_seed("backup", i), tmp_path)


@pytest.mark.parametrize("i", range(PRUNE_TRIALS))
def test_kill_prune(worker_cli: Cli, prune_base: Base, tmp_path: Path, i: int) -> None:
    kill_trial(worker_cli, prune_base, trial_seed("prune", i), tmp_path)


@pytest.mark.parametrize("i", range(COPY_TRIALS))
def test_kill_copy(worker_cli: Cli, copy_base: Base, tmp_path: Path, i: int) -> None:
    kill_trial(worker_cli, copy_base, trial_seed("copy", i), tmp_path)


# --- slow: many more trials, with seeds the default suite does not use; run with -m slow ---------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "i"), [(kind, i) for kind, n in SLOW_TRIALS.items() for i in range(n)])
def test_kill_many(request: pytest.FixtureRequest, worker_cli: Cli, tmp_path: Path, kind: str, i: int) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long fault-injection run: select it with -m slow")
    base = request.getfixturevalue(f"{kind}_base")
    kill_trial(worker_cli, base, trial_seed(kind, 1000 + i), tmp_path)
