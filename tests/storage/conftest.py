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
from sauvegarde.storage.sftp import SftpStorage
from sauvegarde.storage.sftp_connect import parse_location
from sauvegarde.storage.wrappers import LimitedStorage, MetricsStorage, RetryingStorage


def _memory(request: pytest.FixtureRequest) -> Storage:
    return MemoryStorage(f"memory:contract-{uuid.uuid4().hex}")


def _local(request: pytest.FixtureRequest) -> Storage:
    tmp_path = request.getfixturevalue("tmp_path")
    return LocalStorage(str(tmp_path / "repo"))


def _s3(request: pytest.FixtureRequest) -> Storage:
    from sauvegarde.storage.s3 import S3Storage

    server = request.getfixturevalue("s3_env")  # a session's SeaweedFS; each test gets a fresh bucket
    return S3Storage(server.url(f"contract-{uuid.uuid4().hex[:16]}", "repo"), multipart_threshold=2 * 1024 * 1024)


def _memory_wrapped(request: pytest.FixtureRequest) -> Storage:
    inner = MemoryStorage(f"memory:contract-{uuid.uuid4().hex}")
    return MetricsStorage(RetryingStorage(LimitedStorage(inner, 4), sleep=lambda _: None))


def _rest(request: pytest.FixtureRequest) -> Storage:
    from sauvegarde.storage.rest import RestStorage

    server = request.getfixturevalue("rest_server")  # a session's `sauvegarde serve`; each test gets a fresh repo
    return RestStorage(server.url(f"contract-{uuid.uuid4().hex[:16]}").removeprefix("rest:"))


def _sftp(request: pytest.FixtureRequest) -> Storage:
    request.getfixturevalue("sftp_env")  # a private sshd; its known_hosts and client key in the environment
    server = request.getfixturevalue("sshd_server")
    tmp_path = request.getfixturevalue("tmp_path")
    return SftpStorage(parse_location(server.url(tmp_path / "sftp-repo").removeprefix("sftp:")))


BACKENDS: list[object] = [
    pytest.param(_memory, id="memory"),
    pytest.param(_local, id="local"),
    pytest.param(_memory_wrapped, id="memory-wrapped"),
    pytest.param(_sftp, id="sftp"),
    pytest.param(_s3, id="s3"),
    pytest.param(_rest, id="rest"),
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
