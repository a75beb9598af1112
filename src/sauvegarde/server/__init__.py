"""The repository server (``sauvegarde serve``): restic's REST backend protocol over a directory of repositories.

A face like ``cli/``: it parses HTTP and serves bytes from a directory; the repository format stays on the clients.
"""
