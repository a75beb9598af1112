"""Allow ``python -m sauvegarde``."""

from sauvegarde.cli.main import run

run()
