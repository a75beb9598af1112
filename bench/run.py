"""Benchmark sauvegarde against restic and borg on the same data, on the same machine, in one run.

Steps (select with --steps, prerequisites are added automatically):

  data       copy /usr/share (about 50,000 files) into WORK/data with ``cp -a`` (reports files and bytes)
  first      first backup of that tree into a fresh repository
  unchanged  the same backup again, nothing changed
  changed    again after changing about 5% of the files (seeded: appends, in-place rewrites, new files, deletions)
  restore    restore of the latest snapshot into an empty directory (file count and bytes are checked)
  big        one large file (a tar of /usr/lib/x86_64-linux-gnu, about 650 MB) backed up into a fresh
             repository, then restored (size and SHA-256 are checked)

For every tool and step it records the wall time, the peak memory (max RSS from ``/usr/bin/time -f %M``, or
``os.wait4`` when GNU time is missing: that is the largest single process of the child's tree, and every tool here
runs as one process), user+system CPU time and, after backups, the repository size (``du -sb``: apparent bytes).
``--repeat N`` repeats the whole sequence N times with fresh repositories and a fresh copy of the data, and reports
the median. Results are printed and written as JSON and as a Markdown table (WORK/results.json, WORK/results.md).

Fairness: the same password for all tools (RESTIC_PASSWORD, BORG_PASSPHRASE, SAUVEGARDE_PASSWORD), repositories
and caches under WORK (one filesystem), restic repository version 2 (``--compression auto``, its default), borg
``init -e repokey-blake2`` and ``create --compression zstd,3``, sauvegarde ``init`` defaults. By default every
step runs warm: all data, repositories and caches are read once (and ``sync`` runs) just before each timed command,
so every tool sees the same page-cache state; ``--cache cold`` drops the page cache instead (needs root).
Repository initialisation is timed separately (key derivation settings differ) and not part of the table.

Usage: python bench/run.py [--quick] [--repeat N] [--tools sauvegarde,restic,borg] [--steps ...] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOOLS = ("sauvegarde", "restic", "borg")
STEPS = ("data", "first", "unchanged", "changed", "restore", "big")
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "data": (),
    "first": ("data",),
    "unchanged": ("data", "first"),
    "changed": ("data", "first"),
    "restore": ("data", "first"),
    "big": (),
}
# Timed measurements, in table order: (key, label).
MEASURES = (
    ("first", "first backup"),
    ("unchanged", "unchanged backup"),
    ("changed", "backup after ~5% changed"),
    ("restore", "restore latest"),
    ("big-backup", "big file backup"),
    ("big-restore", "big file restore"),
)
BACKUP_MEASURES = {"first", "unchanged", "changed", "big-backup"}
PASSWORD = "bench-password-not-secret"
SEED = 20240601
QUICK_FILES = 5000
QUICK_BIG_BYTES = 100 * 1024 * 1024
GNU_TIME = "/usr/bin/time"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """One timed command."""

    ok: bool
    wall_s: float
    maxrss_kib: int
    cpu_s: float
    repo_bytes: int | None = None
    note: str = ""


@dataclass
class Result:
    """All repetitions of one (tool, measure)."""

    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs if r.ok and getattr(r, attr) is not None]
        return float(statistics.median(values)) if values else None

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = Path(args.work).resolve()
        self.tools: list[str] = args.tools
        self.steps: list[str] = args.steps
        self.data = self.work / "data"
        self.tree = self.data / "share"
        self.big_dir = self.work / "big"
        self.big_file = self.big_dir / ("usr-lib-100M.tar" if args.quick else "usr-lib.tar")
        self.repos = self.work / "repos"
        self.caches = self.work / "caches"
        self.restore_dir = self.work / "restore"
        self.logs = self.work / "logs"
        self.results: dict[str, dict[str, Result]] = {t: {} for t in self.tools}
        self.inits: dict[str, list[float]] = {t: [] for t in self.tools}
        self.info: dict[str, Any] = {}
        self.borg_archive: dict[str, str] = {}
        self.borg_counter = 0
        self.gnu_time = os.access(GNU_TIME, os.X_OK)
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
        self.sauvegarde = sauvegarde_command()

    # ----- commands -------------------------------------------------------------------------------------------

    def repo(self, tool: str, kind: str) -> Path:
        return self.repos / f"{tool}-{kind}"

    def init_cmd(self, tool: str, repo: Path) -> list[str]:
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", str(repo), "init"]
        if tool == "restic":
            return ["restic", "-q", "-r", str(repo), "init", "--repository-version", "2"]
        return ["borg", "init", "-e", "repokey-blake2", str(repo)]

    def backup_cmd(self, tool: str, repo: Path, path: Path) -> list[str]:
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", str(repo), "backup", str(path)]
        if tool == "restic":
            return ["restic", "-q", "-r", str(repo), "backup", str(path)]
        self.borg_counter += 1
        name = f"bench-{self.borg_counter}"
        self.borg_archive[str(repo)] = name
        return ["borg", "create", "--compression", "zstd,3", f"{repo}::{name}", str(path)]

    def restore_cmd(self, tool: str, repo: Path, target: Path) -> tuple[list[str], Path | None]:
        if tool == "sauvegarde":
            return [*self.sauvegarde, "-q", "-r", str(repo), "restore", "latest", "--target", str(target)], None
        if tool == "restic":
            return ["restic", "-q", "-r", str(repo), "restore", "latest", "--target", str(target)], None
        return ["borg", "extract", f"{repo}::{self.borg_archive[str(repo)]}"], target

    # ----- running --------------------------------------------------------------------------------------------

    def prepare(self, extra: Iterable[Path] = ()) -> None:
        """Bring the page cache into the same state before each timed command."""
        subprocess.run(["sync"], check=False)
        if self.args.cache == "cold":
            self.info["drop_caches_ok"] = drop_caches() and self.info.get("drop_caches_ok", True)
        else:
            for path in (self.tree, self.big_file, self.repos, self.caches, *extra):
                read_all(path)

    def timed(self, label: str, cmd: Sequence[str], cwd: Path | None = None) -> Run:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{label}.log"
        with open(log, "wb") as out:
            out.write((" ".join(cmd) + "\n").encode())
            out.flush()
            if self.gnu_time:
                fd, tfile = tempfile.mkstemp(prefix="time-", dir=self.work)
                os.close(fd)
                full = [GNU_TIME, "-f", "%M %U %S", "-o", tfile, *cmd]
                start = time.perf_counter()
                try:
                    proc = subprocess.run(
                        full,
                        cwd=cwd,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        timeout=self.args.timeout,
                        check=False,
                    )
                    wall = time.perf_counter() - start
                    rc = proc.returncode
                except subprocess.TimeoutExpired:
                    wall, rc = time.perf_counter() - start, -1
                fields = Path(tfile).read_text().strip().splitlines()
                os.unlink(tfile)
                # GNU time prints "Command exited with non-zero status N" before the format line on failure.
                parts = fields[-1].split() if fields else []
                if len(parts) == 3:
                    maxrss, cpu = int(parts[0]), float(parts[1]) + float(parts[2])
                else:
                    maxrss, cpu = 0, 0.0
            else:
                start = time.perf_counter()
                popen = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
                _, status, usage = os.wait4(popen.pid, 0)
                wall = time.perf_counter() - start
                popen.returncode = rc = os.waitstatus_to_exitcode(status)
                maxrss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        run = Run(ok=rc == 0, wall_s=round(wall, 3), maxrss_kib=maxrss, cpu_s=round(cpu, 2))
        if rc != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            run.note = f"exit {rc}: " + " | ".join(tail)
            print(f"    FAILED {label}: {run.note}", file=sys.stderr)
        return run

    def record(self, tool: str, measure: str, run: Run) -> None:
        self.results[tool].setdefault(measure, Result()).runs.append(run)
        size = f", repo {run.repo_bytes / 2**20:.1f} MiB" if run.repo_bytes is not None else ""
        state = "" if run.ok else "  FAILED"
        print(
            f"  {tool:<10} {measure:<12} {run.wall_s:8.2f} s  {run.maxrss_kib / 1024:7.1f} MiB RSS"
            f"  {run.cpu_s:7.1f} s CPU{size}{state}",
            flush=True,
        )

    def fresh_repo(self, tool: str, kind: str, rep: int) -> Path | None:
        repo = self.repo(tool, kind)
        rmtree(repo)
        repo.parent.mkdir(parents=True, exist_ok=True)
        run = self.timed(f"{tool}-{kind}-init-{rep}", self.init_cmd(tool, repo))
        if not run.ok:
            print(f"    {tool} init failed, skipping its {kind} steps", file=sys.stderr)
            return None
        self.inits[tool].append(run.wall_s)
        return repo

    def backup(self, tool: str, measure: str, repo: Path, path: Path, rep: int) -> None:
        self.prepare()
        run = self.timed(f"{tool}-{measure}-{rep}", self.backup_cmd(tool, repo, path))
        run.repo_bytes = du_bytes(repo)
        self.record(tool, measure, run)

    def restore(self, tool: str, measure: str, repo: Path, rep: int) -> Path | None:
        rmtree(self.restore_dir)
        self.restore_dir.mkdir(parents=True)
        self.prepare()
        cmd, cwd = self.restore_cmd(tool, repo, self.restore_dir)
        run = self.timed(f"{tool}-{measure}-{rep}", cmd, cwd=cwd)
        self.record(tool, measure, run)
        return self.restore_dir if run.ok else None

    # ----- steps ----------------------------------------------------------------------------------------------

    def make_tree(self, rep: int) -> None:
        rmtree(self.data)
        self.data.mkdir(parents=True)
        start = time.perf_counter()
        if self.args.quick:
            self.tree.mkdir()
            chosen = quick_subset(Path(self.args.source), QUICK_FILES)
            subprocess.run(["cp", "-a", *map(str, chosen), str(self.tree)], check=True)
            self.info["quick_subdirs"] = [p.name for p in chosen]
        else:
            subprocess.run(["cp", "-a", self.args.source, str(self.tree)], check=True)
        wall = time.perf_counter() - start
        if rep == 0:
            count = tree_stats(self.tree)
            self.info["data"] = {
                "source": self.args.source,
                "copy_s": round(wall, 2),
                **count,
            }
            print(
                f"  data: {count['files']} files, {count['symlinks']} symlinks, {count['dirs']} dirs, "
                f"{count['bytes'] / 2**20:.1f} MiB (cp -a in {wall:.1f} s)",
                flush=True,
            )

    def make_big(self) -> None:
        self.big_dir.mkdir(parents=True, exist_ok=True)
        if self.big_file.exists():
            size = self.big_file.stat().st_size
        else:
            part = self.big_file.with_suffix(".part")
            if self.args.quick:
                with open(part, "wb") as out:
                    tar = subprocess.Popen(
                        ["tar", "cf", "-", self.args.big_source], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                    )
                    assert tar.stdout is not None
                    left = QUICK_BIG_BYTES
                    while left > 0 and (buf := tar.stdout.read(min(left, 1 << 20))):
                        out.write(buf)
                        left -= len(buf)
                    tar.kill()
                    tar.wait()
            else:
                subprocess.run(["tar", "cf", str(part), self.args.big_source], check=True, stderr=subprocess.DEVNULL)
            part.rename(self.big_file)
            size = self.big_file.stat().st_size
        self.info["big"] = {"source": self.args.big_source, "bytes": size, "sha256": sha256(self.big_file)}
        print(f"  big file: {self.big_file} {size / 2**20:.1f} MiB", flush=True)

    def check_tree_restore(self, tool: str, measure: str, root: Path | None, expected: dict[str, int]) -> None:
        run = self.results[tool][measure].runs[-1]
        if root is None:
            return
        restored = root / self.tree.relative_to("/")
        got = tree_stats(restored) if restored.is_dir() else {"files": 0, "symlinks": 0, "dirs": 0, "bytes": 0}
        keys = ("files", "symlinks", "bytes")
        if any(got[k] != expected[k] for k in keys):
            run.ok = False
            run.note = f"restore mismatch: expected {expected}, got {got}"
            print(f"    FAILED check {tool}: {run.note}", file=sys.stderr)
        else:
            run.note = f"restored {got['files']} files, {got['symlinks']} symlinks, {got['bytes']} bytes: OK"
        print(f"    check: {run.note}", flush=True)
        rmtree(self.restore_dir)

    def check_big_restore(self, tool: str, root: Path | None) -> None:
        run = self.results[tool]["big-restore"].runs[-1]
        if root is None:
            return
        restored = root / self.big_file.relative_to("/")
        digest = sha256(restored) if restored.is_file() else ""
        if digest != self.info["big"]["sha256"]:
            run.ok = False
            run.note = f"big restore mismatch (found {restored.is_file()}, sha256 {digest[:16]})"
            print(f"    FAILED check {tool}: {run.note}", file=sys.stderr)
        else:
            run.note = "restored file SHA-256 matches: OK"
        print(f"    check: {run.note}", flush=True)
        rmtree(self.restore_dir)

    def run(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        rmtree(self.repos)
        rmtree(self.caches)
        rmtree(self.restore_dir)
        rmtree(self.logs)
        self.info.update(machine_info(self.tools, self.sauvegarde, self.work))
        self.info["cache_mode"] = self.args.cache
        self.info["quick"] = self.args.quick
        self.info["repeat"] = self.args.repeat
        self.info["memory_method"] = "/usr/bin/time -f %M" if self.gnu_time else "os.wait4 ru_maxrss"
        tree_steps = [s for s in ("first", "unchanged", "changed", "restore") if s in self.steps]
        need_tree = "data" in self.steps
        if "big" in self.steps:
            self.make_big()
        for rep in range(self.args.repeat):
            print(f"== repetition {rep + 1}/{self.args.repeat}", flush=True)
            if need_tree:
                self.make_tree(rep)
            if tree_steps:
                expected = self.tree_sequence(tree_steps, rep)
                self.info.setdefault("tree_after_changes", expected)
            if "big" in self.steps:
                for tool in self.tools:
                    repo = self.fresh_repo(tool, "big", rep)
                    if repo is None:
                        continue
                    self.backup(tool, "big-backup", repo, self.big_file, rep)
                    self.check_big_restore(tool, self.restore(tool, "big-restore", repo, rep))
                    if not self.args.keep:
                        rmtree(repo)

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
                self.check_tree_restore(tool, "restore", self.restore(tool, "restore", repos[tool], rep), expected)
        if not self.args.keep:
            for repo in repos.values():
                rmtree(repo)
        return expected

    # ----- reporting ------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for tool, measures in self.results.items():
            results[tool] = {}
            for measure, res in measures.items():
                results[tool][measure] = {
                    "ok": res.ok,
                    "median_wall_s": res.median("wall_s"),
                    "median_maxrss_kib": res.median("maxrss_kib"),
                    "median_cpu_s": res.median("cpu_s"),
                    "median_repo_bytes": res.median("repo_bytes"),
                    "runs": [asdict(r) for r in res.runs],
                }
        inits = {t: statistics.median(v) if v else None for t, v in self.inits.items()}
        return {"info": self.info, "init_wall_s_median": inits, "results": results, "ratios": self.ratios()}

    def ratios(self) -> dict[str, dict[str, dict[str, float | None]]]:
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        if "sauvegarde" not in self.results:
            return out
        for other in (t for t in self.tools if t != "sauvegarde"):
            per: dict[str, dict[str, float | None]] = {}
            for measure, _ in MEASURES:
                mine = self.results["sauvegarde"].get(measure)
                theirs = self.results[other].get(measure)
                if mine is None or theirs is None:
                    continue
                per[measure] = {
                    attr: ratio(mine.median(attr), theirs.median(attr))
                    for attr in ("wall_s", "maxrss_kib", "cpu_s", "repo_bytes")
                }
            out[f"sauvegarde/{other}"] = per
        return out

    def markdown(self) -> str:
        others = [t for t in self.tools if t != "sauvegarde"] if "sauvegarde" in self.tools else []
        head = ["step", "metric", *self.tools, *(f"sauvegarde/{o}" for o in others)]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
        metrics: list[tuple[str, str, float, str]] = [
            ("wall_s", "wall time (s)", 1.0, "{:.2f}"),
            ("maxrss_kib", "peak RSS (MiB)", 1024.0, "{:.0f}"),
            ("cpu_s", "CPU user+sys (s)", 1.0, "{:.1f}"),
            ("repo_bytes", "repository (MiB)", 2.0**20, "{:.1f}"),
        ]
        for measure, label in MEASURES:
            if not any(measure in self.results[t] for t in self.tools):
                continue
            for attr, metric, scale, fmt in metrics:
                if attr == "repo_bytes" and measure not in BACKUP_MEASURES:
                    continue
                row = [label, metric]
                for tool in self.tools:
                    res = self.results[tool].get(measure)
                    value = res.median(attr) if res else None
                    cell = "n/a" if value is None else fmt.format(value / scale)
                    if res is not None and not res.ok:
                        cell += " (FAILED)"
                    row.append(cell)
                for other in others:
                    mine = self.results["sauvegarde"].get(measure)
                    theirs = self.results[other].get(measure)
                    r = ratio(mine.median(attr) if mine else None, theirs.median(attr) if theirs else None)
                    row.append("n/a" if r is None else f"{r:.2f}")
                lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines) + "\n"


# ----- helpers --------------------------------------------------------------------------------------------------


def sauvegarde_command() -> list[str]:
    script = Path(sys.executable).parent / "sauvegarde"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "sauvegarde.cli.main"]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def read_all(path: Path) -> None:
    """Read every regular file below PATH once (warms the page cache)."""
    if not path.exists():
        return
    files = [path] if path.is_file() else (Path(d) / f for d, _, fs in os.walk(path) for f in fs)
    for file in files:
        with contextlib.suppress(OSError):
            if file.is_symlink() or not file.is_file():
                continue
            with open(file, "rb", buffering=0) as f:
                while f.read(1 << 20):
                    pass


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while buf := f.read(1 << 20):
            h.update(buf)
    return h.hexdigest()


def tree_stats(root: Path) -> dict[str, int]:
    files = symlinks = dirs = size = 0
    for d, dirnames, filenames in os.walk(root):
        for name in dirnames:
            if os.path.islink(os.path.join(d, name)):
                symlinks += 1
            else:
                dirs += 1
        for name in filenames:
            st = os.lstat(os.path.join(d, name))
            if os.path.islink(os.path.join(d, name)):
                symlinks += 1
            else:
                files += 1
                size += st.st_size
    return {"files": files, "symlinks": symlinks, "dirs": dirs, "bytes": size}


def quick_subset(source: Path, target_files: int) -> list[Path]:
    """Subdirectories of SOURCE, in name order, adding up to about TARGET_FILES files."""
    chosen: list[Path] = []
    total = 0
    for sub in sorted(p for p in source.iterdir() if p.is_dir() and not p.is_symlink()):
        n = sum(len(fs) for _, _, fs in os.walk(sub))
        if n == 0 or total + n > target_files * 1.2:
            continue
        chosen.append(sub)
        total += n
        if total >= target_files * 0.9:
            break
    return chosen


def mutate(root: Path, seed: int) -> dict[str, int]:
    """Change about 5% of the regular files below ROOT, deterministically.

    2% get 1-8 KiB appended, 2% get a region of up to 16 KiB rewritten in place (same size), 1% new files
    (two existing files concatenated, so compressible like real data), 0.5% deleted.
    """
    rng = random.Random(seed)
    files = sorted(Path(d) / f for d, _, fs in os.walk(root) for f in fs if not os.path.islink(os.path.join(d, f)))
    n = len(files)
    k_append, k_rewrite, k_add, k_delete = n * 2 // 100, n * 2 // 100, n // 100, max(1, n // 200)
    picked = rng.sample(range(n), k=k_append + k_rewrite + k_delete)
    appended = [files[i] for i in picked[:k_append]]
    rewritten = [files[i] for i in picked[k_append : k_append + k_rewrite]]
    deleted = [files[i] for i in picked[k_append + k_rewrite :]]
    changed_bytes = 0
    for f in appended:
        extra = rng.randbytes(rng.randint(1024, 8192))
        with open(f, "ab") as out:
            out.write(extra)
        changed_bytes += len(extra)
    for f in rewritten:
        data = bytearray(f.read_bytes())
        if not data:
            data = bytearray(rng.randbytes(512))
        length = min(len(data), rng.randint(256, 16384))
        offset = rng.randint(0, len(data) - length)
        data[offset : offset + length] = rng.randbytes(length)
        f.write_bytes(bytes(data))
        changed_bytes += length
    for i in range(k_add):
        a, b = files[rng.randrange(n)], files[rng.randrange(n)]
        new = a.parent / f"bench-new-{i:05d}.dat"
        with contextlib.suppress(OSError):
            content = a.read_bytes() + b.read_bytes()
            new.write_bytes(content)
            changed_bytes += len(content)
    for f in deleted:
        f.unlink()
    return {
        "files_before": n,
        "appended": len(appended),
        "rewritten": len(rewritten),
        "added": k_add,
        "deleted": len(deleted),
        "bytes_written": changed_bytes,
    }


def command_output(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "unknown"


def machine_info(tools: Sequence[str], sauvegarde: Sequence[str], work: Path) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    fs = command_output(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", str(work)])
    versions = {}
    for tool in tools:
        cmd = {"sauvegarde": [*sauvegarde, "--version"], "restic": ["restic", "version"], "borg": ["borg", "--version"]}
        versions[tool] = command_output(cmd[tool])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "filesystem": fs,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_avg_at_start": os.getloadavg(),
        "sauvegarde_commit": command_output(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "sauvegarde_src_dirty": command_output(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "src"]),
    }


def ensure_tools(tools: Sequence[str], need_time: bool) -> None:
    missing = [pkg for tool, pkg in (("restic", "restic"), ("borg", "borgbackup")) if tool in tools]
    missing = [pkg for pkg in missing if shutil.which("borg" if pkg == "borgbackup" else pkg) is None]
    if need_time and not os.access(GNU_TIME, os.X_OK):
        missing.append("time")
    if not missing:
        return
    print(f"installing with apt-get: {' '.join(missing)}", flush=True)
    cmd = ["apt-get", "install", "-y", *missing]
    if subprocess.run(cmd, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, check=True)


def csv_list(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
        return items

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/sauvegarde-bench", help="work directory (data, repositories, logs)")
    parser.add_argument("--tools", type=csv_list(TOOLS), default=list(TOOLS), help="comma list of tools")
    parser.add_argument("--steps", type=csv_list(STEPS), default=list(STEPS), help="comma list of steps")
    parser.add_argument("--repeat", type=int, default=1, help="repeat every step N times, report the median")
    parser.add_argument("--quick", action="store_true", help="about 5,000 files and a 100 MiB file (smoke test)")
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm", help="page cache state before steps")
    parser.add_argument("--source", default="/usr/share", help="tree to copy for the data step")
    parser.add_argument("--big-source", default="/usr/lib/x86_64-linux-gnu", help="directory tarred for 'big'")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per-command timeout in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the repositories after the run")
    parser.add_argument("--json", help="JSON output (default WORK/results.json)")
    parser.add_argument("--markdown", help="Markdown table output (default WORK/results.md)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    steps = set(args.steps)
    for step in list(steps):
        steps.update(PREREQUISITES[step])
    added = sorted(steps - set(args.steps))
    if added:
        print(f"adding prerequisite steps: {', '.join(added)}")
    args.steps = [s for s in STEPS if s in steps]
    args.tools = [t for t in TOOLS if t in args.tools]
    if not args.no_install:
        ensure_tools(args.tools, need_time=True)
    bench = Bench(args)
    started = time.perf_counter()
    try:
        bench.run()
    except KeyboardInterrupt:
        print("interrupted: writing partial results", file=sys.stderr)
    bench.info["total_s"] = round(time.perf_counter() - started, 1)
    bench.info["load_avg_at_end"] = os.getloadavg()
    report = bench.to_json()
    table = bench.markdown()
    json_path = Path(args.json) if args.json else bench.work / "results.json"
    md_path = Path(args.markdown) if args.markdown else bench.work / "results.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    info = bench.info
    header = (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['filesystem']}, "
        f"Linux {info['kernel']}, Python {info['python']}; "
        + "; ".join(info["versions"].values())
        + f". Cache: {info['cache_mode']}. Median of {info['repeat']} run(s). Memory: {info['memory_method']}.\n\n"
    )
    md_path.write_text(header + table)
    print()
    print(header + table)
    print(f"wrote {json_path} and {md_path} (logs in {bench.logs}); total {info['total_s']} s")
    failed = [(t, m) for t, ms in bench.results.items() for m, r in ms.items() if not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
