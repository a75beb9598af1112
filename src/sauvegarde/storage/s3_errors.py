"""Turning botocore exceptions into the one-line errors of :mod:`sauvegarde.errors`.

Messages name the endpoint, bucket and object, and the S3 error code; never credentials, signatures or request
headers (botocore's own messages can contain those, so they are not passed through).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from sauvegarde.errors import ObjectExists, ObjectNotFound, RepositoryNotFound, StorageError, TransientStorageError
from sauvegarde.storage.capabilities import ObjectLocked

__all__ = ["ObjectLocked", "translate"]

NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
DENIED = {"AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled", "Forbidden"}
EXISTS = {"PreconditionFailed", "412"}
TRANSIENT = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "RequestTimeTooSkewed"}


def error_code(exc: ClientError) -> str:
    err: dict[str, Any] = exc.response.get("Error", {})
    return str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def translate(exc: Exception, endpoint: str, bucket: str, name: str | None, action: str) -> Exception:
    """The sauvegarde error for a botocore error raised while doing ``action`` on ``name`` (or the bucket)."""
    what = f"{name}" if name else f"bucket {bucket}"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code == "NoSuchBucket":
            return RepositoryNotFound(f"bucket {bucket} does not exist at {endpoint}")
        if code in NOT_FOUND and name:
            return ObjectNotFound(f"{name}: not found")
        if code in EXISTS:
            return ObjectExists(f"{what}: already exists")
        if code in DENIED or http_status(exc) == 403:
            return StorageError(f"access denied by {endpoint} to {action} {what} in bucket {bucket} ({code})")
        message = f"cannot {action} {what} in bucket {bucket} at {endpoint}: S3 error {code}"
        if code in TRANSIENT or http_status(exc) >= 500:
            return TransientStorageError(message)
        return StorageError(message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(
            f"no S3 credentials for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or configure a profile"
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError | ResponseStreamingError):
        # connection refused or reset, timeouts, truncated responses: worth retrying (storage/wrappers.py)
        return TransientStorageError(f"cannot reach {endpoint} to {action} {what}: {type(exc).__name__}")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 client error for {what} at {endpoint}: {type(exc).__name__}")
    return exc
