"""The benchmark sequence: which steps exist, what they need, and the ``Bench`` that runs them for every tool.

Per repetition: copy the tree (``data``); in one fresh repository per tool, the tree steps ``first``,
``unchanged``, ``changed``, ``restore`` and then ``check`` (a full check reading all data of the repository those
steps produced); the ``big`` file in a fresh repository; and the ``s3`` step: a private SeaweedFS server, a first
backup of the tree (as it is at that point) into a fresh S3 repository per tool, then a restore from it. Every timed
command runs after ``prepare`` (same page-cache state for every tool); restores are checked against the source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import s3
from bench.data import (
    SEED,
    copy_tree,
    drop_caches,
    du_bytes,
    file_bytes,
    forget_cached,
    make_big_file,
    mutate,
    read_all,
    rmtree,
    sha256,
    space_kept,
    tree_stats,
)
from bench.measure import Result, Run, have_gnu_time, timed
from bench.report import machine_info
from bench.settle import MASS_DELETION, Deletions
from bench.tools import S3_TOOLS, Commands

STEPS = ("data", "first", "unchanged", "changed", "restore", "check", "big", "s3")
TREE_STEPS = ("first", "unchanged", "changed", "restore", "check")
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "data": (),
    "first": ("data",),
    "unchanged": ("data", "first"),
    "changed": ("data", "first"),
    "restore": ("data", "first"),
    "check": ("data", "first"),
    "big": (),
    "s3": ("data",),
}
PASSWORD = "bench-password-not-secret"


def with_prerequisites(steps: Iterable[str]) -> list[str]:
    """STEPS and everything they need, in run order."""
    wanted = set(steps)
    for step in list(wanted):
        wanted.update(PREREQUISITES[step])
    return [s for s in STEPS if s in wanted]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = Path(args.work).resolve()
        self.tools: list[str] = args.tools
        self.steps: list[str] = args.steps
        self.data = self.work / "data"
        self.tree = self.data / "0" / "share"  # the copy of the current repetition (see make_tree)
        self.big_dir = self.work / "big"
        self.big_file = self.big_dir / ("usr-lib-100M.tar" if args.quick else "usr-lib.tar")
        self.repos = self.work / "repos"
        self.caches = self.work / "caches"
        self.restore_root = self.work / "restore"
        self.restore_dir = self.restore_root  # the current restore's target, a fresh directory per restore
        self.restored: list[Path] = []  # removed together once every tool has restored (see remove_restores)
        self.forgotten = 0  # how many of them have had their page cache dropped (see prepare)
        existing = next(p for p in (self.work, *self.work.parents) if p.exists())
        self.deletions = Deletions(existing)  # restores wait out ext4's recently-deleted inode rule (settle.py)
        self.s3_dir = self.work / "s3"
        self.logs = self.work / "logs"
        self.results: dict[str, dict[str, Result]] = {t: {} for t in self.tools}
        self.inits: dict[str, list[float]] = {t: [] for t in self.tools}
        self.info: dict[str, Any] = {}
        self.gnu_time = have_gnu_time()
        self.env = dict(os.environ)
        self.env.update(
            RESTIC_PASSWORD=PASSWORD,
            BORG_PASSPHRASE=PASSWORD,
            SAUVEGARDE_PASSWORD=PASSWORD,
            RESTIC_CACHE_DIR=str(self.caches / "restic"),
            BORG_BASE_DIR=str(self.caches / "borg"),
            BORG_DISPLAY_PASSPHRASE="no",
            BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
            XDG_CACHE_HOME=str(self.caches / "xdg"),
            LC_ALL="C.UTF-8",
        )
        for var in ("SAUVEGARDE_PASSWORD_FILE", "SAUVEGARDE_PASSWORD_COMMAND", "SAUVEGARDE_REPOSITORY"):
            self.env.pop(var, None)
        # as an installed package: byte code compiled once (pip does it at install; an editable checkout with
        # PYTHONDONTWRITEBYTECODE set would compile every imported module again in every timed command)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        compile_package(self.env)
        self.commands = Commands()

    # ----- running --------------------------------------------------------------------------------------------

    def prepare(self, extra: Iterable[Path] = ()) -> None:
        """Bring the page cache into the same state before each timed command."""
        subprocess.run(["sync"], check=False)
        for path in self.restored[self.forgotten :]:  # restores verified since the last command: out of the cache
            forget_cached(path)
        self.forgotten = len(self.restored)
        if self.args.cache == "cold":
            self.info["drop_caches_ok"] = drop_caches() and self.info.get("drop_caches_ok", True)
        else:
            for path in (self.tree, self.big_file, self.repos, self.caches, *extra):
                read_all(path)

    def timed(self, label: str, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
        return timed(self.logs / f"{label}.log", cmd, env or self.env, self.args.timeout, cwd=cwd)

    def record(self, tool: str, measure: str, run: Run) -> None:
        self.results[tool].setdefault(measure, Result()).runs.append(run)
        size = f", repo {run.repo_bytes / 2**20:.1f} MiB" if run.repo_bytes is not None else ""
        speed = f", {run.mib_s:.1f} MiB/s" if run.mib_s is not None else ""
        server = f", server CPU {run.server_cpu_s:.1f} s" if run.server_cpu_s is not None else ""
        state = "" if run.ok else "  FAILED"
        print(
            f"  {tool:<10} {measure:<12} {run.wall_s:8.2f} s  {run.maxrss_kib / 1024:7.1f} MiB RSS"
            f"  {run.cpu_s:7.1f} s CPU{size}{speed}{server}{state}",
            flush=True,
        )

    def rmtree(self, path: Path) -> None:
        """Remove a file or tree, noting a mass deletion for :class:`bench.settle.Deletions`."""
        if path.exists() or path.is_symlink():
            entries = sum(len(dirs) + len(files) for _root, dirs, files in os.walk(path))
            rmtree(path)
            if entries >= MASS_DELETION:
                self.deletions.deleted()

    def init_repo(self, tool: str, kind: str, location: str, rep: int, env: dict[str, str] | None = None) -> bool:
        run = self.timed(f"{tool}-{kind}-init-{rep}", self.commands.init(tool, location), env=env)
        if not run.ok:
            print(f"    {tool} init failed, skipping its {kind} steps", file=sys.stderr)
            return False
        self.inits[tool].append(run.wall_s)
        return True

    def fresh_repo(self, tool: str, kind: str, rep: int) -> Path | None:
        repo = self.repos / f"{tool}-{kind}"
        self.rmtree(repo)
        repo.parent.mkdir(parents=True, exist_ok=True)
        return repo if self.init_repo(tool, kind, str(repo), rep) else None

    def backup(self, tool: str, measure: str, repo: Path, path: Path, rep: int) -> None:
        self.prepare()
        run = self.timed(f"{tool}-{measure}-{rep}", self.commands.backup(tool, str(repo), path))
        run.repo_bytes = du_bytes(repo)
        self.record(tool, measure, run)

    def restore(self, tool: str, measure: str, repo: str, rep: int, env: dict[str, str] | None = None) -> Run:
        """Restore the latest snapshot of REPO into a new empty directory (not recorded yet).

        Each restore gets a directory of its own, and restored trees are removed at the end of the run: creating
        files within minutes of tens of thousands being deleted is several times slower on ext4 without a journal
        (bench/settle.py), which would favour whichever tool restores first. Should a mass deletion be recent (a
        run cleaning up after an interrupted one), the restore waits it out.
        """
        self.restore_dir = self.restore_root / f"{tool}-{measure}-{rep}"
        self.rmtree(self.restore_dir)
        self.restore_dir.mkdir(parents=True)
        waited = self.deletions.settle()
        if waited:
            print(f"    (waited {waited:.0f} s for the file system to forget recent deletions: bench/settle.py)")
        self.prepare(extra=[self.s3_dir])
        self.restored.append(self.restore_dir)  # after prepare: its cache is dropped before the next command
        cmd, cwd = self.commands.restore(tool, repo, self.restore_dir)
        return self.timed(f"{tool}-{measure}-{rep}", cmd, cwd=cwd, env=env)

    def check_repo(self, tool: str, repo: Path, rep: int) -> None:
        self.prepare()
        run = self.timed(f"{tool}-check-{rep}", self.commands.check(tool, str(repo)))
        run.set_data_bytes(file_bytes(repo))
        self.record(tool, "check", run)

    # ----- verifying restores ---------------------------------------------------------------------------------

    def verify_tree_restore(self, run: Run, tool: str, expected: dict[str, int]) -> None:
        """Compare the restored tree with EXPECTED (file, symlink and byte counts)."""
        if run.ok:
            restored = self.restore_dir / self.tree.relative_to("/")
            got = tree_stats(restored) if restored.is_dir() else {"files": 0, "symlinks": 0, "dirs": 0, "bytes": 0}
            if any(got[k] != expected[k] for k in ("files", "symlinks", "bytes")):
                run.ok = False
                run.note = f"restore mismatch: expected {expected}, got {got}"
                print(f"    FAILED check {tool}: {run.note}", file=sys.stderr)
            else:
                run.note = f"restored {got['files']} files, {got['symlinks']} symlinks, {got['bytes']} bytes: OK"
            print(f"    check: {run.note}", flush=True)

    def verify_big_restore(self, run: Run, tool: str) -> None:
        if run.ok:
            restored = self.restore_dir / self.big_file.relative_to("/")
            digest = sha256(restored) if restored.is_file() else ""
            if digest != self.info["big"]["sha256"]:
                run.ok = False
                run.note = f"big restore mismatch (found {restored.is_file()}, sha256 {digest[:16]})"
                print(f"    FAILED check {tool}: {run.note}", file=sys.stderr)
            else:
                run.note = "restored file SHA-256 matches: OK"
            print(f"    check: {run.note}", flush=True)

    def remove_restores(self) -> None:
        for path in self.restored:
            self.rmtree(path)
        self.restored.clear()
        self.forgotten = 0
        subprocess.run(["sync"], check=False)

    # ----- steps ----------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for path in (self.repos, self.caches, self.restore_root, self.s3_dir, self.logs, self.data):
            self.rmtree(path)
        self.info.update(machine_info({t: self.commands.version(t) for t in self.tools}, self.work))
        self.info["cache_mode"] = self.args.cache
        self.info["quick"] = self.args.quick
        self.info["repeat"] = self.args.repeat
        self.info["memory_method"] = (
            "/usr/bin/time -f %M" if self.gnu_time else "os.wait4 ru_maxrss"
        ) + ", or more: the tool's RSS plus its child processes' private memory, sampled every 10 ms"
        self.info["restores_wait_for_deletions"] = self.deletions.applies
        tree_steps = [s for s in TREE_STEPS if s in self.steps]
        if "big" in self.steps:
            self.make_big()
        for rep in range(self.args.repeat):
            print(f"== repetition {rep + 1}/{self.args.repeat}", flush=True)
            # the tools take turns at going first: what the one before left behind (dirty pages, blocks being
            # discarded after a deletion) slows the next command, so a fixed order would favour the same tool
            turn = rep % len(self.args.tools)
            self.tools = self.args.tools[turn:] + self.args.tools[:turn]
            if "data" in self.steps:
                self.make_tree(rep)
                if rep == 0:
                    self.check_space()
            if tree_steps:
                expected = self.tree_sequence(tree_steps, rep)
                self.info.setdefault("tree_after_changes", expected)
            if "big" in self.steps:
                self.big_sequence(rep)
            if "s3" in self.steps:
                self.s3_sequence(rep)
        self.info["restore_wait_s"] = round(self.deletions.waited_s, 1)
        # deleted only now: deleting tens of thousands of files slows every file creation for minutes afterwards
        # on this benchmark's file system (bench/settle.py), so no tree is deleted between repetitions
        self.remove_restores()
        if not self.args.keep:
            self.rmtree(self.data)

    def check_space(self) -> None:
        """Stop before anything is measured if --work cannot hold what the run keeps until its end (see run): per
        repetition a copy of the tree, every restore of it (S3 ones too) and every restore of the big file (see
        data.space_kept). A run that fills the disk fails its restores half-way."""
        tree = int(self.info["data"]["bytes"])
        big = int(self.info.get("big", {}).get("bytes", 0)) if "big" in self.steps else 0
        tree_restores = len(self.tools) * ("restore" in self.steps)
        tree_restores += len([t for t in self.tools if t in S3_TOOLS]) * ("s3" in self.steps)
        need = space_kept(tree, big, self.args.repeat, tree_restores, len(self.tools)) - tree  # one copy is made
        free = shutil.disk_usage(self.work).free
        if free < need:
            sys.exit(
                f"bench: {self.work} has {free / 2**30:.1f} GiB free, and this run keeps about {need / 2**30:.1f} GiB"
                " until it ends (every repetition's tree copy and restores): free space, or run fewer --repeat"
            )

    def make_tree(self, rep: int) -> None:
        # a fresh copy per repetition, beside the earlier ones (removed at the end of the run, see run)
        self.tree = self.data / str(rep) / "share"
        self.rmtree(self.tree.parent)
        self.tree.parent.mkdir(parents=True)
        start = time.perf_counter()
        chosen = copy_tree(Path(self.args.source), self.tree, self.args.quick)
        wall = time.perf_counter() - start
        if chosen is not None:
            self.info["quick_subdirs"] = [p.name for p in chosen]
        if rep == 0:
            count = tree_stats(self.tree)
            self.info["data"] = {"source": self.args.source, "copy_s": round(wall, 2), **count}
            print(
                f"  data: {count['files']} files, {count['symlinks']} symlinks, {count['dirs']} dirs, "
                f"{count['bytes'] / 2**20:.1f} MiB (cp -a in {wall:.1f} s)",
                flush=True,
            )

    def make_big(self) -> None:
        size = make_big_file(self.big_file, self.args.big_source, self.args.quick)
        self.info["big"] = {"source": self.args.big_source, "bytes": size, "sha256": sha256(self.big_file)}
        print(f"  big file: {self.big_file} {size / 2**20:.1f} MiB", flush=True)

    def tree_sequence(self, steps: list[str], rep: int) -> dict[str, int]:
        repos: dict[str, Path] = {}
        for tool in self.tools:
            repo = self.fresh_repo(tool, "tree", rep)
            if repo is not None:
                repos[tool] = repo
        for tool in repos:
            self.backup(tool, "first", repos[tool], self.tree, rep)
        if "unchanged" in steps:
            for tool in repos:
                self.backup(tool, "unchanged", repos[tool], self.tree, rep)
        if "changed" in steps:
            summary = mutate(self.tree, SEED)
            if rep == 0:
                self.info["changes"] = summary
                print(f"  changed: {summary}", flush=True)
            for tool in repos:
                self.backup(tool, "changed", repos[tool], self.tree, rep)
        expected = tree_stats(self.tree)
        if "restore" in steps:
            for tool in repos:
                run = self.restore(tool, "restore", str(repos[tool]), rep)
                self.record(tool, "restore", run)
                self.verify_tree_restore(run, tool, expected)
        if "check" in steps:
            for tool in repos:
                self.check_repo(tool, repos[tool], rep)
        if not self.args.keep:
            for repo in repos.values():
                self.rmtree(repo)
        return expected

    def big_sequence(self, rep: int) -> None:
        for tool in self.tools:
            repo = self.fresh_repo(tool, "big", rep)
            if repo is None:
                continue
            self.backup(tool, "big-backup", repo, self.big_file, rep)
            run = self.restore(tool, "big-restore", str(repo), rep)
            self.record(tool, "big-restore", run)
            self.verify_big_restore(run, tool)
            if not self.args.keep:
                self.rmtree(repo)

    def s3_sequence(self, rep: int) -> None:
        """Back up the tree into, and restore it from, a fresh private SeaweedFS server (sauvegarde and restic)."""
        tools = [t for t in self.tools if t in S3_TOOLS]
        for tool in self.tools:
            if tool not in S3_TOOLS:
                print(f"  {tool:<10} s3: n/a (no S3 backend)", flush=True)
                self.info.setdefault("s3_not_applicable", {})[tool] = "no S3 backend"
        if not tools:
            return
        env = {k: v for k, v in self.env.items() if k not in s3.UNSET_AWS_VARS}
        env.update(s3.credentials_env())
        self.rmtree(self.s3_dir)
        try:
            self.s3_runs(tools, env, rep)
        except RuntimeError as exc:  # the server did not start: the step fails, the rest of the run goes on
            print(f"    FAILED s3: {exc}", file=sys.stderr)
            for tool in tools:
                self.record(tool, "s3-backup", Run(ok=False, wall_s=0.0, maxrss_kib=0, cpu_s=0.0, note=str(exc)))
        if not self.args.keep:
            self.rmtree(self.s3_dir)

    def s3_runs(self, tools: list[str], env: dict[str, str], rep: int) -> None:
        expected = tree_stats(self.tree)
        with s3.running_server(self.s3_dir) as server:
            if rep == 0:
                self.info["s3_server"] = {"endpoint": server.endpoint, "weed": s3.weed_binary()}
                print(f"  s3: SeaweedFS weed mini at {server.endpoint} (pid {server.proc and server.proc.pid})")
            for tool in tools:
                bucket = f"bucket-{tool[0]}"
                location = server.url(bucket, "repo")
                if not self.init_repo(tool, "s3", location, rep, env=env):
                    note = f"init of {location} failed (see {self.logs}/{tool}-s3-init-{rep}.log)"
                    self.record(tool, "s3-backup", Run(ok=False, wall_s=0.0, maxrss_kib=0, cpu_s=0.0, note=note))
                    continue
                self.prepare(extra=[self.s3_dir])
                before = server.cpu_seconds()
                run = self.timed(f"{tool}-s3-backup-{rep}", self.commands.backup(tool, location, self.tree), env=env)
                run.server_cpu_s = cpu_delta(before, server.cpu_seconds())
                run.repo_bytes = server.bucket_bytes(bucket, "repo/")
                run.set_data_bytes(expected["bytes"])
                self.record(tool, "s3-backup", run)
                if not run.ok:
                    continue
                before = server.cpu_seconds()
                run = self.restore(tool, "s3-restore", location, rep, env=env)
                run.server_cpu_s = cpu_delta(before, server.cpu_seconds())
                run.set_data_bytes(expected["bytes"])
                self.record(tool, "s3-restore", run)
                self.verify_tree_restore(run, tool, expected)


def cpu_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


def compile_package(env: dict[str, str]) -> None:
    """Write the byte code of the sauvegarde package that the benchmark runs (``python -m compileall``)."""
    import importlib.util

    spec = importlib.util.find_spec("sauvegarde")
    if spec is None or not spec.submodule_search_locations:
        return
    for location in spec.submodule_search_locations:
        subprocess.run([sys.executable, "-m", "compileall", "-q", location], env=env, check=False)
