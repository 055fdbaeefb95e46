"""Turning objects into backup lines, on every core.

Decoding a record is the CPU-heavy part of a backup (SPEC §11 reader, in Python). Two ways:
- `map`: objects fetched by the main process (S3: I/O, many requests in flight) are decoded in
  worker processes, in batches, results kept in listing order, one result per record.
- `map_keys`: where the store reads in the workers (`reads_in_workers`: the filesystem layout,
  whose reads are Python CPU like decoding), batches of keys go out and each comes back as its
  data and key-index lines already joined: nothing per record crosses between processes, and
  the main process only lists, compresses, hashes and writes.
The first records of a run are done inline, so small backups never pay for starting workers.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Iterator

from ..errors import CorruptObject, DecodeError
from ..format import ResourceSchema, decode_record
from ..repository.manifest import index_line
from ..store import RawObject, Store
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
        decoded = decode_record(schema, obj, passphrase=passphrase, mode="clean")
        line, error = record_line(decoded, obj, schema.typed_fields, schema.declared_fields), None
    except DecodeError as exc:
        line, error = None, str(exc)
    return DecodedRecord(obj.key, obj.extra.get("version") or object_version(obj), digest, line, error)


def _decode_batch(schema: ResourceSchema, passphrase: str | None, objs: list[RawObject]) -> list[DecodedRecord]:
    return [decode_one(schema, o, passphrase) for o in objs]


@dataclass(slots=True)
class DecodedBatch:
    """A batch of keys read and decoded: its lines joined, in listing order."""
    data: bytes  # the record lines
    index: bytes  # their key-index lines
    records: int
    failed: list[tuple[str, str]]  # (key, why): corrupt objects and records that do not decode


def read_decode_batch(store: Store, schema: ResourceSchema, passphrase: str | None, keys: list[str]) -> DecodedBatch:
    data, index, failed = [], [], []
    for key in keys:
        try:
            obj = store.get(key)
        except CorruptObject as exc:
            failed.append((key, str(exc)))
            continue
        enc = decode_one(schema, obj, passphrase)
        if enc.line is None:
            failed.append((key, enc.error))
            continue
        data.append(enc.line)
        index.append(index_line(enc.key, enc.version, enc.digest))
    return DecodedBatch(b"".join(data), b"".join(index), len(data), failed)


@contextmanager
def _main_script_not_rerun():
    """A spawned worker runs the parent's main script again (as __mp_main__) unless the main
    module has a name. Under `dagster` that script is the Dagster CLI: over a second of imports
    per worker, for nothing (worker functions live in importable modules). Named "__main__"
    while the workers start, it is skipped (multiprocessing.spawn._fixup_main_from_name)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    main.__spec__ = ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


def default_workers(main_reads: bool = True) -> int:
    """Decoding processes: one per core beyond the one the main process keeps busy fetching and
    compressing (on 2 cores: 1 worker; 2 measured slower, they starve the main), or one per core
    where the workers read the objects themselves and the main process mostly waits (2 measured
    1.35x faster than 1 on 2 cores, bench/engine_bench.py)."""
    cores = os.cpu_count() or 1
    return max(0, min(cores - 1 if main_reads else cores, 8))


class RecordDecoder:
    """Decodes objects inline or with a process pool (created on first need, reused)."""

    def __init__(self, workers: int | None = None, main_reads: bool = True):
        """main_reads: the main process fetches the objects (`map`), rather than the workers
        (`map_keys`): it then keeps a core busy."""
        self.workers = default_workers(main_reads) if workers is None else max(0, workers)  # 0 = inline
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
        for results in self._pooled(objs, _decode_batch, schema, passphrase):
            yield from results

    def map_keys(self, store: Store, schema: ResourceSchema, keys: Iterator[str],
                 passphrase: str | None) -> Iterator[DecodedBatch]:
        """Batches of `keys` read from `store` and decoded, in order (the store is pickled to the
        workers: only for stores that read in workers)."""
        keys = iter(keys)
        while (self.workers == 0 or self._pool is None) and (self.workers == 0 or self._inline_left > 0):
            batch = list(islice(keys, BATCH if self.workers == 0 else min(BATCH, self._inline_left)))
            if not batch:
                return
            self._inline_left -= len(batch)
            yield read_decode_batch(store, schema, passphrase, batch)
        yield from self._pooled(keys, read_decode_batch, store, schema, passphrase)

    def _pooled(self, items: Iterator, work, *args) -> Iterator:
        """`work(*args, batch)` for the rest of `items` in batches of BATCH, in the pool (started
        only if there is a batch), results in order."""
        first = list(islice(items, BATCH))
        if not first:
            return
        pool = self._get_pool()

        def batches():
            yield first
            while batch := list(islice(items, BATCH)):
                yield batch

        yield from ordered_window(lambda batch: pool.submit(work, *args, batch), batches(), self.workers * 2 + 1)

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the S3 store runs an event-loop thread that must not be forked
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            with _main_script_not_rerun():  # every worker starts now (one per task submitted while none is idle)
                for started in [self._pool.submit(os.getpid) for _ in range(self.workers)]:
                    started.result()
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
