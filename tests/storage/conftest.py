"""Backends under the shared storage contract suite.

To put a new backend under the contract, add one ``pytest.param`` to ``BACKENDS``: a factory taking the fixture
request (so it can ask for service fixtures such as a MinIO or SFTP server with ``request.getfixturevalue``) and
returning a fresh, *created*, empty storage. Mark it (e.g. ``pytest.mark.slow``) if it needs a live service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from sauvegarde.storage import Storage
from sauvegarde.storage.local import LocalStorage
from sauvegarde.storage.memory import MemoryStorage


def _memory(request: pytest.FixtureRequest) -> Storage:
    return MemoryStorage(f"memory:contract-{uuid.uuid4().hex}")


def _local(request: pytest.FixtureRequest) -> Storage:
    tmp_path = request.getfixturevalue("tmp_path")
    return LocalStorage(str(tmp_path / "repo"))


def _s3(request: pytest.FixtureRequest) -> Storage:
    from sauvegarde.storage.s3 import S3Storage

    server = request.getfixturevalue("s3_env")  # a session's SeaweedFS; each test gets a fresh bucket
    return S3Storage(server.url(f"contract-{uuid.uuid4().hex[:16]}", "repo"), multipart_threshold=2 * 1024 * 1024)


BACKENDS: list[object] = [
    pytest.param(_memory, id="memory"),
    pytest.param(_local, id="local"),
    pytest.param(_s3, id="s3"),
]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """A fresh, created, empty storage of each backend in turn."""
    factory: Callable[[pytest.FixtureRequest], Storage] = request.param
    st = factory(request)
    st.create()
    try:
        yield st
    finally:
        st.close()
