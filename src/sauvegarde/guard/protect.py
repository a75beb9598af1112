"""Protection of the history against retention once the guard has flagged a snapshot.

While a group of snapshots (an asset: same host and paths) holds a suspicious or attack snapshot that no operator
has released, nothing of the group is removed: the suspect snapshots are evidence, the newest clean snapshots
before each are the restore points, and older ones may be the only clean copies if the attack began earlier than
it was detected. ``forget`` by ID refuses the suspects and their last clean predecessors unless forced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sauvegarde.engine.retention import Decision, group_snapshots
from sauvegarde.guard.guard import is_suspect, verdict_of
from sauvegarde.repository import Snapshot

KEEP_CLEAN = 3  # newest clean snapshots before a suspect that are protected by ID too


def protection(snapshots: Sequence[Snapshot], keep_clean: int = KEEP_CLEAN) -> dict[str, str]:
    """For one group of snapshots, the IDs that must not be removed and why (empty when no suspect)."""
    ordered = sorted(snapshots, key=lambda s: (s.datetime, s.id))
    suspects = [s for s in ordered if is_suspect(s)]
    if not suspects:
        return {}
    reasons: dict[str, str] = {}
    for x in suspects:
        reasons[x.id] = f"suspicious: {verdict_of(x)}, kept as evidence until guard release"
    for x in reversed(suspects):
        before = [s for s in ordered if s.datetime < x.datetime and not is_suspect(s)]
        for s in before[-keep_clean:]:
            reasons.setdefault(s.id, f"protected: last clean before suspicious snapshot {x.short_id}")
    first = suspects[0]
    for s in ordered:
        reasons.setdefault(s.id, f"protected: group under suspicion since snapshot {first.short_id} (guard release)")
    return reasons


def protect_decisions(decisions: list[Decision], keep_clean: int = KEEP_CLEAN) -> list[Decision]:
    """A retention policy's decisions for one group, with protected snapshots kept and the reason added."""
    reasons = protection([d.snapshot for d in decisions], keep_clean)
    if not reasons:
        return decisions
    out = []
    for d in decisions:
        why = reasons.get(d.snapshot.id)
        if why is None or (d.keep and not why.startswith("suspicious")):
            out.append(d)
        else:
            out.append(Decision(d.snapshot, True, (*d.reasons, why)))
    return out


def protected_ids(
    snapshots: Iterable[Snapshot], group_by: Iterable[str], keep_clean: int = KEEP_CLEAN
) -> dict[str, str]:
    """Over all groups: the suspects and the last ``keep_clean`` clean snapshots before each (for forget by ID)."""
    out: dict[str, str] = {}
    for group in group_snapshots(snapshots, group_by):
        for sid, why in protection(group.snapshots, keep_clean).items():
            if not why.startswith("protected: group"):
                out[sid] = why
    return out
