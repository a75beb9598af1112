"""Helpers for the fault-injection tests: reproducible source trees, repository snapshots and kill -9 at random moments.

Source trees are described by a :data:`Spec` (relative path to file or symlink) and written with fixed times and
modes, so that the state a snapshot was taken of can be rebuilt byte for byte, metadata included, to compare a
restore against. A command is killed at a moment drawn from its seed, either at a random time within the span over
which an uninterrupted run changes the repository, or as soon as a random number of objects were written or deleted
(see :func:`run_and_kill`), so that kills land over the command's writes rather than during interpreter start-up.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from cli_harness import Cli
from cli_trees import assert_same_tree, restored

KiB = 1024
MiB = 1024 * KiB
MTIME_NS = 1_700_000_000_123_456_789  # every entry of a built tree gets this mtime (plus its position)
DEFAULT_SEED = 20261125


def base_seed() -> int:
    """The seed trials derive theirs from: SAUVEGARDE_FAULT_SEED when set (to explore), else a fixed one."""
    return int(os.environ.get("SAUVEGARDE_FAULT_SEED", DEFAULT_SEED))


@dataclass(frozen=True)
class FileSpec:
    size: int
    seed: int
    mode: int = 0o644


@dataclass(frozen=True)
class LinkSpec:
    target: str


Spec = dict[str, FileSpec | LinkSpec]


def _size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.70:
        return rng.randrange(0, 40 * KiB)
    if r < 0.93:
        return rng.randrange(40 * KiB, 400 * KiB)
    return rng.randrange(400 * KiB, 3 * MiB)  # several chunks each


def _new_file(rng: random.Random) -> FileSpec:
    return FileSpec(_size(rng), rng.getrandbits(48), rng.choice((0o644, 0o644, 0o600, 0o755, 0o444)))


def make_spec(seed: int, n_files: int, total: int) -> Spec:
    """About ``n_files`` files in nested directories, ``total`` bytes in all (the large files take up the rest)."""
    rng = random.Random(seed)
    spec: Spec = {}
    for i in range(n_files):
        depth = rng.choice((0, 1, 1, 2))
        parts = [f"d{rng.randrange(6)}" for _ in range(depth)]
        spec["/".join([*parts, f"f{seed % 1000}-{i:04}.bin"])] = _new_file(rng)
    _fit(spec, rng, total)
    spec["link"] = LinkSpec("d0/nowhere")
    return spec


def _fit(spec: Spec, rng: random.Random, total: int) -> None:
    files = {k: v for k, v in spec.items() if isinstance(v, FileSpec)}
    big = sorted(k for k, v in files.items() if v.size >= 400 * KiB) or [sorted(files)[0]]
    rest = sum(v.size for k, v in files.items() if k not in big)
    each = max(400 * KiB, (total - rest) // len(big))
    for k in big:
        f = files[k]
        spec[k] = FileSpec(rng.randrange(each * 3 // 4, each * 5 // 4), f.seed, f.mode)


def evolve(spec: Spec, seed: int, n_new: int, new_bytes: int) -> Spec:
    """The next state of a tree: a quarter of the files deleted, a tenth rewritten, ``n_new`` files added."""
    rng = random.Random(seed)
    out: Spec = {}
    for path, entry in spec.items():
        r = rng.random()
        if isinstance(entry, FileSpec) and r < 0.25:
            continue
        if isinstance(entry, FileSpec) and r < 0.35:
            entry = FileSpec(entry.size, rng.getrandbits(48), entry.mode)
        out[path] = entry
    added = make_spec(seed, n_new, new_bytes)
    out.update({f"new{seed % 1000}/{k}": v for k, v in added.items() if isinstance(v, FileSpec)})
    return out


def spec_bytes(spec: Spec) -> int:
    return sum(v.size for v in spec.values() if isinstance(v, FileSpec))


def build(root: Path, spec: Spec) -> None:
    """Write the tree (replacing whatever is at ``root``) with deterministic modes and times."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    dirs = {root}
    for n, (rel, entry) in enumerate(sorted(spec.items())):
        path = root / rel
        for parent in reversed(path.relative_to(root).parents):
            d = root / parent
            if d not in dirs:
                d.mkdir(exist_ok=True)
                dirs.add(d)
        if isinstance(entry, LinkSpec):
            path.symlink_to(entry.target)
        else:
            path.write_bytes(random.Random(entry.seed).randbytes(entry.size))
            path.chmod(entry.mode)
        os.utime(path, ns=(MTIME_NS, MTIME_NS + n), follow_symlinks=False)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        d.chmod(0o755)
        os.utime(d, ns=(MTIME_NS, MTIME_NS - len(d.parts)))


# --- repository state --------------------------------------------------------------------------------------------


def objects(repo: Path) -> set[str]:
    """Names of a local repository's objects, locks and unfinished (temporary) files excepted."""
    out = set()
    for dirpath, _dirs, files in os.walk(repo):
        rel = os.path.relpath(dirpath, repo)
        if rel == "locks" or rel.startswith("locks" + os.sep):
            continue
        out.update(os.path.join(rel, f) for f in files if not f.startswith(".tmp-"))
    return out


def lock_files(repo: Path) -> list[str]:
    d = repo / "locks"
    return sorted(os.listdir(d)) if d.is_dir() else []


def copy_repo(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def snapshot_ids(cli: Cli, repo: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """IDs of the snapshots of ``repo``, oldest first."""
    docs = cli.json("snapshots", env={"SAUVEGARDE_REPOSITORY": str(repo), **(env or {})})
    return [d["id"] for d in docs]


def assert_restores(cli: Cli, repo: Path, snapshot: str, state: Path, source: Path, work: Path, what: str) -> None:
    """``snapshot`` of ``source`` restores to exactly the tree at ``state``."""
    target = Path(tempfile.mkdtemp(prefix="restore-", dir=work))
    try:
        cli.run("restore", snapshot, "--target", target, env={"SAUVEGARDE_REPOSITORY": str(repo)})
        try:
            assert_same_tree(state, restored(target, source))
        except AssertionError as exc:
            raise AssertionError(f"{what}: snapshot {snapshot[:8]} does not restore exactly: {exc}") from None
    finally:
        shutil.rmtree(target, ignore_errors=True)


def check_read_data(
    cli: Cli, repo: Path, extra_env: Mapping[str, str] | None = None, read_data: bool = True
) -> dict[str, object]:
    """``check --read-data --json`` (or only ``check``) must pass (exit 0); returns its report."""
    env = {**(extra_env or {}), "SAUVEGARDE_REPOSITORY": str(repo)}
    report = cli.json("check", *(["--read-data"] if read_data else []), env=env)
    assert isinstance(report, dict)
    assert report["ok"], report
    return report


# --- kill -9 -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run of the command does: how many repository changes, and over which time.

    Times are in seconds from the moment the command's first lock appeared (the end of its start-up).
    """

    changes: int
    first_change: float
    last_change: float


@dataclass(frozen=True)
class KillOutcome:
    killed: bool  # False: the command finished before the kill point
    description: str


class _Watch:
    """Polls a repository while a command runs: when it took its lock, and how many objects changed since."""

    def __init__(self, repo: Path, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
        self.repo = repo
        self.proc = proc
        self.before = objects(repo)
        self.start = time.monotonic()
        self.locked_at: float | None = None
        self.timeout = timeout
        self.what = what

    def changes(self) -> int:
        return len(objects(self.repo) ^ self.before)

    def poll(self) -> bool:
        """False once the command has ended."""
        now = time.monotonic()
        assert now - self.start < self.timeout, f"{self.what}: not finished in {self.timeout} s"
        if self.locked_at is None and lock_files(self.repo):
            self.locked_at = now
        return self.proc.poll() is None


def _popen(cli: Cli, args: tuple[str, ...], env: Mapping[str, str], err: IO[bytes]) -> subprocess.Popen[bytes]:
    return cli.popen(*args, env=env, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)


def measure(cli: Cli, args: tuple[str, ...], watched: Path, env: Mapping[str, str], timeout: float = 300) -> Reference:
    """Run the command to its end, noting when each change of ``watched`` happened."""
    times: list[float] = []
    with tempfile.TemporaryFile() as err:
        proc = _popen(cli, args, env, err)
        watch = _Watch(watched, proc, timeout, f"reference run of {args[0]}")
        try:
            while watch.poll():
                n = watch.changes()
                times.extend([time.monotonic()] * (n - len(times)))
                time.sleep(0.0005)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        err.seek(0)
        assert proc.returncode == 0, f"reference run of {args}: exit {proc.returncode}\n{err.read().decode()[-3000:]}"
    n = watch.changes()
    times.extend([time.monotonic()] * (n - len(times)))
    assert n and watch.locked_at is not None, f"reference run of {args}: {n} changes, lock seen: {watch.locked_at}"
    return Reference(n, max(0.0, times[0] - watch.locked_at), max(0.0, times[-1] - watch.locked_at))


def run_and_kill(
    cli: Cli,
    args: tuple[str, ...],
    watched: Path,
    env: Mapping[str, str],
    ref: Reference,
    rng: random.Random,
    seed: int,
    timeout: float = 120,
) -> KillOutcome:
    """Start the command and SIGKILL it at a moment drawn from ``rng``.

    Half the trials kill at a uniformly random time, counted from the moment the command took its lock, between half
    the time of the reference run's first change (a kill before that only interrupts reading) and the time of its
    last one; the other half as soon as the number of changes (objects written or deleted) reaches a random number
    between 1 and the reference run's count, to land within bursts of writes too.
    """
    by_time = rng.random() < 0.5
    deadline = rng.uniform(ref.first_change / 2, ref.last_change)
    target = rng.randint(1, ref.changes)
    aim = f"{deadline:.3f} s after the lock" if by_time else f"change {target}/{ref.changes}"
    with tempfile.TemporaryFile() as err:
        proc = _popen(cli, args, env, err)
        watch = _Watch(watched, proc, timeout, f"seed {seed}: {args[0]}")
        try:
            while watch.poll():
                if by_time and watch.locked_at is not None:
                    time.sleep(max(0.0, watch.locked_at + deadline - time.monotonic()))
                    break
                if not by_time and watch.changes() >= target:
                    break
                time.sleep(0.0005)
            proc.send_signal(signal.SIGKILL)  # harmless if it ended: not reaped yet, the pid is still the process's
        finally:
            proc.wait()
        elapsed = time.monotonic() - watch.start
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    killed = proc.returncode == -signal.SIGKILL
    description = (
        f"trial seed {seed}: `{args[0]}` {'killed' if killed else 'finished'} after {elapsed:.3f} s, aiming at {aim} "
        f"(reference: {ref.changes} changes {ref.first_change:.3f}-{ref.last_change:.3f} s after its lock); "
        f"{watch.changes()} change(s) on disk"
    )
    assert killed or proc.returncode == 0, f"{description}: exit {proc.returncode}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, f"{description}\n{stderr[-3000:]}"
    return KillOutcome(killed, description)


@contextlib.contextmanager
def described(description: str) -> Iterator[None]:
    """Prefix any failure inside with the trial's description (seed, kill point), so that it can be reproduced."""
    try:
        yield
    except (AssertionError, pytest.fail.Exception) as exc:
        pytest.fail(f"{description}\n(rerun with SAUVEGARDE_FAULT_SEED to vary the seeds)\n{exc}", pytrace=False)
