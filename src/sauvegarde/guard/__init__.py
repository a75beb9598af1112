"""The ransomware guard: signals computed during backup from the blocks the engine already reads, a verdict per
snapshot (clean, suspicious, attack) with its evidence, and the protection of clean history against retention."""
