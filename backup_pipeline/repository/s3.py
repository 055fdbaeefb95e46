"""Backups in S3 (or any S3-compatible endpoint): s3://bucket/prefix[/template].

Files stream up as multipart uploads (obstore's writer: at most `part_size` bytes buffered, so
memory stays flat for any file size); an upload that fails is aborted and never appears. The
manifest is written last with a create-only conditional PUT (If-None-Match: *), so a committed
backup is never overwritten. Endpoint, region and credentials come from the standard AWS
environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_PROFILE), each overridable by an option.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import BinaryIO, Iterator

import obstore
import obstore.exceptions
from obstore.store import S3Store as ObstoreS3Store

from ..errors import (BackupPipelineError, ConflictError, NotFound, StorageError, UsageError,
                      is_storage_exception, storage_error, translates_storage_errors)
from .base import MANIFEST_NAME, ROOT_NAMES, Location
from .manifest import Manifest
from ..store import retry as retry_module
from ..store.retry import RETRIES, is_transient, retry
from .s3_options import S3Options  # noqa: F401 - re-exported: the options of an S3 repository
from .encryption import PLAIN
from .layout import backup_id_in, depth, resolve, split_template
from .object_lock import ObjectLock, open_object_lock

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
    _object_lock: ObjectLock | None = None
    _object_lock_known = False

    @property
    def object_lock(self) -> ObjectLock | None:
        """As object-lock.json says, read when first needed (open_repository sets it at once
        when the options ask for one: a bucket without object lock is refused before any write)."""
        if not self._object_lock_known:
            self.object_lock = open_object_lock(self, None)
        return self._object_lock

    @object_lock.setter
    def object_lock(self, lock: ObjectLock | None) -> None:
        self._object_lock, self._object_lock_known = lock, True

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
        self._boto_client = None

    def _endpoint(self) -> str | None:
        o = self.options
        return o.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    def _region(self) -> str:
        return self.options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def _make_store(self) -> ObstoreS3Store:
        o = self.options
        config: dict = {}
        endpoint = self._endpoint()
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        config["region"] = self._region()
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

    def destinations(self) -> list:
        return [self]

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
                    backup_id = backup_id_in(self.layout, "/".join(parts[:d]))
                    if backup_id is not None:
                        ids.add(backup_id)
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
            self._lock_new(self._key(backup_id, name))
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
        try:
            self._lock_new(self._key(backup_id, MANIFEST_NAME))
        except Exception as exc:
            raise storage_error(exc, f"{self.describe(backup_id, MANIFEST_NAME)} (backup {backup_id} is committed but its "
                                "manifest is not locked yet: the next cleanup --apply locks it)") from exc

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
        if self.object_lock is not None:
            self._delete_versions(backup_id)
            return
        manifest = self._key(backup_id, MANIFEST_NAME)
        try:
            obstore.delete(self._store, manifest)  # first: a half-removed backup is never complete
        except FileNotFoundError:
            pass
        keys = [f"{self._dir(backup_id)}/{n}" for n in self.file_names(backup_id)]
        if keys:
            obstore.delete(self._store, keys)

    # -- object lock (object_lock.py) ----------------------------------------------------
    # obstore can send neither x-amz-object-lock-* headers nor the Content-MD5 / checksum header
    # S3 wants with them (object_store's attributes are a fixed set plus user metadata; its
    # default_headers would go on every request, breaking signed listings on SeaweedFS and the
    # lock on moto's multipart uploads). So files are written as ever and their retention is set
    # by PutObjectRetention (boto3, which adds the checksum) right after each one is complete:
    # a file stands unlocked for one round trip, always before the manifest commits its backup;
    # the manifest stands unlocked for one round trip after its commit (if that request fails,
    # the commit reports it and the next cleanup --apply locks the backup).
    def _boto(self):
        if self._boto_client is None:
            # boto3 costs ~0.3 s to import: only object-locked repositories need it
            import boto3
            from botocore.config import Config

            o = self.options
            session = boto3.Session(profile_name=o.profile) if o.profile and not o.access_key_id else boto3.Session()
            keys = {"aws_access_key_id": o.access_key_id, "aws_secret_access_key": o.secret_access_key or "",
                    "aws_session_token": o.session_token} if o.access_key_id else {}
            endpoint = self._endpoint()
            self._boto_client = session.client(
                "s3", endpoint_url=endpoint, region_name=self._region(), **keys,
                config=Config(s3={"addressing_style": "path" if endpoint else "virtual"},
                              retries={"total_max_attempts": 1}))  # retried by store/retry.py: one policy
        return self._boto_client

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _sse_c(self) -> dict:
        """The customer key a HEAD of an SSE-C object needs."""
        if self.options.sse != "sse-c":
            return {}
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64decode(self.options.sse_customer_key)}

    def _lock_new(self, key: str) -> None:
        if self.object_lock is not None:
            self._set_retention(key, None, self.object_lock.until(datetime.now(timezone.utc)))

    def _set_retention(self, key: str, version_id: str | None, until: datetime) -> None:
        kwargs = {"VersionId": version_id} if version_id else {}
        retry(lambda: self._boto().put_object_retention(
            Bucket=self.bucket, Key=self._full_key(key), **kwargs,
            Retention={"Mode": self.object_lock.mode, "RetainUntilDate": until}), f"PUT {self.url}/{key}?retention")

    def _retention(self, full_key: str, version_id: str) -> datetime | None:
        head = retry(lambda: self._boto().head_object(Bucket=self.bucket, Key=full_key, VersionId=version_id,
                                                      **self._sse_c()), f"HEAD {self.bucket}/{full_key}")
        until = head.get("ObjectLockRetainUntilDate")
        return until.astimezone(timezone.utc) if until is not None else None

    def _versions(self, backup_id: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(key, version id) of every object version and of every delete marker in the backup's folder."""
        prefix = self._full_key(self._dir(backup_id)) + "/"

        def listing():
            versions, markers = [], []
            for page in self._boto().get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                versions += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
                markers += [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])]
            return versions, markers

        return retry(listing, f"GET {self.url}/{self._dir(backup_id)}/?versions")

    def check_object_lock_enabled(self) -> None:
        """UsageError unless the bucket has object lock enabled (it can only be made so)."""
        try:
            config = retry(lambda: self._boto().get_object_lock_configuration(Bucket=self.bucket),
                           f"GET s3://{self.bucket}?object-lock")
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code != "ObjectLockConfigurationNotFoundError":
                raise storage_error(exc, f"s3://{self.bucket}") from exc
            config = {}
        if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise UsageError(f"--object-lock: bucket {self.bucket} does not have object lock enabled (a bucket "
                             "gets it when created: aws s3api create-bucket --object-lock-enabled-for-bucket)")

    @translates_storage_errors
    def locked_until(self, backup_id: str) -> datetime | None:
        """The latest retain-until date of any object version of the backup (None: none locked)."""
        if self.object_lock is None:
            return None
        versions, _markers = self._versions(backup_id)
        dates = [d for key, vid in versions if (d := self._retention(key, vid)) is not None]
        return max(dates) if dates else None

    @translates_storage_errors
    def extend_lock(self, backup_id: str, now: datetime) -> datetime | None:
        """Every object version of the backup locked until at least now + the lock's days; returns
        that date, or None when nothing needed it (the manifest is extended last, so one still
        short says a run stopped half way and everything is looked at again)."""
        if self.object_lock is None:
            return None
        until = self.object_lock.until(now)
        manifest = self._full_key(self._key(backup_id, MANIFEST_NAME))
        versions, _markers = self._versions(backup_id)
        if not versions:
            return None  # not here (a destination of a multi repository that missed it)
        current = [(k, v) for k, v in versions if k == manifest]
        if current and all((d := self._retention(k, v)) is not None and d >= until for k, v in current):
            return None
        strip = len(self.prefix) + 1 if self.prefix else 0
        for key, vid in sorted(versions, key=lambda kv: kv[0] == manifest):  # the manifest last
            d = self._retention(key, vid)
            if d is None or d < until:
                self._set_retention(key[strip:], vid, until)
        return until

    def _delete_versions(self, backup_id: str) -> None:
        """With object lock (hence versioning), a DELETE only adds a delete marker and the
        versions stay, stored and billed: every version and marker is deleted instead, the
        manifest's first (a half-removed backup is never complete). A version still locked is
        refused by the server: StorageError naming it."""
        manifest = self._full_key(self._key(backup_id, MANIFEST_NAME))
        versions, markers = self._versions(backup_id)
        everything = versions + markers
        for batch in ([kv for kv in everything if kv[0] == manifest], [kv for kv in everything if kv[0] != manifest]):
            for i in range(0, len(batch), 1000):
                objects = [{"Key": k, "VersionId": v} for k, v in batch[i:i + 1000]]
                answer = retry(lambda: self._boto().delete_objects(Bucket=self.bucket,
                                                                   Delete={"Objects": objects, "Quiet": True}),
                               f"POST {self.url}/{self._dir(backup_id)}?delete")
                errors = answer.get("Errors") or []
                if errors:
                    named = ", ".join(f"{e.get('Key')} version {e.get('VersionId', '?')} ({e.get('Code')})"
                                      for e in errors[:5])
                    raise StorageError(f"{self.url}: backup {backup_id} not deleted: the server refused {named}"
                                       + (f" and {len(errors) - 5} more" if len(errors) > 5 else "")
                                       + " (AccessDenied: still locked)")

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
