"""The scratch directory a drill restores into: private, under the cache directory, and always removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator

from sauvegarde.util import xdg


def scratch_root() -> str:
    """``$XDG_CACHE_HOME/sauvegarde/drills`` (made private), else the system's temporary directory."""
    root = os.path.join(xdg.cache_dir(), "drills")
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except OSError:
        return tempfile.gettempdir()
    return root


def remove_tree(path: str) -> None:
    """Remove ``path`` even when the restore left read-only directories in it (mode 0o500, 0o000...)."""

    def retry(func: object, failed: str, _exc: object) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
                shutil.rmtree(failed, onerror=retry)
            else:
                os.unlink(failed)

    if os.path.lexists(path):
        for dirpath, dirnames, _ in os.walk(path):
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if not os.path.islink(full):
                    with contextlib.suppress(OSError):
                        os.chmod(full, stat.S_IRWXU)
        shutil.rmtree(path, onerror=retry)


@contextlib.contextmanager
def scratch_dir(root: str | None = None) -> Iterator[str]:
    """A new private directory for one drill; removed on the way out, whatever happened inside."""
    path = tempfile.mkdtemp(prefix="drill-", dir=root or scratch_root())
    try:
        yield path
    finally:
        remove_tree(path)
