"""Benchmark data and file-system helpers: the copied tree, the quick subset, the seeded 5% mutation, the big file,
tree statistics, page-cache warming and dropping, and repository sizes on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

SEED = 20240601
QUICK_FILES = 5000
QUICK_BIG_BYTES = 100 * 1024 * 1024


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def file_bytes(path: Path) -> int:
    """Total size of the regular files below PATH (unlike ``du -sb``, directory entries do not count)."""
    total = 0
    for d, _, fs in os.walk(path):
        for f in fs:
            st = os.lstat(os.path.join(d, f))
            if not os.path.islink(os.path.join(d, f)):
                total += st.st_size
    return total


def _regular_files(path: Path) -> Iterator[Path]:
    """PATH if it is a regular file, else every regular file below it (symlinks not followed)."""
    if not path.exists():
        return
    files = [path] if path.is_file() else (Path(d) / f for d, _, fs in os.walk(path) for f in fs)
    for file in files:
        with contextlib.suppress(OSError):
            if not file.is_symlink() and file.is_file():
                yield file


def read_all(path: Path) -> None:
    """Read every regular file below PATH once (warms the page cache)."""
    for file in _regular_files(path):
        with contextlib.suppress(OSError), open(file, "rb", buffering=0) as f:
            while f.read(1 << 20):
                pass


def forget_cached(path: Path) -> None:
    """Drop the page cache of every regular file below PATH (once synced, its pages are clean and simply go).

    Restored trees stay on disk until the end of a run (see Steps.restore), and by the last repetitions their
    cached pages (about 15 GB in a full run) left so little free memory that every write had to reclaim first:
    a big file restore took twice the CPU time in the second and third repetitions, for every tool.
    """
    for file in _regular_files(path):
        with contextlib.suppress(OSError):
            fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


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


def copy_tree(source: Path, tree: Path, quick: bool) -> list[Path] | None:
    """Copy SOURCE to TREE with ``cp -a`` (in quick mode only a subset of its subdirectories, which are returned)."""
    if quick:
        tree.mkdir()
        chosen = quick_subset(source, QUICK_FILES)
        subprocess.run(["cp", "-a", *map(str, chosen), str(tree)], check=True)
        return chosen
    subprocess.run(["cp", "-a", str(source), str(tree)], check=True)
    return None


def make_big_file(target: Path, source: str, quick: bool) -> int:
    """A tar of SOURCE at TARGET (its first QUICK_BIG_BYTES in quick mode), kept between runs; returns its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        part = target.with_suffix(".part")
        if quick:
            with open(part, "wb") as out:
                tar = subprocess.Popen(["tar", "cf", "-", source], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                assert tar.stdout is not None
                left = QUICK_BIG_BYTES
                while left > 0 and (buf := tar.stdout.read(min(left, 1 << 20))):
                    out.write(buf)
                    left -= len(buf)
                tar.kill()
                tar.wait()
        else:
            subprocess.run(["tar", "cf", str(part), source], check=True, stderr=subprocess.DEVNULL)
        part.rename(target)
    return target.stat().st_size


def _like_real_data(rng: random.Random, files: list[Path], length: int) -> bytes:
    """LENGTH bytes cut from a random file of the tree (another one if it is empty or unreadable)."""
    for _ in range(100):
        try:
            data = rng.choice(files).read_bytes()
        except OSError:
            continue
        if data:
            while len(data) < length:
                data += data
            start = rng.randint(0, len(data) - length)
            return data[start : start + length]
    return bytes(length)


def mutate(root: Path, seed: int) -> dict[str, int]:
    """Change about 5% of the regular files below ROOT, deterministically.

    2% get 1-8 KiB appended, 2% get a region of up to 16 KiB rewritten in place (same size), 1% new files
    (two existing files concatenated), 0.5% deleted. Appended and rewritten bytes are taken from other files of
    the tree, so they compress like real edits (random bytes would also look like encryption to sauvegarde's
    ransomware guard, which flags them: exit 4).
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
        extra = _like_real_data(rng, files, rng.randint(1024, 8192))
        with open(f, "ab") as out:
            out.write(extra)
        changed_bytes += len(extra)
    for f in rewritten:
        data = bytearray(f.read_bytes())
        if not data:
            data = bytearray(_like_real_data(rng, files, 512))
        length = min(len(data), rng.randint(256, 16384))
        offset = rng.randint(0, len(data) - length)
        data[offset : offset + length] = _like_real_data(rng, files, length)
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


def space_kept(tree_bytes: int, big_bytes: int, repeat: int, tree_restores: int, big_restores: int) -> int:
    """Bytes a benchmark run keeps in its work directory until it ends (see bench.steps.Bench.run): per repetition
    a copy of the tree, each restore of the tree and each restore of the big file. The repositories come on top,
    but not every restore keeps all its bytes at once: for 3 repetitions on /usr/share this says 17 GB, the run
    kept about 14 GB in its restores and copies."""
    per_repetition = tree_bytes * (1 + tree_restores) + big_bytes * big_restores
    return per_repetition * repeat
