"""Restore drill: proof that a backup restores, not only that its files hash right.

The backup (its whole chain) is restored into a scratch target; every record is read back from
there and decoded by the decoder backups use (decoding.py), then compared with the backup's line
for it at that backup (full + incrementals applied): the raw object's content hash (metadata,
content type, body) and the decoded record, all but the fields a store gives any object it holds
(STORE_FIELDS). A record missing from the scratch target, or there but not in the backup, is a
difference too. Differences raise DrillFailed (exit 4) naming resource and id, after the scratch
target is removed.

The scratch target is a temporary folder by default, removed afterwards. A target the user names
(a folder, an S3 prefix) must be empty, and is emptied afterwards, also on failure: its objects are
deleted, the folder, bucket or prefix stays. `keep_scratch` leaves either for inspection.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import orjson

from ..errors import ConflictError, DrillFailed, UsageError
from ..format import ResourceSchema
from ..repository import Repository
from ..repository.lock import LockOptions
from ..repository.manifest import Manifest
from ..store import RawObject, Store, id_from_key, open_store
from .decoding import DecodedRecord, RecordDecoder
from .lines import RAW_KEY, content_hash, raw_from_json, record_fields
from .progress import Progress
from .restore import READ_BACK_BATCH, RestoreRun, fetch_back, live_objects, object_differences, state_lines
from .verify import committed_manifest

# what the store says about an object rather than its content: they differ in any restored copy
STORE_FIELDS = frozenset({"_lastModified", "_etag", "_versionId", "_expiresAt"})
NAMED = 10  # differences named per resource (all are counted)


@dataclass
class DrillResource:
    name: str
    records: int = 0  # read back from the scratch target, decoded and compared
    differences: int = 0
    first: list[str] = field(default_factory=list)  # "resource id: what differs", the first NAMED
    seconds: float = 0.0  # reading back, decoding and comparing

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict:
        return {"records": self.records, "differences": self.differences, "first_differences": self.first,
                "seconds": round(self.seconds, 3), "records_per_second": round(self.records_per_second)}


@dataclass
class DrillReport:
    backup_id: str
    chain: list[str]
    scratch: str
    scratch_removed: bool = False
    restore_seconds: float = 0.0
    resources: dict[str, DrillResource] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(r.records for r in self.resources.values())

    @property
    def differences(self) -> int:
        return sum(r.differences for r in self.resources.values())

    @property
    def passed(self) -> bool:
        return self.differences == 0

    def as_json(self) -> dict:
        return {"id": self.backup_id, "chain": self.chain, "passed": self.passed, "scratch": self.scratch,
                "scratch_removed": self.scratch_removed, "restore_seconds": round(self.restore_seconds, 3),
                "records": self.records, "differences": self.differences,
                "resources": {k: v.as_json() for k, v in self.resources.items()}}


def run_drill(repo: Repository, backup_id: str, scratch: Store | None = None, *, passphrase: str | None = None,
              lock: LockOptions | None = None, progress: Progress | None = None, keep_scratch: bool = False,
              workers: int | None = None) -> DrillReport:
    """Restore `backup_id` into `scratch` (None: a temporary folder), compare every record read
    back with the backup, remove the scratch target (unless `keep_scratch`); DrillFailed when a
    record differs. `passphrase`: needed when the backup holds decrypted secrets."""
    manifest = committed_manifest(repo, backup_id)
    if manifest.secrets_decrypted and not passphrase:
        raise UsageError(f"backup {backup_id} holds decrypted secrets: a drill decodes them again, so give the "
                         "s3db.js passphrase (--passphrase or $S3DB_PASSPHRASE)")
    folder = None
    if scratch is None:
        folder = Path(tempfile.mkdtemp(prefix="backup-pipeline-drill-"))
        scratch = open_store(f"file://{folder}", create=True)
    else:
        held = next(iter(scratch.list_prefix("")), None)
        if held is not None:
            raise ConflictError(f"scratch target {scratch.url} is not empty (it holds {held.key}); a drill restores "
                                "into an empty target and removes what it wrote: name an empty folder or prefix")
    progress = progress or Progress()
    report = DrillReport(backup_id, list(manifest.chain), scratch.url)
    try:
        t0 = time.perf_counter()
        RestoreRun(repo, backup_id, scratch, progress=progress, lock=lock).run()
        report.restore_seconds = time.perf_counter() - t0
        decoder = RecordDecoder(workers)
        try:
            for name in manifest.resources:
                report.resources[name] = compare_resource(repo, manifest, name, scratch, decoder,
                                                          passphrase if manifest.secrets_decrypted else None, progress)
        finally:
            decoder.close()
    finally:
        if not keep_scratch:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for key in [info.key for info in scratch.list_prefix("")]:
                    scratch.delete(key)
            report.scratch_removed = True
    if not report.passed:
        named = [d for r in report.resources.values() for d in r.first]
        raise DrillFailed(
            f"restore drill of backup {backup_id}: {report.differences} difference(s) between the backup and the "
            f"{report.records} records read back from the scratch target:\n  " + "\n  ".join(named[:20])
            + (f"\n  ... and {report.differences - len(named[:20])} more" if report.differences > 20 else ""), report)
    return report


def compare_resource(repo: Repository, manifest: Manifest, name: str, scratch: Store, decoder: RecordDecoder,
                     passphrase: str | None, progress: Progress) -> DrillResource:
    """Every live record of the resource at this backup, read back from `scratch` in batches,
    decoded (in worker processes beyond the first few thousand) and compared with its line."""
    result = DrillResource(name)
    schema = ResourceSchema.from_database_json(name, manifest.database)
    expected: set[str] = set()  # keys, to find records the backup does not hold
    pending: deque[tuple[dict, RawObject]] = deque()  # in decoding order

    def differ(record_id, what: str) -> None:
        result.differences += 1
        if len(result.first) < NAMED:
            result.first.append(f"{name} {record_id}: {what}")

    def read_back():
        lines = state_lines(repo, manifest, name)
        while batch := list(islice(lines, READ_BACK_BATCH)):
            for line, obj in zip(batch, fetch_back(scratch, [line[RAW_KEY]["key"] for line in batch])):
                expected.add(line[RAW_KEY]["key"])
                if obj is None:
                    differ(line.get("id"), "missing from the scratch target")
                    continue
                pending.append((line, obj))
                yield obj
            progress.advance(f"drill {name}", len(batch))

    t0 = time.perf_counter()
    progress.start(f"drill {name}", live_objects(manifest, name))
    for decoded in decoder.map(schema, read_back(), passphrase):
        line, obj = pending.popleft()
        result.records += 1
        found = record_differences(line, obj, decoded)
        if found:
            differ(line.get("id"), "; ".join(found))
    for key in scratch.list_data_keys(name):
        if key not in expected:
            differ(id_from_key(key), "in the scratch target, not in the backup")
    progress.finish(f"drill {name}")
    result.seconds = time.perf_counter() - t0
    return result


def record_differences(line: dict, got: RawObject, decoded: DecodedRecord) -> list[str]:
    """What differs between the backup's line and the record read back (empty: equal)."""
    want = raw_from_json(line[RAW_KEY])
    if decoded.digest != content_hash(want):
        found = object_differences(want, got)  # S3 lower-cases metadata keys: not a difference
        if found:
            return found
    if decoded.line is None:
        return [f"does not decode: {decoded.error}"]
    # as s3db.js reads them: lines written before _deleted or _misfit existed compare the same
    record, line = record_fields(orjson.loads(decoded.line)), record_fields(line)
    fields = sorted(k for k in (line.keys() | record.keys()) - STORE_FIELDS if line.get(k, ...) != record.get(k, ...))
    return [f"field {k!r} decodes to {record.get(k)!r}, the backup's line has {line.get(k)!r}" for k in fields[:3]]
