"""The on-storage format (see docs/format.md) and the :class:`Repository` facade the engine works through."""

from sauvegarde.repository.repo import Repository
from sauvegarde.repository.snapshot import Snapshot
from sauvegarde.repository.tree import Node, Tree

__all__ = ["Node", "Repository", "Snapshot", "Tree"]
