"""Reporting: the machine description, the JSON report (every run, medians, ratios) and the Markdown table.

Ratios are sauvegarde / other tool, so below 1 means sauvegarde is faster, lighter or smaller, except for the
throughput (MiB/s), where above 1 means sauvegarde is faster.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.measure import Result

REPO_ROOT = Path(__file__).resolve().parent.parent

# Timed measurements, in table order: (key, label).
MEASURES = (
    ("first", "first backup"),
    ("unchanged", "unchanged backup"),
    ("changed", "backup after ~5% changed"),
    ("restore", "restore latest"),
    ("check", "check, reading all data"),
    ("big-backup", "big file backup"),
    ("big-restore", "big file restore"),
    ("s3-backup", "S3 first backup"),
    ("s3-restore", "S3 restore latest"),
)
BACKUP_MEASURES = {"first", "unchanged", "changed", "big-backup", "s3-backup"}
THROUGHPUT_MEASURES = {"check", "s3-backup", "s3-restore"}
S3_MEASURES = {"s3-backup", "s3-restore"}
# (attribute, label, scale, format, measures it applies to or None for all)
METRICS: tuple[tuple[str, str, float, str, set[str] | None], ...] = (
    ("wall_s", "wall time (s)", 1.0, "{:.2f}", None),
    ("maxrss_kib", "peak RSS (MiB)", 1024.0, "{:.0f}", None),
    ("cpu_s", "CPU user+sys (s)", 1.0, "{:.1f}", None),
    ("server_cpu_s", "S3 server CPU (s)", 1.0, "{:.2f}", S3_MEASURES),
    ("mib_s", "throughput (MiB/s)", 1.0, "{:.1f}", THROUGHPUT_MEASURES),
    ("repo_bytes", "repository (MiB)", 2.0**20, "{:.1f}", BACKUP_MEASURES),
)

Results = Mapping[str, Mapping[str, Result]]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def ratios(tools: Sequence[str], results: Results) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    if "sauvegarde" not in results:
        return out
    for other in (t for t in tools if t != "sauvegarde"):
        per: dict[str, dict[str, float | None]] = {}
        for measure, _ in MEASURES:
            mine = results["sauvegarde"].get(measure)
            theirs = results[other].get(measure)
            if mine is None or theirs is None:
                continue
            per[measure] = {attr: ratio(mine.median(attr), theirs.median(attr)) for attr, *_ in METRICS}
        out[f"sauvegarde/{other}"] = per
    return out


def to_json(
    tools: Sequence[str], results: Results, inits: Mapping[str, list[float]], info: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool, measures in results.items():
        out[tool] = {}
        for measure, res in measures.items():
            out[tool][measure] = {
                "ok": res.ok,
                **{f"median_{attr}": res.median(attr) for attr, *_ in METRICS},
                "runs": [asdict(r) for r in res.runs],
            }
    init_medians = {t: statistics.median(v) if v else None for t, v in inits.items()}
    return {"info": info, "init_wall_s_median": init_medians, "results": out, "ratios": ratios(tools, results)}


def markdown(tools: Sequence[str], results: Results) -> str:
    others = [t for t in tools if t != "sauvegarde"] if "sauvegarde" in tools else []
    head = ["step", "metric", *tools, *(f"sauvegarde/{o}" for o in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for measure, label in MEASURES:
        if not any(measure in results[t] for t in tools):
            continue
        for attr, metric, scale, fmt, only in METRICS:
            if only is not None and measure not in only:
                continue
            row = [label, metric]
            for tool in tools:
                res = results[tool].get(measure)
                value = res.median(attr) if res else None
                cell = "n/a" if value is None else fmt.format(value / scale)
                if res is not None and not res.ok:
                    cell += " (FAILED)"
                row.append(cell)
            for other in others:
                mine = results["sauvegarde"].get(measure)
                theirs = results[other].get(measure)
                r = ratio(mine.median(attr) if mine else None, theirs.median(attr) if theirs else None)
                row.append("n/a" if r is None else f"{r:.2f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def header(info: Mapping[str, Any]) -> str:
    """The line above the table: machine, versions, cache mode, repetitions, memory method."""
    quick = " Quick mode (--quick): a smoke test, not comparable with full runs." if info.get("quick") else ""
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['filesystem']}, "
        f"Linux {info['kernel']}, Python {info['python']}; "
        + "; ".join(info["versions"].values())
        + f". Cache: {info['cache_mode']}. Median of {info['repeat']} run(s). Memory: {info['memory_method']}."
        + f" Load average {fmt_load(info.get('load_avg_at_start'))} at the start,"
        + f" {fmt_load(info.get('load_avg_at_end'))} at the end."
        + (
            f" Restores waited {info.get('restore_wait_s', 0):.0f} s in all for the file system to forget recent"
            " deletions (ext4 without a journal, bench/settle.py)."
            if info.get("restores_wait_for_deletions")
            else ""
        )
        + f"{quick}\n\n"
    )


def fmt_load(load: Sequence[float] | None) -> str:
    return "/".join(f"{x:.1f}" for x in load) if load else "unknown"


def command_output(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "unknown"


def machine_info(versions: Mapping[str, Sequence[str]], work: Path) -> dict[str, Any]:
    """CPU, cores, RAM, file system of WORK, kernel, Python, tool versions (VERSIONS: tool -> version command)."""
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
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "filesystem": fs,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {tool: command_output(cmd) for tool, cmd in versions.items()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_avg_at_start": os.getloadavg(),
        "sauvegarde_commit": command_output(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"]),
        "sauvegarde_src_dirty": command_output(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "src"]),
    }
