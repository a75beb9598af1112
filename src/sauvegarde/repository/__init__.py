"""The on-storage format (see docs/format.md) and the :class:`Repository` facade the engine works through.

The names below are imported on first use (PEP 562), not with the package: a light module of it (``layout``,
``keyfile``) can then be imported alone, as the CLI does to derive the key before the rest is loaded
(:mod:`sauvegarde.cli.entry`).
"""

from __future__ import annotations

from sauvegarde.util.lazy import lazy_names

TYPE_CHECKING = False  # typing itself is imported after the key derivation (sauvegarde.cli.entry)

if TYPE_CHECKING:
    from sauvegarde.repository.repo import Repository
    from sauvegarde.repository.snapshot import Snapshot
    from sauvegarde.repository.tree import Node, Tree

__all__ = ["Node", "Repository", "Snapshot", "Tree"]

_HOME = {"Node": "tree", "Repository": "repo", "Snapshot": "snapshot", "Tree": "tree"}

__getattr__ = lazy_names(__name__, _HOME)
