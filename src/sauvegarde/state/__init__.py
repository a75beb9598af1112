"""The local state database: history of plan runs and their steps, drills; rebuildable, never the source of truth."""
