"""The one exception tree of Sauvegarde.

Every error a user can meet derives from :class:`SauvegardeError`; each class carries the process exit code the CLI
uses and its ``str()`` is a single line meant for people. Lower layers raise these; only ``cli/`` turns them into
exit codes.

Exit codes: 0 ok, 1 fatal, 2 usage, 3 snapshot saved but some files unreadable, 4 snapshot saved but flagged
suspicious, 10 no repository, 11 repository locked, 12 wrong password.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_SUSPICIOUS = 4
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12


class SauvegardeError(Exception):
    """Base of all expected errors; ``exit_code`` is what the CLI returns."""

    exit_code = EXIT_FATAL


class UsageError(SauvegardeError):
    """The command line or its inputs do not make sense."""

    exit_code = EXIT_USAGE


class StorageError(SauvegardeError):
    """A storage backend failed to move bytes."""


class ObjectNotFound(StorageError):
    """A named object does not exist in the storage."""


class ObjectExists(StorageError):
    """A write-once object was saved twice under the same name."""


class TransientStorageError(StorageError):
    """A storage failure worth retrying: connection reset or refused, timeout, server error (5xx), throttling.

    Backends raise it for failures that say nothing about the object itself; the retry wrapper retries these and
    nothing else.
    """


class RepositoryNotFound(SauvegardeError):
    """There is no repository at the given location."""

    exit_code = EXIT_NO_REPOSITORY


class RepositoryExists(SauvegardeError):
    """``init`` found a repository already there."""


class RepositoryLocked(SauvegardeError):
    """Another process holds a conflicting lock."""

    exit_code = EXIT_LOCKED


class WrongPassword(SauvegardeError):
    """No key file of the repository opens with the given password."""

    exit_code = EXIT_WRONG_PASSWORD


class IntegrityError(SauvegardeError):
    """Stored data failed authentication or does not match its ID."""


class FormatError(SauvegardeError):
    """Stored data is authentic but not in a format this version understands."""


class SnapshotNotFound(SauvegardeError):
    """A snapshot selector matched nothing, or matched more than one snapshot."""
