"""Allow ``python -m sauvegarde``."""

from sauvegarde.cli.main import main

main()
