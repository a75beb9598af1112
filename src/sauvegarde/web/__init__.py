"""The web dashboard (``sauvegarde web``): a face like ``cli/`` and ``server/``, server-rendered, script-free."""
