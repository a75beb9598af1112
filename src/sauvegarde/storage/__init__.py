"""Storage backends: move bytes by name, nothing more. See :mod:`sauvegarde.storage.base` for the contract."""

from sauvegarde.storage.base import ObjectInfo, Storage
from sauvegarde.storage.registry import open_storage

__all__ = ["ObjectInfo", "Storage", "open_storage"]
