"""Turning fetched objects into backup lines, on every core.

Decoding a record is the CPU-heavy part of a backup (SPEC §11 reader, in Python). Objects are
fetched in the main process (I/O) and decoded in worker processes, in batches, results kept
in listing order. A resource smaller than one batch is decoded inline, so small backups never
pay for starting workers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Iterator

from ..errors import DecodeError
from ..format import ResourceSchema, decode_record
from ..store import RawObject
from ..store.concurrency import ordered_window
from .lines import content_hash, object_version, record_line

BATCH = 256
INLINE_FIRST = 4096


@dataclass(slots=True)
class DecodedRecord:
    key: str
    version: str  # the store's change token of the object as fetched
    digest: str
    line: bytes | None  # None when the record does not decode
    error: str | None


def decode_one(schema: ResourceSchema, obj: RawObject, passphrase: str | None) -> DecodedRecord:
    digest = content_hash(obj)
    try:
        line, error = record_line(decode_record(schema, obj, passphrase=passphrase, mode="clean"), obj), None
    except DecodeError as exc:
        line, error = None, str(exc)
    return DecodedRecord(obj.key, obj.extra.get("version") or object_version(obj), digest, line, error)


def _decode_batch(schema: ResourceSchema, passphrase: str | None, objs: list[RawObject]) -> list[DecodedRecord]:
    return [decode_one(schema, o, passphrase) for o in objs]


def default_workers() -> int:
    """One decoding process per core beyond the one the main process keeps busy fetching
    and compressing (on 2 cores: 1 worker; 2 workers measured slower, they starve the main)."""
    return max(0, min((os.cpu_count() or 1) - 1, 8))


class RecordDecoder:
    """Decodes objects inline or with a process pool (created on first need, reused)."""

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else max(0, workers)  # 0 = inline
        self._pool: ProcessPoolExecutor | None = None
        # Starting workers costs about a second (spawn + imports): the first INLINE_FIRST
        # records of a run (over all calls) are decoded here, so small resources and small
        # incrementals never pay it.
        self._inline_left = INLINE_FIRST

    def map(self, schema: ResourceSchema, objs: Iterator[RawObject], passphrase: str | None) -> Iterator[DecodedRecord]:
        objs = iter(objs)
        if self.workers == 0:
            for o in objs:
                yield decode_one(schema, o, passphrase)
            return
        while self._pool is None and self._inline_left > 0:
            o = next(objs, None)
            if o is None:
                return
            self._inline_left -= 1
            yield decode_one(schema, o, passphrase)
        first = list(islice(objs, BATCH))
        if not first:
            return
        pool = self._get_pool()

        def batches():
            yield first
            while batch := list(islice(objs, BATCH)):
                yield batch

        submit = lambda batch: pool.submit(_decode_batch, schema, passphrase, batch)  # noqa: E731
        for results in ordered_window(submit, batches(), self.workers * 2 + 1):
            yield from results

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the S3 store runs an event-loop thread that must not be forked
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
