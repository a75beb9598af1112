"""Sauvegarde: backup and disaster recovery with deduplicated, compressed, encrypted snapshots."""

__version__ = "0.1.0"
