"""The exception tree: hierarchy and exit codes as documented in errors.py."""

from __future__ import annotations

import pytest

from sauvegarde import errors
from sauvegarde.errors import (
    FormatError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    RepositoryExists,
    RepositoryLocked,
    RepositoryNotFound,
    SauvegardeError,
    SnapshotNotFound,
    StorageError,
    UsageError,
    WrongPassword,
)


def test_exit_code_values() -> None:
    assert (errors.EXIT_OK, errors.EXIT_FATAL, errors.EXIT_USAGE, errors.EXIT_PARTIAL, errors.EXIT_SUSPICIOUS) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert (errors.EXIT_NO_REPOSITORY, errors.EXIT_LOCKED, errors.EXIT_WRONG_PASSWORD) == (10, 11, 12)


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (SauvegardeError, 1),
        (UsageError, 2),
        (StorageError, 1),
        (ObjectNotFound, 1),
        (ObjectExists, 1),
        (RepositoryNotFound, 10),
        (RepositoryExists, 1),
        (RepositoryLocked, 11),
        (WrongPassword, 12),
        (IntegrityError, 1),
        (FormatError, 1),
        (SnapshotNotFound, 1),
    ],
)
def test_exit_codes(cls: type[SauvegardeError], code: int) -> None:
    assert cls.exit_code == code
    assert cls("x").exit_code == code


def test_every_error_derives_from_the_base() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert len(classes) >= 12
    for cls in classes:
        assert issubclass(cls, SauvegardeError), cls


def test_storage_errors_nest() -> None:
    assert issubclass(ObjectNotFound, StorageError)
    assert issubclass(ObjectExists, StorageError)
    assert not issubclass(IntegrityError, StorageError)
