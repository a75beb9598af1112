"""``sauvegarde mount``: serve a repository's snapshots as a read-only FUSE file system.

The file-system operations live in :mod:`sauvegarde.mount.operations` and only translate FUSE calls to the
:class:`~sauvegarde.engine.browse.Browser`; this module finds the FUSE library (``mfusepy`` over libfuse 3, an
optional dependency: ``pip install 'sauvegarde[mount]'``) and runs the mount in the foreground until it is
unmounted or interrupted, after which libfuse has already unmounted it.
"""

from __future__ import annotations

import os
from types import ModuleType

from sauvegarde.engine.browse import Browser
from sauvegarde.errors import SauvegardeError
from sauvegarde.mount.operations import SnapshotFS

__all__ = ["SnapshotFS", "load_fuse", "serve"]


def load_fuse() -> ModuleType:
    """The ``mfusepy`` module bound to libfuse 3; a one-line error saying what to install when either is missing."""
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # mfusepy would prefer libfuse 2 if both are installed
    try:
        import mfusepy
    except ImportError:
        raise SauvegardeError(
            "mount needs the mfusepy package: pip install 'sauvegarde[mount]' (and libfuse 3: apt-get install fuse3)"
        ) from None
    except (OSError, AttributeError) as exc:
        raise SauvegardeError(f"mount needs libfuse 3 ({exc}): apt-get install fuse3 (Debian/Ubuntu)") from None
    module: ModuleType = mfusepy
    return module


def serve(browser: Browser, mountpoint: str, allow_other: bool = False, debug: bool = False) -> None:
    """Mount at ``mountpoint`` and serve requests until unmounted (``fusermount3 -u``), SIGINT or SIGTERM."""
    fuse = load_fuse()
    ops = SnapshotFS(browser)
    try:
        fuse.FUSE(
            ops,
            mountpoint,
            foreground=True,
            debug=debug,
            ro=True,
            fsname="sauvegarde",
            subtype="sauvegarde",
            kernel_cache=True,  # snapshot content never changes
            allow_other=allow_other,
        )
    except RuntimeError as exc:
        if ops.mounted:
            return  # libfuse ends its loop with an error status when a signal (Ctrl-C, SIGTERM) stops it
        # libfuse has printed why on stderr
        raise SauvegardeError(f"cannot mount at {mountpoint} (libfuse status {exc})") from None
