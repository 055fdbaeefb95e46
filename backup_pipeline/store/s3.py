"""The s3db.js layout on S3 or any S3-compatible endpoint.

Object reads and writes go through obstore (Rust, async): about 0.8 ms of CPU per GET here
against boto3's 3 ms (STACK-NOTES; `bench/store_bench.py` measures both). boto3 is kept for
what object_store's path model cannot express: LIST with a prefix that ends mid-segment
(`resource=R/partition=`), and keys with empty, `.` or `..` segments (s3db.js partition
values can produce those), which object_store refuses to parse.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future
from itertools import islice
from typing import Iterable, Iterator

import obstore
import orjson
import obstore.exceptions
from obstore.store import S3Store as _ObstoreS3

from ..errors import CorruptObject, DatabaseNotFound, MetadataFileError, NotFound, translates_storage_errors
from ..format.schema import check_database_json
from .base import ObjectInfo, RawObject
from .concurrency import ordered_window
from .retry import retry, retry_async, retry_pause
from .connection import ConnectionInfo
from ..format.keys import DATABASE_JSON_KEY, check_resource_name, data_prefix

# Attributes obstore returns next to user metadata; everything else is x-amz-meta-*.
_STANDARD_ATTRIBUTES = {
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Type",
    "Cache-Control",
    "Storage-Class",
}
LIST_PAGE = 1000
# Requests in flight for get_many / put_many, sized from the round trip the store has measured
# (Little's law: n in flight at r seconds each carry n / r objects a second). Enough to keep
# RATE_GOAL objects a second moving (above what two cores decode), between the bounds; IN_FLIGHT
# before any request was timed (or to pin it). bench/latency_bench.py, SeaweedFS at 20 ms: 32 in
# flight 901 rec/s, 128 1,755, 256 1,957; at 0 ms 32 and 128 the same.
IN_FLIGHT: int | None = None
RATE_GOAL = 6400  # objects a second
MIN_IN_FLIGHT, MAX_IN_FLIGHT = 32, 256
GROUP = 16  # requests handed to the event-loop thread at once (S3Store._grouped)


def in_flight_for(round_trip_s: float | None) -> int:
    if IN_FLIGHT is not None:
        return IN_FLIGHT
    if round_trip_s is None:
        return MIN_IN_FLIGHT
    return max(MIN_IN_FLIGHT, min(MAX_IN_FLIGHT, math.ceil(round_trip_s * RATE_GOAL)))


def _object_store_safe(key: str) -> bool:
    return all(part not in ("", ".", "..") for part in key.split("/"))


class _LoopThread:
    """One asyncio loop on a daemon thread, so sync callers can keep many requests in flight."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="s3-store-loop", daemon=True)
        self.thread.start()

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class S3Store:
    """A database on S3; keys are relative to `bucket/key_prefix`."""

    listing_sorted = True  # S3 lists keys in UTF-8 byte order (a hint: diffs stay correct without it)

    def __init__(self, info: ConnectionInfo, url: str | None = None):
        self.info = info
        self.url = url or info.masked()
        self.prefix = info.key_prefix.strip("/")
        kwargs = {}
        if info.endpoint:
            kwargs["endpoint"] = info.endpoint
        if info.access_key_id:
            kwargs["access_key_id"] = info.access_key_id
            kwargs["secret_access_key"] = info.secret_access_key or ""
        session_token = info.client_options.get("sessionToken")
        if session_token:
            kwargs["session_token"] = str(session_token)
        self._obs = _ObstoreS3(
            info.bucket,
            prefix=self.prefix or None,
            region=info.region,
            virtual_hosted_style_request=not info.force_path_style if info.endpoint else True,
            client_options={"allow_http": True, "timeout": "120s", "connect_timeout": "10s"},
            # every request of the store goes through store/retry.py: one layer, each retry counted
            retry_config={"max_retries": 0},
            **kwargs,
        )
        self._loop: _LoopThread | None = None
        self._boto = None
        self._lock = threading.Lock()
        self.round_trip: float | None = None  # the fastest GET or PUT so far, seconds (sizes in_flight)

    # -- helpers -------------------------------------------------------------------------
    def _timed(self, started: float) -> None:
        elapsed = time.perf_counter() - started
        if self.round_trip is None or elapsed < self.round_trip:
            self.round_trip = elapsed

    @property
    def in_flight(self) -> int:
        """Requests get_many and put_many keep in flight (in_flight_for the measured round trip)."""
        return in_flight_for(self.round_trip)

    def _where(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def _loop_thread(self) -> _LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def boto_client(self):
        """A boto3 client for the same endpoint (LIST of raw prefixes, awkward keys)."""
        with self._lock:
            if self._boto is None:
                # boto3 costs ~0.3 s to import: only listings of raw prefixes and awkward keys need it
                import boto3
                from botocore.config import Config

                self._boto = boto3.client(
                    "s3",
                    endpoint_url=self.info.endpoint,
                    region_name=self.info.region,
                    aws_access_key_id=self.info.access_key_id,
                    aws_secret_access_key=self.info.secret_access_key,
                    aws_session_token=self.info.client_options.get("sessionToken"),
                    config=Config(
                        s3={"addressing_style": "path" if self.info.force_path_style else "virtual"},
                        max_pool_connections=64,
                        retries={"total_max_attempts": 1},  # retried by store/retry.py: one policy, counted
                    ),
                )
            return self._boto

    # -- protocol ------------------------------------------------------------------------
    @translates_storage_errors
    def read_database_json(self) -> dict:
        try:
            obj = self.get(DATABASE_JSON_KEY)
        except NotFound:
            raise DatabaseNotFound(
                f"{self._where(DATABASE_JSON_KEY)}: s3db.json not found; is this an s3db.js database "
                "(check bucket and prefix)?"
            ) from None
        try:
            data = orjson.loads(obj.body)
        except orjson.JSONDecodeError as exc:
            raise MetadataFileError(f"{self._where(DATABASE_JSON_KEY)}: s3db.json is not valid JSON ({exc})") from None
        return check_database_json(data, self._where(DATABASE_JSON_KEY))

    @translates_storage_errors
    def list_resources(self) -> list[str]:
        return [check_resource_name(n) for n in self.read_database_json().get("resources", {})]

    @translates_storage_errors
    def list_prefix(self, prefix: str, after: str | None = None) -> Iterator[ObjectInfo]:
        """`after`: a hint, where the listing may start (LIST's start-after); keys up to it may
        come too (only the plain listing of a folder uses it)."""
        parent = prefix.rpartition("/")[0]
        if prefix.endswith("/") and _object_store_safe(prefix.rstrip("/")):
            yield from self._list_fast(prefix, after)
        elif not parent or _object_store_safe(parent):
            yield from self._list_mid_segment(prefix)
        else:
            yield from self._list_boto(prefix)

    def _list_mid_segment(self, prefix: str) -> Iterator[ObjectInfo]:
        """Keys under a prefix that ends inside a name (`resource=R/sequence=`): object_store lists
        whole path segments, so the parent's entries are listed one level deep and the matching
        sub-folders recursively, in key order (no boto3 for the sequence listing of every backup)."""
        parent = prefix.rpartition("/")[0]
        level = retry(lambda: obstore.list_with_delimiter(self._obs, parent or None),
                      f"LIST {self._where(parent + '/')}")
        entries = [(m["path"], m) for m in level["objects"] if m["path"].startswith(prefix)]
        entries += [(p + "/", None) for p in level["common_prefixes"] if (p + "/").startswith(prefix)]
        for name, meta in sorted(entries, key=lambda e: e[0]):
            if meta is None:
                yield from self._list_fast(name)
            else:
                yield ObjectInfo(key=meta["path"], etag=meta["e_tag"] or "", last_modified=meta["last_modified"],
                                 size=meta["size"])

    def _list_fast(self, prefix: str, after: str | None = None) -> Iterator[ObjectInfo]:
        yielded = 0
        last: str | None = after if after and after.startswith(prefix) else None
        started, attempt = time.monotonic(), 0
        try:
            while True:
                try:
                    # S3 lists in key order: a listing cut by a passing failure resumes after the
                    # last key handed out (LIST's start-after)
                    for page in obstore.list(self._obs, prefix.rstrip("/"), offset=last, chunk_size=LIST_PAGE):
                        for meta in page:
                            yield ObjectInfo(key=meta["path"], etag=meta["e_tag"] or "",
                                             last_modified=meta["last_modified"], size=meta["size"])
                            yielded += 1
                            last = meta["path"]
                    return
                except obstore.exceptions.InvalidPathError:
                    raise
                except Exception as exc:  # noqa: BLE001 - decided by the retry policy
                    pause = retry_pause(exc, attempt, started, f"LIST {self._where(prefix)}")
                    if pause is None:
                        raise
                    time.sleep(pause)  # the backoff between two requests
                    attempt += 1
        except obstore.exceptions.InvalidPathError:
            # A key object_store cannot represent: redo the listing the slow way and skip
            # what was already handed out (listing order is stable between two LISTs).
            for n, info in enumerate(self._list_boto(prefix)):
                if n >= yielded:
                    yield info

    def _list_boto(self, prefix: str) -> Iterator[ObjectInfo]:
        client, full = self.boto_client(), self._full_key(prefix)
        last: str | None = None
        while True:
            # one LIST page per request, each retried; the next starts after the last key handed out
            after = {"StartAfter": last} if last else {}
            page = retry(lambda: client.list_objects_v2(Bucket=self.info.bucket, Prefix=full, MaxKeys=LIST_PAGE,
                                                        **after), f"LIST {self._where(prefix)}")
            for item in page.get("Contents", []):
                last = item["Key"]
                yield ObjectInfo(
                    key=self._relative(item["Key"]),
                    etag=item.get("ETag", ""),
                    last_modified=item["LastModified"],
                    size=item.get("Size", 0),
                )
            if not page.get("IsTruncated") or last is None:
                return

    @translates_storage_errors
    def list_data(self, resource: str, after: str | None = None) -> Iterator[ObjectInfo]:
        return self.list_prefix(data_prefix(resource), after)

    @translates_storage_errors
    def list_data_keys(self, resource: str, after: str | None = None) -> Iterator[str]:
        return (info.key for info in self.list_data(resource, after))

    @translates_storage_errors
    def list_data_versions(self, resource: str, expected: int | None = None,
                           after: str | None = None) -> Iterator[tuple[str, str, int]]:
        # ETag alone misses metadata-only rewrites of empty bodies; LastModified (to the second)
        # and size join it, and the engine re-fetches what is too recent to trust.
        for info in self.list_data(resource, after):
            last_modified_ms = int(info.last_modified.timestamp() * 1000)
            yield info.key, f"{info.etag}|{last_modified_ms}|{info.size}", last_modified_ms

    async def _get_async(self, key: str) -> RawObject:
        if not _object_store_safe(key):
            return await asyncio.get_running_loop().run_in_executor(None, self._get_boto, key)

        async def once():  # the body too: a cut body is retried with its request
            t0 = time.perf_counter()
            result = await obstore.get_async(self._obs, key)
            self._timed(t0)
            return result, bytes(await result.bytes_async())

        try:
            result, body = await retry_async(once, f"GET {self._where(key)}")
        except FileNotFoundError:
            raise NotFound(f"object {self._where(key)} not found") from None
        attributes = dict(result.attributes)
        content_type = attributes.get("Content-Type")
        metadata = {k: v for k, v in attributes.items() if k not in _STANDARD_ATTRIBUTES}
        meta = result.meta
        return RawObject(
            key=key,
            metadata=metadata,
            content_type=content_type,
            body=body,
            etag=meta["e_tag"] or "",
            last_modified=meta["last_modified"],
        )

    def _get_boto(self, key: str) -> RawObject:
        client = self.boto_client()

        def once():  # the body too: a cut body is retried with its request
            resp = client.get_object(Bucket=self.info.bucket, Key=self._full_key(key))
            return resp, resp["Body"].read()

        try:
            resp, body = retry(once, f"GET {self._where(key)}")
        except client.exceptions.NoSuchKey:
            raise NotFound(f"object {self._where(key)} not found") from None
        return RawObject(
            key=key,
            metadata=dict(resp.get("Metadata", {})),
            content_type=resp.get("ContentType"),
            body=body,
            etag=resp.get("ETag", ""),
            last_modified=resp.get("LastModified"),
        )

    @translates_storage_errors
    def get(self, key: str) -> RawObject:
        return self._loop_thread().submit(self._get_async(key)).result()

    @translates_storage_errors
    def get_many(self, keys: Iterable[str], concurrency: int | None = None) -> Iterator[RawObject]:
        return self._grouped(self._get_async, keys, concurrency or self.in_flight)

    def _grouped(self, one, items: Iterable, in_flight: int) -> Iterator:
        """`one(item)` for every item, about `in_flight` requests in flight, results in order.
        Items go to the event-loop thread GROUP at a time: each hand-over wakes that thread with
        a socket write, which cost ~160 us of the main process per object when made per object."""
        loop = self._loop_thread()

        async def group(batch: list):
            return await asyncio.gather(*(one(item) for item in batch))

        def batches() -> Iterator[list]:
            it = iter(items)
            while batch := list(islice(it, GROUP)):
                yield batch

        # one group more than in_flight / GROUP: the next is queued while the oldest finishes
        for results in ordered_window(lambda b: loop.submit(group(b)), batches(), math.ceil(in_flight / GROUP) + 1):
            yield from results

    async def _put_async(self, obj: RawObject, create_only: bool = False) -> None:
        if not _object_store_safe(obj.key):
            await asyncio.get_running_loop().run_in_executor(None, self._put_boto, obj)
            return
        attributes = dict(obj.metadata)
        if obj.content_type:
            attributes["Content-Type"] = obj.content_type
        attempts = 0

        async def once():
            nonlocal attempts
            attempts += 1
            try:
                t0 = time.perf_counter()
                await obstore.put_async(self._obs, obj.key, obj.body, attributes=attributes,
                                        mode="create" if create_only else "overwrite")
                self._timed(t0)
            except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
                # a create-only PUT retried after a reset that had in fact succeeded finds its own
                # object: the same content is a success, not a conflict
                if attempts > 1 and await self._holds(obj):
                    return
                raise

        await retry_async(once, f"PUT {self._where(obj.key)}")

    async def _holds(self, obj: RawObject) -> bool:
        try:
            stored = await self._get_async(obj.key)
        except NotFound:
            return False
        return (stored.body, {k.lower(): v for k, v in stored.metadata.items()}) == \
            (obj.body, {k.lower(): v for k, v in obj.metadata.items()})

    def _put_boto(self, obj: RawObject) -> None:
        extra = {"ContentType": obj.content_type} if obj.content_type else {}
        retry(lambda: self.boto_client().put_object(
            Bucket=self.info.bucket, Key=self._full_key(obj.key), Body=obj.body, Metadata=obj.metadata, **extra
        ), f"PUT {self._where(obj.key)}")

    @translates_storage_errors
    def put(self, obj: RawObject, create_only: bool = False) -> bool:
        """Write the object; with create_only, only if absent (If-None-Match: *)."""
        try:
            self._loop_thread().submit(self._put_async(obj, create_only)).result()
            return True
        except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
            if create_only:
                return False
            raise

    @translates_storage_errors
    def put_many(self, objs: Iterable[RawObject], concurrency: int | None = None, fresh: bool = False) -> None:
        # a PUT is atomic on S3 whatever `fresh` says
        for _ in self._grouped(self._put_async, objs, concurrency or self.in_flight):
            pass

    @translates_storage_errors
    def delete(self, key: str) -> None:
        if not _object_store_safe(key):
            retry(lambda: self.boto_client().delete_object(Bucket=self.info.bucket, Key=self._full_key(key)),
                  f"DELETE {self._where(key)}")
            return
        retry(lambda: obstore.delete(self._obs, key), f"DELETE {self._where(key)}")

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
