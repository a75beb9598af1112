"""Operations on repositories: backup, restore, listing, diff. The engine never prints; it emits events."""
