"""Choosing what a drill restores: a seeded random sample of a snapshot's entries, by bytes.

Files are drawn in a random order (from ``seed``) and taken while they fit in ``fraction`` of the snapshot's bytes;
the smallest remaining ones are added until at least :data:`MIN_FILES` files are in (a drill of a few bytes still
proves something). Symlinks and special files are tiny: a random share of them rides along.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sauvegarde.repository import Node
from sauvegarde.repository.tree import DIR, FILE, SOCKET

MIN_FILES = 3
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_sample(text: str) -> float:
    """``"10%"`` as 0.1; between 0 (exclusive) and 100%."""
    m = _PERCENT.match(text)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise ValueError(f"expected a share such as 10% (more than 0%, at most 100%), got {text!r}")
    return float(m.group(1)) / 100


@dataclass
class Sample:
    """The entries chosen (snapshot paths) and what they weigh, with the size of the whole snapshot."""

    paths: frozenset[bytes]
    files: int
    nbytes: int
    total_files: int
    total_bytes: int
    fraction: float
    seed: int
    nodes: dict[bytes, Node] = field(default_factory=dict, repr=False)


def choose_sample(entries: Iterable[tuple[bytes, Node]], fraction: float, seed: int) -> Sample:
    """Pick entries of a snapshot (``(path, node)`` as :func:`sauvegarde.engine.walk.walk` yields them)."""
    files: list[tuple[bytes, Node]] = []
    others: list[tuple[bytes, Node]] = []
    for path, node in entries:
        if node.type == FILE:
            files.append((path, node))
        elif node.type not in (DIR, SOCKET):
            others.append((path, node))
    total = sum(n.size for _, n in files)
    rng = random.Random(seed)
    order = sorted(files, key=lambda e: e[0])
    rng.shuffle(order)
    budget = fraction * total
    chosen: list[tuple[bytes, Node]] = []
    left: list[tuple[bytes, Node]] = []
    used = 0
    for path, node in order:
        if fraction >= 1 or used + node.size <= budget:
            chosen.append((path, node))
            used += node.size
        else:
            left.append((path, node))
    for path, node in sorted(left, key=lambda e: (e[1].size, e[0]))[: max(0, MIN_FILES - len(chosen))]:
        chosen.append((path, node))
        used += node.size
    others.sort(key=lambda e: e[0])
    extra = others if fraction >= 1 else [e for e in others if rng.random() < max(fraction, 0.05)]
    picked = dict(chosen + extra)
    return Sample(frozenset(picked), len(chosen), used, len(files), total, fraction, seed, picked)
