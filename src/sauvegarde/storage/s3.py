"""S3-compatible object storage (AWS S3, MinIO, Ceph RGW, SeaweedFS, Backblaze B2, Wasabi), through boto3.

Location: ``s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]`` (``s3:HOST/BUCKET`` means https). Credentials come from
boto3's default chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/...``, instance
roles). Options, from the environment:

- ``SAUVEGARDE_S3_REGION`` (else ``AWS_DEFAULT_REGION``/``AWS_REGION``, else ``us-east-1``);
- ``SAUVEGARDE_S3_PATH_STYLE`` (``1``/``0``; default on for endpoints that are not ``*.amazonaws.com``);
- ``SAUVEGARDE_S3_CONNECTIONS``: size of the HTTP connection pool (default 16).

Write-once ``save`` uses a conditional put (``If-None-Match: *``), which the server checks atomically. A server
that rejects the header makes the backend fall back, for the rest of the session, to a HEAD then a PUT: two
writers racing between the two requests could then both write. Every name Sauvegarde writes twice is either
content-addressed (both writers store the same bytes) or random (locks), so the race is harmless to the format,
but the contract's "exactly one writer wins" only holds with conditional puts. Objects above
``multipart_threshold`` go up in parts (the completion is conditional too).

The Object Lock side (retention on save, reading objects hidden behind delete markers, extending retention,
purging expired versions) lives in :mod:`sauvegarde.storage.s3_lock`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sauvegarde.errors import ObjectNotFound, StorageError, UsageError
from sauvegarde.storage.base import Buffer, ObjectInfo, check_name, check_range
from sauvegarde.storage.s3_errors import ObjectLocked, error_code, http_status, translate
from sauvegarde.storage.s3_lock import ObjectLockOps

MiB = 1024 * 1024
_CONDITIONAL_UNSUPPORTED = {"NotImplemented", "InvalidArgument", "InvalidRequest", "501"}


@dataclass(frozen=True)
class S3Location:
    endpoint: str  # scheme://host[:port]
    bucket: str
    prefix: str  # "" or "some/path/"

    @classmethod
    def parse(cls, rest: str) -> S3Location:
        """Parse a location, with or without its ``s3:`` scheme."""
        rest = rest.removeprefix("s3:")
        text = rest if "://" in rest else f"https://{rest.lstrip('/')}"
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"invalid S3 location s3:{rest}: expected s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]")
        bucket, _, prefix = parts.path.strip("/").partition("/")
        if not bucket:
            raise UsageError(f"invalid S3 location s3:{rest}: no bucket named")
        prefix = prefix.strip("/")
        return cls(f"{parts.scheme}://{parts.netloc}", bucket, f"{prefix}/" if prefix else "")

    @property
    def url(self) -> str:
        return f"s3:{self.endpoint}/{self.bucket}" + (f"/{self.prefix.rstrip('/')}" if self.prefix else "")

    @property
    def is_aws(self) -> bool:
        return (urlsplit(self.endpoint).hostname or "").endswith("amazonaws.com")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("1", "true", "yes", "on")


def make_client(loc: S3Location, connections: int | None = None) -> Any:
    """A botocore S3 client (thread-safe) configured from the environment."""
    region = (
        os.environ.get("SAUVEGARDE_S3_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or os.environ.get("AWS_REGION")
        or "us-east-1"
    )
    path_style = _env_flag("SAUVEGARDE_S3_PATH_STYLE", not loc.is_aws)
    pool = connections or int(os.environ.get("SAUVEGARDE_S3_CONNECTIONS", "16") or 16)
    config = Config(
        region_name=region,
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 2},  # the retry wrapper does the rest
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=max(1, pool),
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=loc.endpoint, config=config)


class S3Storage(ObjectLockOps):
    """Objects under ``PREFIX`` in one bucket. Thread-safe: one botocore client is shared by every thread."""

    def __init__(
        self,
        location: str | S3Location,
        client: Any = None,
        multipart_threshold: int = 64 * MiB,
        part_size: int = 16 * MiB,
    ) -> None:
        self.loc = location if isinstance(location, S3Location) else S3Location.parse(location)
        self.location = self.loc.url
        self.bucket = self.loc.bucket
        self.client = client if client is not None else make_client(self.loc)
        self.multipart_threshold = multipart_threshold
        self.part_size = max(5 * MiB, part_size)
        self._conditional = True
        self._state = threading.Lock()
        super().__init__()

    # ---- helpers ------------------------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return self.loc.prefix + check_name(name)

    def error(self, exc: Exception, name: str | None, action: str) -> Exception:
        return translate(exc, self.loc.endpoint, self.bucket, name, action)

    # ---- bucket -------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in ("NoSuchBucket", "404", "NotFound"):
                return False
            raise self.error(exc, None, "open") from None
        except BotoCoreError as exc:
            raise self.error(exc, None, "open") from None
        return True

    def create(self) -> None:
        if not self.exists():
            self.create_bucket()

    def create_bucket(self, object_lock: bool = False) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if self.loc.is_aws and region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou",):
                raise self.error(exc, None, "create") from None
        except BotoCoreError as exc:
            raise self.error(exc, None, "create") from None

    # ---- save ---------------------------------------------------------------------------------------------

    def save(self, name: str, data: Buffer) -> None:
        key = self.key(name)
        # bytes and bytearray go as they are: a pack (bytearray) copied here was held twice per upload in flight
        body = data if isinstance(data, bytes | bytearray) else bytes(data)
        extra = self.save_arguments(name)
        try:
            if len(body) > self.multipart_threshold:
                self._save_multipart(key, body, extra)
            else:
                self._save_single(name, key, body, extra)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, name, "write") from None
        self.note_saved(name)

    def _save_single(self, name: str, key: str, body: bytes | bytearray, extra: dict[str, Any]) -> None:
        if self._conditional:
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
                return
            except ClientError as exc:
                if error_code(exc) == "ConditionalRequestConflict" or http_status(exc) == 409:
                    self._raise_if_exists(name)  # a concurrent conditional write: one of them wins
                    raise
                if error_code(exc) not in _CONDITIONAL_UNSUPPORTED:
                    raise
                with self._state:
                    self._conditional = False
        self._raise_if_exists(name)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def _raise_if_exists(self, name: str) -> None:
        try:
            self.head(name)
        except ObjectNotFound:
            return
        raise translate(
            ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject"),
            self.loc.endpoint,
            self.bucket,
            name,
            "write",
        )

    def _save_multipart(self, key: str, body: bytes | bytearray, extra: dict[str, Any]) -> None:
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload_id = upload["UploadId"]
        try:
            parts = []
            view = memoryview(body)
            for number, start in enumerate(range(0, len(body), self.part_size), start=1):
                resp = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(view[start : start + self.part_size]),
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
            done: dict[str, Any] = {"IfNoneMatch": "*"} if self._conditional else {}
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **done
            )
        except BaseException:
            # if the abort fails too, the bucket's lifecycle rules clean incomplete uploads
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    # ---- load and stat ------------------------------------------------------------------------------------

    def load(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self.key(name)
        if offset < 0 or (length is not None and length < 0):
            raise StorageError(f"{name}: negative range")
        version = self.revealed_version(name)
        try:
            return self._get(name, offset, length, version)
        except ObjectNotFound:
            version = self.hidden_version(name) if version is None else None
            if version is None:
                raise
            return self._get(name, offset, length, version)

    def _get(self, name: str, offset: int, length: int | None, version: str | None) -> bytes:
        if length == 0:
            check_range(name, self.head(name, version).size, offset, 0)
            return b""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name)}
        if version:
            kwargs["VersionId"] = version
        if offset or length is not None:
            kwargs["Range"] = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        try:
            resp = self.client.get_object(**kwargs)
            total = _total_size(resp)
            n = check_range(name, total, offset, length)
            data: bytes = resp["Body"].read()
        except ClientError as exc:
            if error_code(exc) == "InvalidRange" or http_status(exc) == 416:
                check_range(name, self.head(name, version).size, offset, length)
                return b""  # a valid empty range at the end of the object, which S3 calls unsatisfiable
            raise self.error(exc, name, "read") from None
        except BotoCoreError as exc:
            raise self.error(exc, name, "read") from None
        if len(data) != n:
            raise StorageError(f"{name}: short read ({len(data)} of {n} bytes)")
        return data

    def head(self, name: str, version: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name)}
        if version:
            kwargs["VersionId"] = version
        try:
            resp = self.client.head_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, name, "stat") from None
        return ObjectInfo(name, int(resp["ContentLength"]))

    def stat(self, name: str) -> ObjectInfo:
        version = self.revealed_version(name)
        try:
            return self.head(name, version)
        except ObjectNotFound:
            version = self.hidden_version(name) if version is None else None
            if version is None:
                raise
            return self.head(name, version)

    # ---- list and delete ----------------------------------------------------------------------------------

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        revealed = self.revealed(prefix)
        for name, size, _modified in self.list_detailed(prefix):
            yield ObjectInfo(name, revealed.pop(name, size))
        for name, size in revealed.items():  # hidden behind a delete marker: listed from its retained version
            yield ObjectInfo(name, size)

    def list_detailed(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        """``(name, size, last_modified)`` of every current object under ``prefix``, page by page."""
        root = self.loc.prefix
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    key: str = obj["Key"]
                    if key.endswith("/"):
                        continue  # folder markers made by some tools
                    yield key[len(root) :], int(obj["Size"]), obj.get("LastModified")
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, None, "list") from None

    def delete(self, name: str) -> None:
        self.head(name)  # deleting a missing object must raise ObjectNotFound; S3 itself would not say
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except ClientError as exc:
            if error_code(exc) == "AccessDenied" and self.object_lock_enabled():
                raise ObjectLocked(f"{name}: retention in force, S3 refused the deletion") from None
            raise self.error(exc, name, "delete") from None
        except BotoCoreError as exc:
            raise self.error(exc, name, "delete") from None
        self.note_deleted(name)

    def close(self) -> None:
        pass


def _total_size(resp: dict[str, Any]) -> int:
    """Object size from a GET response: the total of ``Content-Range`` for ranged reads, else the length."""
    content_range = resp.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(resp["ContentLength"])
