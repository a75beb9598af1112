"""Allow ``python -m sauvegarde``."""

from sauvegarde.cli.entry import run

run()
