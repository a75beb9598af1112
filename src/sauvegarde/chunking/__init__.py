"""Content-defined chunking with FastCDC, seeded per repository so cut points reveal nothing across repos."""

from sauvegarde.chunking.fastcdc import Chunker, ChunkerParams

__all__ = ["Chunker", "ChunkerParams"]
