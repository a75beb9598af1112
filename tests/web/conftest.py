"""Fixtures for the dashboard tests (the site they use is built by :mod:`web_site`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from web_site import Site, make_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def site_env(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The site, with this process's environment set as the CLI's (password, XDG state directory)."""
    for key in [k for k in os.environ if k.startswith(("SAUVEGARDE_", "XDG_"))]:
        monkeypatch.delenv(key)
    for key, value in site.cli.env.items():
        if key.startswith(("SAUVEGARDE_", "XDG_")) or key == "HOME":
            monkeypatch.setenv(key, value)
    yield site
