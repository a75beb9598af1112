"""Restore drills: restore (a sample of) an asset's latest snapshot, verify it, measure it, judge it against the RTO."""
