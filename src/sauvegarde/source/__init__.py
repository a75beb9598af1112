"""What is read: file-system entries and their metadata, and the exclude rules that filter them."""

from sauvegarde.source.excludes import Excluder
from sauvegarde.source.metadata import node_from_stat

__all__ = ["Excluder", "node_from_stat"]
