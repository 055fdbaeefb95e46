"""Backups in S3 (or any S3-compatible endpoint): s3://bucket/prefix[/template].

Files stream up as multipart uploads (obstore's writer: at most `part_size` bytes buffered, so
memory stays flat for any file size); an upload that fails is aborted and never appears. The
manifest is written last with a create-only conditional PUT (If-None-Match: *), so a committed
backup is never overwritten. Endpoint, region and credentials come from the standard AWS
environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_PROFILE), each overridable by an option.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from contextlib import contextmanager
from datetime import datetime
from typing import BinaryIO, Iterator

import obstore
import obstore.exceptions
from obstore.store import S3Store as ObstoreS3Store

from ..errors import (BackupPipelineError, ConflictError, NotFound, UsageError, is_storage_exception,
                      storage_error, translates_storage_errors)
from .base import MANIFEST_NAME, ROOT_NAMES, Location
from .manifest import Manifest
from ..store import retry as retry_module
from ..store.retry import RETRIES, is_transient, retry
from .s3_options import S3Options  # noqa: F401 - re-exported: the options of an S3 repository
from .encryption import PLAIN
from .layout import depth, resolve, split_template

def _retried(method):
    """An idempotent request sent again when it failed for a passing reason (store/retry.py)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return retry(lambda: method(self, *args, **kwargs), f"{method.__name__} {self.url}")

    return wrapper


class _Upload(io.RawIOBase):
    """One file written to S3 with every request retried (store/retry.py).

    Up to `part_size` bytes are held here, so a smaller file is one PUT, retried whole. A larger
    one goes to obstore's multipart writer, which retries its part PUTs itself (measured through
    the fault proxy) but not a create or complete whose answer was cut: the first bytes stay here
    until the upload exists, so a failed create starts again with a new writer, and a completion
    whose answer was lost is recognised by the object standing there with the size written (the
    key is in this backup's own folder, under its lease).
    """

    def __init__(self, store, key: str, attributes: dict, part_size: int, where: str):
        self._store, self._key, self._attributes, self._part_size = store, key, attributes, part_size
        self._where = where
        self._buffer = bytearray()
        self._writer = None
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = len(b)
        self.size += n
        if self._writer is not None:
            self._writer.write(b)
            return n
        self._buffer += b
        if len(self._buffer) > self._part_size:
            self._writer = retry(self._start_multipart, f"POST {self._where}")
            self._buffer = bytearray()
        return n

    def _start_multipart(self):
        writer = obstore.open_writer(self._store, self._key, attributes=self._attributes,
                                     buffer_size=self._part_size, max_concurrency=4)
        try:
            writer.write(self._buffer)  # past the buffer size: creates the upload, sends part 1
            writer.flush()
        except BaseException as exc:
            writer.__exit__(type(exc), exc, exc.__traceback__)  # aborts: nothing was created
            raise
        return writer

    def finish(self) -> None:
        if self._writer is None:
            data = bytes(self._buffer)
            retry(lambda: obstore.put(self._store, self._key, data, attributes=self._attributes),
                  f"PUT {self._where}")
            return
        try:
            self._writer.close()
        except Exception as exc:
            if not (is_transient(exc) and self._stands_complete()):
                raise
            RETRIES["POST"] += 1  # the completion went through; its answer was lost

    def _stands_complete(self) -> bool:
        try:
            return retry(lambda: obstore.head(self._store, self._key), f"HEAD {self._where}")["size"] == self.size
        except FileNotFoundError:
            return False

    def abort(self, exc: BaseException) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # already failing: the first error is the one to report
                self._writer.__exit__(type(exc), exc, exc.__traceback__)
        self._buffer = bytearray()


class _Reader(io.RawIOBase):
    """obstore's buffered reader as a plain binary file (bytes out)."""

    def __init__(self, inner, url: str):
        self._inner, self.url = inner, url

    def readable(self) -> bool:
        return True

    @translates_storage_errors
    def readinto(self, b) -> int:
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = bytes(data)
        return n

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


class S3Repository:
    encryption = PLAIN  # open_repository sets the repository's own

    def __init__(self, url: str, options: S3Options | None = None):
        if not url.startswith("s3://"):
            raise UsageError(f"repository {url!r}: an S3 repository is s3://bucket[/prefix]")
        self.options = options or S3Options()
        self.options.check()
        bucket, _, path = url[len("s3://"):].partition("/")
        if not bucket:
            raise UsageError(f"repository {url!r}: the bucket is empty")
        root, self.layout = split_template(path) if path else ("", "{id}")
        self.bucket = bucket
        self.prefix = "" if root in (".", "/") else root.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._store = self._make_store()

    def _make_store(self) -> ObstoreS3Store:
        o = self.options
        config: dict = {}
        endpoint = o.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        region = o.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        config["region"] = region
        kwargs: dict = {}
        if o.access_key_id:
            config["access_key_id"] = o.access_key_id
            config["secret_access_key"] = o.secret_access_key or ""
            if o.session_token:
                config["session_token"] = o.session_token
        elif o.profile or (os.environ.get("AWS_PROFILE") and not os.environ.get("AWS_ACCESS_KEY_ID")):
            # boto3 costs ~0.3 s to import: only AWS profiles need it
            import boto3
            from obstore.auth.boto3 import Boto3CredentialProvider

            kwargs["credential_provider"] = Boto3CredentialProvider(
                boto3.Session(profile_name=o.profile or os.environ["AWS_PROFILE"]))
        if o.sse == "AES256":
            config["server_side_encryption"] = "AES256"
        elif o.sse == "aws:kms":
            config["server_side_encryption"] = "aws:kms"
            if o.sse_kms_key_id:
                config["sse_kms_key_id"] = o.sse_kms_key_id
        elif o.sse == "sse-c":
            config["server_side_encryption"] = "sse-c"
            config["sse_customer_key_base64"] = o.sse_customer_key
        return ObstoreS3Store(self.bucket, prefix=self.prefix or None, config=config,
                       client_options={"allow_http": True, "timeout": "300s", "connect_timeout": "10s"}, 
                       retry_config=retry_module.DEFAULT.object_store_config(), **kwargs)

    # -- names ---------------------------------------------------------------------------
    def _dir(self, backup_id: str) -> str:
        if not backup_id or "/" in backup_id or backup_id in (".", ".."):
            raise UsageError(f"backup id {backup_id!r} is not a plain name")
        return resolve(self.layout, backup_id)

    def _key(self, backup_id: str, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"file name {name!r} is not a plain file name")
        return f"{self._dir(backup_id)}/{name}"

    def describe(self, backup_id: str, name: str) -> str:
        return f"{self.url}/{self._key(backup_id, name)}"

    def backup_dir(self, backup_id: str) -> str:
        return self._dir(backup_id)

    def location(self) -> Location:
        return Location(f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}", self.options)

    def _attributes(self) -> dict:
        return {"Storage-Class": self.options.storage_class} if self.options.storage_class else {}

    # -- contract ------------------------------------------------------------------------
    def exists(self) -> bool:
        return True  # a prefix exists once written to; a missing bucket fails listings with a named error

    @translates_storage_errors
    @_retried
    def backup_ids(self) -> list[str]:
        d = depth(self.layout)
        ids = set()
        for page in obstore.list(self._store, None, chunk_size=1000):
            for meta in page:
                parts = meta["path"].split("/")
                if len(parts) == d + 1 and parts[0] not in ROOT_NAMES:
                    try:
                        if self._dir(parts[d - 1]) == "/".join(parts[:d]):
                            ids.add(parts[d - 1])
                    except UsageError:
                        continue
        return sorted(ids)

    @contextmanager
    def create_file(self, backup_id: str, name: str) -> Iterator[BinaryIO]:
        # A multipart upload is invisible until completed; leaving the block with an
        # exception aborts it, so no partial file ever appears under its name.
        upload = _Upload(self._store, self._key(backup_id, name), self._attributes(), self.options.part_size,
                         self.describe(backup_id, name))
        try:
            yield upload
            upload.finish()
        except BaseException as exc:
            upload.abort(exc)
            if isinstance(exc, (BackupPipelineError, FileNotFoundError)) or not isinstance(exc, Exception):
                raise
            if isinstance(exc, OSError) or is_storage_exception(exc):  # obstore raises builtin OSErrors too
                raise storage_error(exc, self.describe(backup_id, name)) from exc
            raise

    @translates_storage_errors
    def open_file(self, backup_id: str, name: str) -> BinaryIO:
        key = self._key(backup_id, name)
        try:
            return io.BufferedReader(_Reader(obstore.open_reader(self._store, key, buffer_size=1 << 20), self.url), 1 << 20)
        except FileNotFoundError:
            raise NotFound(f"{self.describe(backup_id, name)}: file missing from backup {backup_id}") from None

    @translates_storage_errors
    @_retried
    def file_size(self, backup_id: str, name: str) -> int:
        try:
            return obstore.head(self._store, self._key(backup_id, name))["size"]
        except FileNotFoundError:
            raise NotFound(f"{self.describe(backup_id, name)}: file missing from backup {backup_id}") from None

    @translates_storage_errors
    @_retried
    def file_names(self, backup_id: str) -> list[str]:
        prefix = self._dir(backup_id)
        names = []
        for page in obstore.list(self._store, prefix, chunk_size=1000):
            names += [m["path"][len(prefix) + 1:] for m in page]
        return sorted(n for n in names if "/" not in n)

    @translates_storage_errors
    @_retried
    def last_modified(self, backup_id: str) -> datetime | None:
        # an upload still in progress is invisible until completed; its step holds the lease
        stamps = [m["last_modified"] for page in obstore.list(self._store, self._dir(backup_id), chunk_size=1000)
                  for m in page]
        return max(stamps) if stamps else None

    @translates_storage_errors
    @_retried
    def read_manifest(self, backup_id: str) -> Manifest | None:
        try:
            data = bytes(obstore.get(self._store, self._key(backup_id, MANIFEST_NAME)).bytes())
        except FileNotFoundError:
            return None
        return Manifest.parse(data, self.describe(backup_id, MANIFEST_NAME))

    @translates_storage_errors
    def commit_manifest(self, backup_id: str, manifest: Manifest) -> None:
        if not self._create_only(self._key(backup_id, MANIFEST_NAME), manifest.to_bytes(),
                                 {"Content-Type": "application/json", **self._attributes()}):
            raise ConflictError(f"{self.describe(backup_id, MANIFEST_NAME)}: backup {backup_id} is already committed; "
                                "it is never overwritten")

    def _create_only(self, key: str, data: bytes, attributes: dict | None = None) -> bool:
        """PUT If-None-Match: *, retried; False when the key holds other bytes. A retry after a
        reset that had in fact succeeded finds its own bytes there: that is a success."""
        attempts = 0

        def once() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                obstore.put(self._store, key, data, mode="create", attributes=attributes or {})
                return True
            except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
                return attempts > 1 and bytes(obstore.get(self._store, key).bytes()) == data

        return retry(once, f"PUT {self.url}/{key}")

    @translates_storage_errors
    @_retried
    def delete_backup(self, backup_id: str) -> None:
        manifest = self._key(backup_id, MANIFEST_NAME)
        try:
            obstore.delete(self._store, manifest)  # first: a half-removed backup is never complete
        except FileNotFoundError:
            pass
        keys = [f"{self._dir(backup_id)}/{n}" for n in self.file_names(backup_id)]
        if keys:
            obstore.delete(self._store, keys)

    # -- files at the repository root (crypto config, locks) ------------------------------
    def _root_key(self, name: str) -> str:
        if any(p in ("", ".", "..") for p in name.split("/")):
            raise UsageError(f"root file name {name!r} is not a plain name")
        return name

    @translates_storage_errors
    @_retried
    def read_root(self, name: str) -> bytes | None:
        try:
            return bytes(obstore.get(self._store, self._root_key(name)).bytes())
        except FileNotFoundError:
            return None

    @translates_storage_errors
    def create_root(self, name: str, data: bytes) -> bool:
        """Create-only (If-None-Match: *); False if the object already exists."""
        return self._create_only(self._root_key(name), data)

    @translates_storage_errors
    @_retried
    def replace_root(self, name: str, data: bytes) -> None:
        obstore.put(self._store, self._root_key(name), data)

    @translates_storage_errors
    @_retried
    def delete_root(self, name: str) -> None:
        try:
            obstore.delete(self._store, self._root_key(name))
        except FileNotFoundError:
            pass

    @translates_storage_errors
    @_retried
    def list_root(self, prefix: str) -> list[str]:
        folder = prefix.rpartition("/")[0]  # object_store lists whole path segments: filter below
        names = []
        for page in obstore.list(self._store, self._root_key(folder) if folder else None, chunk_size=1000):
            names += [m["path"] for m in page]
        return sorted(n for n in names if n.startswith(prefix))
