"""Measure the ransomware guard on real trees: what it detects, what it falsely flags, and what it costs.

Tree (``bench/guard_data.py``): parts of /usr/share and of this Python's site-packages copied as they are, plus a
generated home folder (office documents, PDFs, photos, logs, a git project, vaults); about 33,000 files, 600 MB
(``--quick``: about 3,000). Built once into WORK/base and reused; the working copy is WORK/tree.

Quality (``scenarios``): a repository with a first backup and three quiet days of history (0.5% of files edited a
day: the asset's change-rate baseline); then for each scenario of ``bench/guard_scenarios.py`` (attacks, ordinary
activity, probes of known limits): the scenario is applied to the tree, ``sauvegarde --json backup --guard warn``
runs against the last baseline snapshot and its verdict is read; the scenario's snapshot is forgotten, the tree is
put back from WORK/reference (hard links to WORK/base: files are replaced, never written into), and a backup of the
reverted tree under another host name becomes the next parent (so the next scenario compares with an unchanged tree
and the history stays the quiet days'). The fractions of one attack (1% to 50%) are one attack going on: each step
encrypts more files and is judged against the clean parent, and the tree is put back after the last.

Cost (``cost``): the same tree backed up into fresh repositories with ``--guard off`` and ``--guard enforce``
(first backup, the same again with nothing changed, then after bench/data.py's ~5% changes: the main benchmark's),
interleaved, median of ``--repeat`` runs (wall and user+sys CPU via /usr/bin/time; byte code cached under WORK as
in an installed package); and one py-spy profile of a guarded first backup, from which the guard's share of the
samples is computed (functions in sauvegarde/guard/ and the block sampler).

Output: WORK/guard-results.json and WORK/guard-results.md (tables for docs/guard.md); logs in WORK/logs.

Usage: python -m bench.guard [--quick] [--parts scenarios,cost,profile] [--only NAME,...] [--repeat N] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python bench/guard.py): import the package from the repository root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import guard_data
from bench.data import SEED, mutate, read_all, rmtree, tree_stats
from bench.guard_scenarios import ATTACK, LIMIT, ORDINARY, Scenario, Tree, history_day, scenarios
from bench.measure import Run, have_gnu_time, timed
from bench.report import fmt_load, machine_info
from bench.tools import sauvegarde_command

PASSWORD = "bench-password-not-secret"
CHEAP_KDF = ("--kdf-memory", "64", "--kdf-iterations", "1")  # init is not measured; the default KDF takes seconds
EXIT_SUSPICIOUS = 4
FLAGGED = ("suspicious", "attack")
PARTS = ("scenarios", "cost", "profile")
HISTORY_DAYS = 3


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/sauvegarde-guard-bench", help="work directory (tree, repositories, logs)")
    p.add_argument("--quick", action="store_true", help="about 3,000 files (a smoke test, not for the docs)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    p.add_argument("--only", default="", help="comma list of scenario names or globs (default: all)")
    p.add_argument("--repeat", type=int, default=3, help="runs per cost measurement (median)")
    p.add_argument("--timeout", type=float, default=1800.0, help="per-command timeout in seconds")
    p.add_argument("--keep", action="store_true", help="keep repositories and the working tree")
    args = p.parse_args(argv)
    args.parts = [x for x in args.parts.split(",") if x]
    if bad := [x for x in args.parts if x not in PARTS]:
        p.error(f"unknown part(s) {', '.join(bad)}")
    args.only = [x for x in args.only.split(",") if x]
    return args


class GuardBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work).resolve()
        self.base = self.work / "base"
        self.tree = Tree(self.work / "tree", self.work / "reference")
        self.repos = self.work / "repos"
        self.logs = self.work / "logs"
        self.sv = sauvegarde_command()
        # byte code cached (outside the source tree) as in an installed package: with PYTHONDONTWRITEBYTECODE every
        # run compiles the modules it imports, which would count the guard's modules' compilation as its cost
        drop = ("SAUVEGARDE_", "PYTHONDONTWRITEBYTECODE")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        self.env.update(
            PYTHONPYCACHEPREFIX=str(self.work / "pycache"),
            SAUVEGARDE_PASSWORD=PASSWORD,
            XDG_STATE_HOME=str(self.work / "state"),
            XDG_CACHE_HOME=str(self.work / "cache"),
            XDG_CONFIG_HOME=str(self.work / "config"),
            LC_ALL="C.UTF-8",
        )
        self.info: dict[str, Any] = {}
        self.results: list[dict[str, Any]] = []
        self.cost: dict[str, Any] = {}
        self.profile: dict[str, Any] = {}
        self._n = 0

    # ---- commands ----------------------------------------------------------------------------------------------

    def run(self, label: str, cmd: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[Run, list[dict[str, Any]]]:
        """Run and time CMD (log in WORK/logs); returns the run and the JSON messages it printed."""
        self._n += 1
        log = self.logs / f"{self._n:03d}-{label}.log"
        run = timed(log, cmd, self.env, self.args.timeout)
        rc = int(run.note.split(":")[0].removeprefix("exit ")) if run.note.startswith("exit ") else 0
        if rc in ok_codes:
            run.ok, run.note = True, ""
        messages = []
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    messages.append(json.loads(line))
        if not run.ok:
            raise RuntimeError(f"{label} failed: {run.note} (see {log})")
        return run, messages

    def init(self, repo: Path) -> None:
        rmtree(repo)
        repo.parent.mkdir(parents=True, exist_ok=True)
        self.run(f"init-{repo.name}", [*self.sv, "-q", "-r", str(repo), "init", *CHEAP_KDF])

    def backup(
        self, label: str, repo: Path, mode: str, host: str = "bench", parent: str | None = None
    ) -> tuple[Run, dict[str, Any]]:
        cmd = [*self.sv, "-r", str(repo), "--json", "backup", "--guard", mode, "--host", host]
        if parent:
            cmd += ["--parent", parent]
        run, messages = self.run(label, [*cmd, str(self.tree.root)], ok_codes=(0, EXIT_SUSPICIOUS))
        summary = next((m for m in reversed(messages) if m.get("message_type") == "summary"), None)
        if summary is None:
            raise RuntimeError(f"{label}: no summary in the output")
        return run, summary

    def fresh_tree(self) -> None:
        """The working tree (a real copy: scenarios write into files) and this run's reference copy (hard links to
        the built tree: reverting and committing replace files, they never write into them)."""
        for path in (self.tree.root, self.tree.base):
            rmtree(path)
        subprocess.run(["cp", "-a", str(self.base), str(self.tree.root)], check=True)
        subprocess.run(["cp", "-al", str(self.base), str(self.tree.base)], check=True)

    # ---- quality ------------------------------------------------------------------------------------------------

    def selected(self) -> list[Scenario]:
        out = scenarios()
        if self.args.only:
            out = [s for s in out if any(fnmatch.fnmatch(s.name, pat) or s.name == pat for pat in self.args.only)]
        return out

    def quality(self) -> None:
        repo = self.repos / "guard"
        self.init(repo)
        self.fresh_tree()
        _, first = self.backup("first", repo, "warn")
        print(f"  first backup: {first['files_new']} files, guard {first['guard']['verdict']}", flush=True)
        self.tree.record()
        parent = first["snapshot_id"]
        for day in range(1, HISTORY_DAYS + 1):
            history_day(self.tree, random.Random(f"{SEED}-history-{day}"), day)
            _, s = self.backup(f"history-{day}", repo, "warn")
            self.tree.commit()
            self.tree.record()
            parent = s["snapshot_id"]
            print(f"  history day {day}: change rate {s['guard']['stats']['change_rate']}", flush=True)
        for sc in self.selected():
            info = sc.apply(self.tree, random.Random(f"{SEED}-{sc.name}"))
            undo = info.pop("undo_renames", [])
            run, s = self.backup(sc.name, repo, "warn", parent=parent)
            g = s["guard"]
            self.run(f"forget-{sc.name}", [*self.sv, "-q", "-r", str(repo), "forget", "--force", s["snapshot_id"]])
            reverted = 0
            if sc.revert:
                reverted, copied = self.tree.revert(undo)
                if copied:  # files put back have a new inode and ctime: a backup of them is the next parent
                    _, rebase = self.backup(f"revert-{sc.name}", repo, "warn", host="rebase", parent=parent)
                    parent = rebase["snapshot_id"]
                self.tree.record()
            row = {
                "name": sc.name,
                "group": sc.group,
                "what": sc.what,
                "info": info,
                "verdict": g["verdict"],
                "score": g["score"],
                "summary": g["summary"],
                "rules": g["rules"],
                "files_flagged": g["stats"]["files_flagged"],
                "files_checked": g["stats"]["files_checked"],
                "change_rate": g["stats"]["change_rate"],
                "baseline": g["stats"]["baseline"],
                "examples": [f"{f['path'].split('/tree/', 1)[-1]}: {', '.join(f['rules'])}" for f in g["files"][:5]],
                "dirs": [d["path"].split("/tree/", 1)[-1] + f" ({d['rule']})" for d in g["dirs"][:3]],
                "files_new": s["files_new"],
                "files_changed": s["files_changed"],
                "backup_s": run.wall_s,
                "reverted": reverted,
            }
            self.results.append(row)
            print(
                f"  {sc.group:<8} {sc.name:<28} {g['verdict']:<10} flagged {row['files_flagged']:>5}"
                f" of {row['files_checked']:>5} checked  rules {json.dumps(g['rules'])}",
                flush=True,
            )

    # ---- cost ---------------------------------------------------------------------------------------------------

    def timed_backup(self, label: str, repo: Path, mode: str) -> Run:
        read_all(self.tree.root)
        subprocess.run(["sync"], check=False)
        cmd = [*self.sv, "-q", "-r", str(repo), "backup", "--guard", mode, str(self.tree.root)]
        return self.run(label, cmd, ok_codes=(0, EXIT_SUSPICIOUS))[0]

    def measure_cost(self) -> None:
        if not self.tree.root.is_dir():
            self.fresh_tree()
        self.tree.record()
        runs: dict[str, dict[str, list[Run]]] = {"first": {}, "unchanged": {}, "changed": {}}
        verdicts: list[str] = []
        for rep in range(self.args.repeat):
            order = ("off", "enforce") if rep % 2 == 0 else ("enforce", "off")
            for mode in order:
                self.init(self.repos / f"cost-{mode}")
            for step in ("first", "unchanged"):
                for mode in order:
                    r = self.timed_backup(f"cost-{step}-{mode}-{rep}", self.repos / f"cost-{mode}", mode)
                    runs[step].setdefault(mode, []).append(r)
                    print(f"  {step:<9} --guard {mode:<7} {r.wall_s:7.2f} s wall {r.cpu_s:7.2f} s CPU", flush=True)
            changes = mutate(self.tree.root, SEED)
            self.info["cost_changes"] = changes
            for mode in order:
                r = self.timed_backup(f"cost-changed-{mode}-{rep}", self.repos / f"cost-{mode}", mode)
                runs["changed"].setdefault(mode, []).append(r)
                print(f"  changed   --guard {mode:<7} {r.wall_s:7.2f} s wall {r.cpu_s:7.2f} s CPU", flush=True)
            verdicts.append(self.last_verdict(self.repos / "cost-enforce"))
            self.tree.revert()
            self.tree.record()
        for step, by_mode in runs.items():
            row: dict[str, Any] = {}
            for mode, rs in by_mode.items():
                row[mode] = {
                    "wall_s": statistics.median(r.wall_s for r in rs),
                    "cpu_s": statistics.median(r.cpu_s for r in rs),
                    "runs": [{"wall_s": r.wall_s, "cpu_s": r.cpu_s, "maxrss_kib": r.maxrss_kib} for r in rs],
                }
            for attr in ("wall_s", "cpu_s"):
                off, on = row["off"][attr], row["enforce"][attr]
                row[f"overhead_{attr}"] = round(100 * (on - off) / off, 1) if off else None
            self.cost[step] = row
        self.cost["changed_verdicts"] = verdicts

    def last_verdict(self, repo: Path) -> str:
        _, messages = self.run("guard-show", [*self.sv, "-r", str(repo), "--json", "guard", "show", "latest"])
        g = messages[-1].get("guard") if messages else None
        return str(g.get("verdict")) if isinstance(g, dict) else "unchecked"

    def measure_profile(self) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.access(spy, os.X_OK):
            print("  py-spy not found (pip install py-spy): no profile", file=sys.stderr)
            self.profile = {"error": "py-spy not installed"}
            return
        if not self.tree.root.is_dir():
            self.fresh_tree()
        repo = self.repos / "profile"
        self.init(repo)
        raw = self.work / "guard-profile.txt"
        read_all(self.tree.root)
        cmd = [spy, "record", "--rate", "200", "--format", "raw", "--output", str(raw), "--",
               *self.sv, "-q", "-r", str(repo), "backup", "--guard", "enforce", str(self.tree.root)]  # fmt: skip
        run, _ = self.run("profile", cmd, ok_codes=(0, EXIT_SUSPICIOUS))
        self.profile = guard_share(raw) | {"wall_s": run.wall_s, "raw": str(raw)}
        print(f"  profile: guard {self.profile['guard_pct']}% of {self.profile['samples']} samples", flush=True)

    # ---- driver -------------------------------------------------------------------------------------------------

    def main(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        for path in (self.repos, self.logs, self.work / "state", self.work / "cache"):
            rmtree(path)
        self.info.update(machine_info({"sauvegarde": [*self.sv, "--version"]}, self.work))
        self.info["gnu_time"] = have_gnu_time()
        started = time.perf_counter()
        print("== tree", flush=True)
        self.info["tree_source"] = guard_data.ensure_base(self.base, self.args.quick)
        self.info["tree"] = tree_stats(self.base)
        self.info["build_s"] = round(time.perf_counter() - started, 1)
        t = self.info["tree"]
        print(f"  {t['files']} files, {t['dirs']} dirs, {t['bytes'] / 2**20:.0f} MiB", flush=True)
        if "scenarios" in self.args.parts:
            print("== scenarios", flush=True)
            self.quality()
        if "cost" in self.args.parts:
            print("== cost", flush=True)
            self.measure_cost()
        if "profile" in self.args.parts:
            print("== profile", flush=True)
            self.measure_profile()
        self.info["total_s"] = round(time.perf_counter() - started, 1)
        self.info["load_avg_at_end"] = os.getloadavg()
        if not self.args.keep:
            for path in (self.repos, self.tree.root, self.tree.base):
                rmtree(path)


def guard_share(raw: Path) -> dict[str, Any]:
    """From py-spy's raw (collapsed) stacks: the share of samples inside the guard, and its top functions."""
    total = guard = 0
    top: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        inside = [f for f in frames if "sauvegarde/guard/" in f or "engine/observe.py" in f]
        if inside:
            guard += n
            top[inside[-1].split(" (")[0] + " (" + inside[-1].split(" (")[-1]] += n
    return {
        "samples": total,
        "guard_samples": guard,
        "guard_pct": round(100 * guard / total, 2) if total else None,
        "top": [[f, round(100 * n / total, 2)] for f, n in top.most_common(8)] if total else [],
    }


# ---- report ---------------------------------------------------------------------------------------------------


def rate(rows: list[dict[str, Any]], flagged: bool) -> tuple[int, int]:
    hit = sum(1 for r in rows if (r["verdict"] in FLAGGED) == flagged)
    return hit, len(rows)


def report(b: GuardBench) -> str:
    info = b.info
    t = info["tree"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['filesystem']}, "
        f"Linux {info['kernel']}, Python {info['python']}; {info['versions']['sauvegarde']} "
        f"(commit {info['sauvegarde_commit']}{', src modified' if info['sauvegarde_src_dirty'] else ''}). "
        f"Date {info['date']}. Load average {fmt_load(info.get('load_avg_at_start'))} at the start, "
        f"{fmt_load(info.get('load_avg_at_end'))} at the end; total {info['total_s']} s.",
        "",
        f"Tree: {t['files']} files, {t['dirs']} folders, {t['symlinks']} symlinks, {t['bytes'] / 2**20:.0f} MiB "
        f"({'quick subset' if info['tree_source'].get('quick') else 'full'}: /usr/share parts, "
        f"{info['tree_source'].get('python')}, a generated home folder).",
        "",
    ]
    rows = b.results
    if rows:
        attacks = [r for r in rows if r["group"] == ATTACK]
        ordinary = [r for r in rows if r["group"] == ORDINARY]
        limits = [r for r in rows if r["group"] == LIMIT]
        hit, n = rate(attacks, True)
        fa, m = rate(ordinary, True)
        full = sum(1 for r in attacks if r["verdict"] == "attack")
        lines += [
            f"Detection: {hit}/{n} attacks flagged ({full} as attack, {hit - full} as suspicious); "
            f"false alarms: {fa}/{m} ordinary activities flagged.",
            "",
        ]
        for title, group in (("Attacks", attacks), ("Ordinary activity", ordinary), ("Known limits", limits)):
            if not group:
                continue
            lines += [f"#### {title}", "", "| scenario | what | files touched | verdict | flagged / checked | rules |",
                      "|---|---|---:|---|---:|---|"]  # fmt: skip
            for r in group:
                touched = r["info"].get("victims") or (r["files_new"] + r["files_changed"])
                rules = ", ".join(f"{k} {v}" for k, v in sorted(r["rules"].items(), key=lambda kv: -kv[1])) or "-"
                lines.append(
                    f"| {r['name']} | {r['what']} | {touched} | **{r['verdict']}** | "
                    f"{r['files_flagged']} / {r['files_checked']} | {rules} |"
                )
            lines.append("")
    if b.cost:
        lines += [
            f"#### Cost (median of {b.args.repeat}; wall and user+sys CPU of the backup process)",
            "",
            "| backup | guard off: wall s | enforce: wall s | wall overhead | off: CPU s | enforce: CPU s "
            "| CPU overhead |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for step, label in (
            ("first", "first backup"),
            ("unchanged", "nothing changed"),
            ("changed", "after ~5% changes"),
        ):
            c = b.cost[step]
            lines.append(
                f"| {label} | {c['off']['wall_s']:.2f} | {c['enforce']['wall_s']:.2f} | {c['overhead_wall_s']:+.1f}% "
                f"| {c['off']['cpu_s']:.2f} | {c['enforce']['cpu_s']:.2f} | {c['overhead_cpu_s']:+.1f}% |"
            )
        lines += ["", f"Verdicts of the guarded re-backups: {', '.join(b.cost['changed_verdicts'])}.", ""]
    if b.profile.get("samples"):
        top = "; ".join(f"{f} {p}%" for f, p in b.profile["top"][:5])
        lines += [
            f"Profile (py-spy, 200 Hz, guarded first backup, all threads): guard {b.profile['guard_pct']}% of "
            f"{b.profile['samples']} samples. Top guard functions: {top}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    b = GuardBench(args)
    try:
        b.main()
    finally:
        b.info.setdefault("total_s", None)
        b.info.setdefault("load_avg_at_end", os.getloadavg())
        out = {"info": b.info, "scenarios": b.results, "cost": b.cost, "profile": b.profile}
        (b.work / "guard-results.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
        if b.info.get("tree"):
            text = report(b)
            (b.work / "guard-results.md").write_text(text)
            print()
            print(text)
        print(f"wrote {b.work}/guard-results.json and .md (logs in {b.logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
