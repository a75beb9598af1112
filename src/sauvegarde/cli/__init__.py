"""The ``sauvegarde`` command: one module per command, a shared context for repository and password."""
