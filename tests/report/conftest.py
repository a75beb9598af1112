"""The report tests' fixture: the environment of :mod:`report_helpers`, made once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from report_helpers import OFFSITE_ENV, SECRETS, ReportEnv, make_env


@pytest.fixture(scope="module")
def report_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportEnv]:
    """Two local repositories (one unreachable REST server), three runs a day apart, a drill, a guard alarm; made
    once per module (the documents are only read)."""
    tmp_path = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(OFFSITE_ENV, SECRETS["offsite password variable"])
        monkeypatch.setenv("SAUVEGARDE_STORAGE_RETRIES", "0")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        yield make_env(tmp_path)
