"""S3 storage (any S3-compatible endpoint) for the application's files.

Reads for processing go through :class:`~app.storage.temp_cache.TempFileCache`, so the engine
always works on a local file. Keys are validated exactly as for local storage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.core.exceptions import NotAFileError, StorageError
from app.storage.helpers import file_not_found, normalize_key
from app.storage.provider import LocalFile, StorageProvider
from app.storage.temp_cache import TempFileCache

logger = logging.getLogger("app.storage.s3")

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class S3Storage(StorageProvider):
    """Objects in one bucket; ``local_path`` materialises them in the temp cache."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        cache: TempFileCache,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        force_path_style: bool = True,
        client: Any | None = None,
    ) -> None:
        self.bucket = bucket
        self.cache = cache
        config = Config(
            s3={"addressing_style": "path" if force_path_style else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        )
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
            config=config,
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                return None
            logger.error("s3_head_failed", extra={"error": type(error).__name__})
            raise StorageError() from error
        except BotoCoreError as error:
            logger.error("s3_unreachable", extra={"error": type(error).__name__})
            raise StorageError() from error

    def _is_prefix(self, key: str) -> bool:
        reply = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return int(reply.get("KeyCount", 0)) > 0

    def local_path(self, key: str) -> Path:
        """Return the object's copy in the LRU temp cache (keyed by ETag and size), downloading it on a miss."""
        return self.local_file(key).path

    def local_file(self, key: str) -> LocalFile:
        """Return the object's cached copy and its version (ETag and size), with one HEAD request."""
        clean = normalize_key(key)
        head = self._head(clean)
        if head is None:
            if self._is_prefix(clean):
                raise NotAFileError()
            raise file_not_found(key)
        version = f"{head.get('ETag', '')}:{head.get('ContentLength', 0)}"

        def fetch(target: Path) -> None:
            self.client.download_file(self.bucket, clean, str(target))

        try:
            return LocalFile(self.cache.get(clean, version, fetch), version)
        except (ClientError, BotoCoreError) as error:
            logger.error("s3_download_failed", extra={"error": type(error).__name__})
            raise StorageError() from error

    def exists(self, key: str) -> bool:
        """Tell whether an object exists at ``key``."""
        return self._head(normalize_key(key)) is not None

    def size(self, key: str) -> int:
        """Return the object's ``ContentLength`` (404 when missing)."""
        head = self._head(normalize_key(key))
        if head is None:
            raise file_not_found(key)
        return int(head.get("ContentLength", 0))

    def read_bytes(self, key: str) -> bytes:
        """Read the whole object (404 when missing)."""
        clean = normalize_key(key)
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=clean)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES:
                raise file_not_found(key) from error
            raise StorageError() from error
        return bytes(reply["Body"].read())

    def write_bytes(self, key: str, data: bytes) -> None:
        """Put the object in one request (S3 replaces an object atomically)."""
        self.client.put_object(Bucket=self.bucket, Key=normalize_key(key), Body=data)

    def upload_file(self, key: str, source: Path) -> None:
        """Upload a local file to ``key`` with boto3's managed transfer."""
        self.client.upload_file(str(source), self.bucket, normalize_key(key))

    def delete(self, key: str) -> bool:
        """Delete the object at ``key``; return whether it existed before."""
        clean = normalize_key(key)
        existed = self._head(clean) is not None
        self.client.delete_object(Bucket=self.bucket, Key=clean)
        return existed

    def ensure_bucket(self) -> bool:
        """Create the bucket when it does not exist (``S3_CREATE_BUCKET``); return whether it was created."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in {*_MISSING_CODES, "NoSuchBucket"}:
                raise
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            self.client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": region})
        else:
            self.client.create_bucket(Bucket=self.bucket)
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        """List the keys of the objects under ``prefix``, all pages, sorted."""
        clean = normalize_key(prefix) + "/" if prefix.strip("/") else ""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=clean):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)
