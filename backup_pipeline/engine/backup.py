"""Full, incremental and selective backups, streamed resource by resource, committed by a
manifest written last.

Per resource the backup writes RESOURCE.jsonl.<ext> (records and tombstones) and
RESOURCE.index.jsonl.gz (one [key, version token, content hash] per live object, in listing
order: what the next incremental diffs its listing against, see keyindex.py). Memory holds a
bounded window of records and of the parent's index, whatever the resource's size.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import BinaryIO, Iterable, Iterator

from ..compression import check_compression, file_name
from ..errors import BackupPipelineError, CorruptObject, NotFound, UsageError
from ..format import ResourceSchema
from ..repository import Repository
from ..repository.files import FileWriter, write_json
from ..repository.manifest import (FAILURE, INDEX_COMPRESSION, Failure, FileEntry, IndexFile, KeyRange, Manifest,
                                   ResourceEntry, Totals, index_line, index_name, part_tag)
from ..repository.lock import LockOptions, acquire
from ..store import RawObject, Store, id_from_key
from ..store.filesystem import iso_ms
from . import restore_marker
from .inspect import select_resources
from .decoding import DecodedRecord, RecordDecoder
from .keyindex import PENDING, SAME, SUSPECT, KeyDiff, resource_index
from .catalog import complete_manifests
from .lines import raw_to_json, tombstone_line
from .progress import Progress
from .shards import cut_ranges, reusable_ranges, within
from .tables import write_tables
from .verify import verify_files

# S3 gives LastModified to the second and clocks drift: an object whose LastModified is not
# at least this much older than the parent's listing may have changed unseen, so we re-fetch it.
CHANGE_SAFETY = timedelta(seconds=2)

# A full backup built in the repository from the newest chain, without reading the source (synthetic.py).
SYNTHETIC_FULL = "synthetic-full"
BACKUP_TYPES = ("full", "incremental", SYNTHETIC_FULL)

log = logging.getLogger(__name__)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def new_backup_id(kind: str, at: datetime) -> str:
    return f"{kind}-{at.strftime('%Y-%m-%dT%H%M%SZ')}-{secrets.token_hex(2)}"


@dataclass
class BackupRequest:
    type: str = "full"  # full | incremental | synthetic-full (synthetic.py)
    resources: list[str] | None = None
    exclude: list[str] | None = None
    compression: str = "gzip"
    verify: bool = True
    passphrase: str | None = None
    decrypt_secrets: bool = False
    skip_corrupt: bool = False
    full_if_no_parent: bool = False
    backup_id: str | None = None
    workers: int | None = None  # decoding processes; None = one per core but one, 0 = inline
    parquet: bool = False  # also write the typed Parquet mirror RESOURCE.parquet
    skip_if_unchanged: bool = False  # incremental: commit nothing when nothing changed since the parent
    shard_records: int | None = None  # a resource listing more objects is backed up in key-range parts (shards.py)


@dataclass
class ResourceResult:
    """Counts of one resource while it is backed up; `entry()` is what the manifest records."""

    name: str
    records: int = 0
    tombstones: int = 0
    unchanged: int = 0
    fetched: int = 0
    snapshot: bool = True
    skipped_corrupt: list[dict] = field(default_factory=list)
    listed_at: str = ""
    key_range: KeyRange | None = None  # a part of a sharded resource

    def entry(self, data: FileEntry, index: FileEntry, seconds: float) -> ResourceEntry:
        return ResourceEntry(
            data=data, index=IndexFile(**index.__dict__, entries=index.lines), records=self.records,
            tombstones=self.tombstones, snapshot=self.snapshot, unchanged=self.unchanged, fetched=self.fetched,
            listed_at=self.listed_at, seconds=seconds, skipped_corrupt=self.skipped_corrupt, key_range=self.key_range)


def source_identity(store: Store) -> str:
    return store.url


def run_backup(store: Store, repo: Repository, request: BackupRequest, progress: Progress | None = None,
               lock: LockOptions | None = None) -> Manifest:
    """A whole backup under the repository's lease for this source (one writer per source): the
    parent of an incremental is chosen under the lease, so two runs never pick the same one."""
    if request.type not in ("full", "incremental"):
        hint = " (a synthetic full reads no source: engine/synthetic.py)" if request.type == SYNTHETIC_FULL else ""
        raise UsageError(f"unknown backup type {request.type!r}; choose full or incremental{hint}")
    with acquire(repo, "backup", source_identity(store), lock):
        parent = None
        if request.type == "incremental":
            manifests = complete_manifests(repo, source_identity(store))
            parent = manifests[-1] if manifests else None
            if parent is None:
                if not request.full_if_no_parent:
                    raise NotFound(
                        f"no committed backup of {store.url} in {repo.url} to be the parent of an "
                        "incremental; run a full backup first (or pass --full-if-no-parent)"
                    )
                request.type = "full"
        return BackupRun(store, repo, request, progress, parent=parent).run()


def commit_backup(repo: Repository, manifest: Manifest, verify: bool = True, progress: Progress | None = None) -> Manifest:
    """Verify the backup's files (unless asked not to), then write the manifest: the commit."""
    if verify:
        verify_files(repo, manifest, progress)
        manifest.verified = True
    manifest.finished_at = iso_ms(now_utc())
    repo.commit_manifest(manifest.id, manifest)
    publish_tables(repo, manifest, progress)
    return manifest


def publish_tables(repo: Repository, manifest: Manifest, progress: Progress | None = None) -> None:
    """The committed backup's table files (tables.py). The backup is whole without them, so a
    failure here is a warning, mended by the next `athena-ddl`, not a failed backup."""
    try:
        write_tables(repo, manifest)
    except BackupPipelineError as exc:
        text = f"backup {manifest.id} is committed, but its Athena table files were not written ({exc}); " \
               "`backup-pipeline athena-ddl` writes them"
        log.warning(text)
        if progress is not None:
            progress.message(text)


def record_failure(repo: Repository, backup_id: str, exc: BaseException) -> None:
    """failure.json: why a backup stopped (best effort: the missing manifest already says it is incomplete)."""
    try:
        write_json(repo, backup_id, FAILURE, Failure(str(exc) or type(exc).__name__, type(exc).__name__, iso_ms(now_utc())))
    except Exception:
        pass  # the missing manifest already marks the backup incomplete


def add_parquet_mirror(repo: Repository, backup_id: str, name: str, entry: ResourceEntry, db_json: dict) -> None:
    """The typed mirror RESOURCE.parquet of a resource's written JSONL file, recorded in its entry."""
    # pyarrow costs ~0.3 s to import: only backups that write a mirror pay it
    from .parquet import resource_attributes, write_parquet_mirror

    entry.parquet = write_parquet_mirror(repo, backup_id, entry, resource_attributes(db_json, name))


def chosen_resources(db_json: dict, req: BackupRequest) -> list[str]:
    """The resources a backup takes: --resource (all when none), less --exclude."""
    chosen = select_resources(db_json, req.resources)
    for name in req.exclude or []:
        if name not in db_json.get("resources", {}):
            raise NotFound(f"--exclude {name!r}: no such resource in s3db.json; known: {', '.join(db_json['resources'])}")
    chosen = [r for r in chosen if r not in set(req.exclude or [])]
    if not chosen:
        raise UsageError("nothing to back up: the selection leaves no resource")
    return chosen


@dataclass
class ResourceDryRun:
    """What a backup would take of one resource, from the listing alone (nothing fetched)."""
    objects: int = 0  # listed
    body_bytes: int | None = None  # full: their bodies' bytes as listed (s3db.js keeps most records in metadata)
    unchanged: int | None = None  # incremental: same change token as in the parent's key index
    to_fetch: int | None = None  # incremental: changed, new, or too recent to trust
    deleted: int | None = None  # incremental: in the parent, no longer listed (tombstones)

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def dry_run_backup(store: Store, repo: Repository, request: BackupRequest) -> tuple[str, str | None, dict]:
    """(type, parent id, resource -> ResourceDryRun): what `backup` would do, from listings
    only: nothing is fetched, written or locked."""
    parent = None
    if request.type == "incremental":
        manifests = complete_manifests(repo, source_identity(store))
        parent = manifests[-1] if manifests else None
        if parent is None and not request.full_if_no_parent:
            raise NotFound(f"no committed backup of {store.url} in {repo.url} to be the parent of an incremental")
    out = {}
    for name in chosen_resources(store.read_database_json(), request):
        entry = parent.resources.get(name) if parent else None
        plan = out[name] = ResourceDryRun()
        if entry is None:  # a snapshot: every object
            plan.body_bytes = 0
            for info in store.list_data(name):
                plan.objects += 1
                plan.body_bytes += info.size
            continue
        plan.unchanged = plan.to_fetch = 0
        cutoff = datetime.fromisoformat(entry.listed_at) - CHANGE_SAFETY
        diff = KeyDiff(resource_index(repo, parent.id, entry), int(cutoff.timestamp() * 1000),
                       sorted_listing=getattr(store, "listing_sorted", False))
        try:
            for key, token, modified_ms in store.list_data_versions(name, expected=entry.index_entries):
                kind = diff.classify(key, token, modified_ms)[0]
                plan.objects += 1
                if kind is SAME:
                    plan.unchanged += 1
                else:
                    plan.to_fetch += 1
                    if kind is PENDING:
                        diff.keep_pending(key, token, None, None)  # listed: not deleted
            plan.deleted = sum(1 for _ in diff.settle()[1])
        finally:
            diff.close()
    return ("incremental" if parent else "full"), (parent.id if parent else None), out


class BackupRun:
    def __init__(self, store: Store, repo: Repository, request: BackupRequest, progress: Progress | None = None,
                 parent: Manifest | None = None):
        self.store, self.repo, self.req = store, repo, request
        self.progress = progress or Progress()
        self.parent = parent
        self._newest: Manifest | bool | None = None  # the newest committed backup (False: none), for shard ranges
        self.decoder = RecordDecoder(request.workers, main_reads=not getattr(store, "reads_in_workers", False))
        check_compression(request.compression)

    # -- the whole backup ----------------------------------------------------------------
    def run(self) -> Manifest:
        req = self.req
        started = now_utc()
        self.refuse_partial_source()  # first: its s3db.json may not be written yet
        db_json = self.store.read_database_json()
        chosen = chosen_resources(db_json, req)
        backup_id = req.backup_id or new_backup_id("full" if req.type == "full" else "incr", started)
        try:
            return self._run(started, db_json, chosen, backup_id)
        except BaseException as exc:
            self._record_failure(backup_id, exc)
            raise
        finally:
            self.decoder.close()

    def refuse_partial_source(self) -> None:
        """A database an interrupted restore left half-written is never backed up as if whole."""
        marker = restore_marker.read(self.store)
        if marker is not None:
            raise restore_marker.unfinished(self.store, marker, "backed up")

    def _run(self, started: datetime, db_json: dict, chosen: list[str], backup_id: str) -> Manifest:
        entries = {}
        for name in chosen:
            entries[name] = self.with_parquet(backup_id, name, self.backup_resource(backup_id, name, db_json), db_json)
        manifest = self.build_manifest(backup_id, started, db_json, entries)
        if self.req.skip_if_unchanged and self.unchanged(manifest):
            # restic's --skip-if-unchanged: the parent still describes the source; what this run
            # wrote (key indexes equal to the parent's) goes, and the parent is the answer
            self.repo.delete_backup(backup_id)
            return self.parent
        return self.commit(manifest)

    def unchanged(self, manifest: Manifest) -> bool:
        """Nothing to commit: no record changed or deleted in any resource, the same resources,
        schemas (s3db.json) and sequences as the parent, no object skipped as corrupt."""
        parent = self.parent
        return (parent is not None and manifest.totals.records == 0 and manifest.totals.tombstones == 0
                and set(manifest.resources) == set(parent.resources) and manifest.database == parent.database
                and manifest.sequences == parent.sequences
                and not any(e.skipped_corrupt for e in manifest.resources.values()))

    def with_parquet(self, backup_id: str, name: str, entry: ResourceEntry, db_json: dict) -> ResourceEntry:
        """With --parquet: the typed mirror RESOURCE.parquet, written from the committed JSONL file."""
        if self.req.parquet:
            add_parquet_mirror(self.repo, backup_id, name, entry, db_json)
        return entry

    def build_manifest(self, backup_id: str, started: datetime, db_json: dict,
                       entries: dict[str, ResourceEntry]) -> Manifest:
        req = self.req
        return Manifest(
            id=backup_id, type=req.type, started_at=iso_ms(started), database=db_json, resources=entries,
            parent=self.parent.id if self.parent else None,
            chain=(self.parent.chain + [backup_id]) if self.parent else [backup_id],
            selective=bool(req.resources or req.exclude),
            selection={"resources": req.resources or None, "exclude": req.exclude or None},
            source_url=source_identity(self.store), compression=req.compression,
            secrets_decrypted=bool(req.decrypt_secrets and req.passphrase),
            sequences=self._sequences(list(entries)),
            encryption=self.repo.encryption.config if self.repo.encryption.enabled else None,
            totals=Totals(records=sum(e.records for e in entries.values()),
                          tombstones=sum(e.tombstones for e in entries.values()),
                          bytes=sum(e.stored_bytes for e in entries.values())),
        )

    def commit(self, manifest: Manifest) -> Manifest:
        return commit_backup(self.repo, manifest, self.req.verify, self.progress)

    def _record_failure(self, backup_id: str, exc: BaseException) -> None:
        record_failure(self.repo, backup_id, exc)

    def _sequences(self, resources: Iterable[str]) -> dict:
        out = {}
        for name in resources:
            objs = []
            for info in self.store.list_prefix(f"resource={name}/sequence="):
                if info.key.endswith("/lock"):
                    continue  # transient lock of the id generator (SPEC §1)
                obj = self.store.get(info.key)
                objs.append(raw_to_json(obj))
            if objs:
                out[name] = objs
        return out

    # -- one resource --------------------------------------------------------------------
    def backup_resource(self, backup_id: str, name: str, db_json: dict) -> ResourceEntry:
        """The resource whole, or part after part when it is sharded (a staged backup runs the
        parts as steps of their own: staged.py)."""
        ranges = self.shard_ranges(name)
        if ranges is None:
            return self.backup_part(backup_id, name, db_json, None)
        parts = [self.backup_part(backup_id, name, db_json, r) for r in ranges]
        return ResourceEntry.joined(parts, self.req.shard_records)

    def shard_ranges(self, name: str) -> list[KeyRange] | None:
        """The key ranges of the resource's parts, None when it is backed up whole: the newest
        backup's while they serve (so incrementals diff part by part), else cut from a listing."""
        if not self.req.shard_records:
            return None
        parent_entry = self.parent.resources.get(name) if self.parent else None
        previous = parent_entry or self._newest_entry(name)
        ranges = reusable_ranges(previous, self.req.shard_records, full=parent_entry is None)
        if ranges is None:
            _count, ranges = cut_ranges(self.store.list_data_keys(name), self.req.shard_records)
        return ranges

    def _newest_entry(self, name: str) -> ResourceEntry | None:
        if self._newest is None:  # read once per run, not once per resource
            manifests = complete_manifests(self.repo, source_identity(self.store))
            self._newest = manifests[-1] if manifests else False
        return self._newest.resources.get(name) if self._newest else None

    def backup_part(self, backup_id: str, name: str, db_json: dict, key_range: KeyRange | None) -> ResourceEntry:
        """The resource (key_range None) or the part of it in `key_range`, written to its own files."""
        req = self.req
        t0 = time.perf_counter()
        schema = ResourceSchema.from_database_json(name, db_json)
        parent_entry = self.parent.resources.get(name) if self.parent else None
        result = ResourceResult(name=name, snapshot=parent_entry is None, key_range=key_range)
        stem = name if key_range is None else f"{name}.{part_tag(key_range.part)}"
        data = FileWriter(self.repo, backup_id, file_name(stem, req.compression), req.compression)
        index = FileWriter(self.repo, backup_id, index_name(name, key_range and key_range.part), INDEX_COMPRESSION)
        ok = False
        label = name if key_range is None else f"{name} {part_tag(key_range.part)}"
        self.progress.start(label, _expected_objects(parent_entry, key_range))
        try:
            result.listed_at = iso_ms(now_utc())
            if parent_entry:
                self._changes_since_parent(name, schema, parent_entry, data, index, result, label)
            else:
                self._snapshot(name, schema, data, index, result, label)
            ok = True
        finally:
            if not ok:  # interrupted or failed: the bar keeps where it stopped (never a false 100 %)
                data.abort()
                index.abort()
        self.progress.finish(label)
        return result.entry(data.close(), index.close(), time.perf_counter() - t0)

    def _listed(self, items: Iterator, result: ResourceResult, key_of) -> Iterator:
        return within(items, result.key_range, key_of, getattr(self.store, "listing_sorted", False))

    def _snapshot(self, name: str, schema: ResourceSchema, data: FileWriter, index: FileWriter,
                  result: ResourceResult, label: str) -> None:
        """Every object of the resource (a full backup, or a resource the parent lacks). Keys
        alone will do: every object is fetched anyway (cheaper on the filesystem)."""
        keys = self._listed(self.store.list_data_keys(name, after=_start(result.key_range)), result, str)
        if getattr(self.store, "reads_in_workers", False):
            for batch in self.decoder.map_keys(self.store, schema, keys, self._decode_passphrase()):
                result.fetched += batch.records + len(batch.failed)
                for key, why in batch.failed:
                    self._corrupt(result, key, why)  # raises unless --skip-corrupt; not indexed
                data.write_block(batch.data, batch.records)
                index.write_block(batch.index, batch.records)
                result.records += batch.records
                self.progress.advance(label, batch.records)
            return
        objects = self._fetch(keys, name, result)
        for enc in self.decoder.map(schema, objects, self._decode_passphrase()):
            result.fetched += 1
            if enc.line is None:
                self._corrupt(result, enc.key, enc.error)  # not indexed: the next backup tries again
                continue
            data.write(enc.line)
            result.records += 1
            index.write(index_line(enc.key, enc.version, enc.digest))
            self.progress.advance(label)

    def _changes_since_parent(self, name: str, schema: ResourceSchema, parent_entry: ResourceEntry, data: FileWriter,
                              index: FileWriter, result: ResourceResult, label: str) -> None:
        """One LIST diffed against the parent's key index (keyindex.KeyDiff); only what changed,
        is new, or is too recent to trust from the listing gets fetched. The new index keeps
        the listing's order, which is what makes the next diff cheap."""
        # An object modified within CHANGE_SAFETY of the parent's listing may have changed
        # unseen (S3 times are to the second): the diff re-fetches it and compares contents.
        cutoff = datetime.fromisoformat(parent_entry.listed_at) - CHANGE_SAFETY
        diff = KeyDiff(resource_index(self.repo, self.parent.id, parent_entry, key_range=result.key_range),
                       int(cutoff.timestamp() * 1000), sorted_listing=getattr(self.store, "listing_sorted", False))
        listed = self.store.list_data_versions(name, expected=_expected_objects(parent_entry, result.key_range),
                                               after=_start(result.key_range))
        listing = self._listed(listed, result, _first)
        try:
            for verdicts in diff.rounds(listing):
                to_fetch = [v[1] for v in verdicts if v[0] is not SAME]
                fetched = self._fetch_encoded(to_fetch, name, schema, result)
                result.unchanged += len(verdicts) - len(to_fetch)
                index_lines = []  # the round's, in listing order: written at once
                for kind, key, token, detail in verdicts:
                    if kind is SAME:
                        index_lines.append(detail)  # the parent's line, byte for byte
                        continue
                    enc = fetched.get(key)
                    if enc is None or enc.line is None:  # corrupt: recorded (--skip-corrupt) or raised
                        if enc is not None:
                            self._corrupt(result, enc.key, enc.error)
                        if kind is PENDING:
                            diff.keep_pending(key, token, None, None)  # exists: not deleted
                        continue
                    index_lines.append(index_line(enc.key, enc.version, enc.digest))
                    if kind is PENDING:
                        diff.keep_pending(enc.key, enc.version, enc.digest, enc.line)
                    elif kind is SUSPECT and enc.digest == detail:
                        result.unchanged += 1  # re-fetched, and really the same as in the parent
                    else:
                        data.write(enc.line)
                        result.records += 1
                index.write_lines(index_lines)
                self.progress.advance(label, len(verdicts))
            changed, deleted, unchanged = diff.settle()
            for line in changed:
                data.write(line)
                result.records += 1
            result.unchanged += unchanged[0]
            for key in deleted:  # deleted since the parent
                data.write(tombstone_line(id_from_key(key) or key, key))
                result.tombstones += 1
        finally:
            listing.close()
            if hasattr(listed, "close"):
                listed.close()  # a generator: stops the listing now (on the filesystem, its lister process)
            diff.close()

    def _fetch_encoded(self, keys: list[str], resource: str, schema: ResourceSchema,
                       result: ResourceResult) -> dict[str, DecodedRecord]:
        if not keys:
            return {}
        objects = self._fetch(iter(keys), resource, result)
        out = {}
        for enc in self.decoder.map(schema, objects, self._decode_passphrase()):
            result.fetched += 1
            out[enc.key] = enc
        return out

    def _decode_passphrase(self) -> str | None:
        return self.req.passphrase if self.req.decrypt_secrets else None

    def _fetch(self, keys: Iterator[str], resource: str, result: ResourceResult) -> Iterator[RawObject]:
        """Objects in listing order; a corrupt one fails the backup unless --skip-corrupt."""
        if not self.req.skip_corrupt:
            yield from self.store.get_many(keys)
            return
        # With --skip-corrupt, fetch one at a time around failures so one bad object cannot
        # take its neighbours with it; every skipped key is recorded in the manifest.
        for key in keys:
            try:
                yield self.store.get(key)
            except CorruptObject as exc:
                self._corrupt(result, key, exc)

    def _corrupt(self, result: ResourceResult, key: str, exc: Exception | str) -> None:
        # a key that is not valid UTF-8 (a bad file name) is named with its bytes escaped
        safe_key = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if not self.req.skip_corrupt:
            raise CorruptObject(f"corrupt source object {safe_key!r}: {exc}; "
                                "fix or remove it, or run with --skip-corrupt to record it in the manifest and go on"
                                ) from (exc if isinstance(exc, Exception) else None)
        result.skipped_corrupt.append({"key": safe_key, "error": str(exc)})
        self.progress.message(f"skipped corrupt object {safe_key}: {exc}")



def _start(key_range: KeyRange | None) -> str | None:
    return key_range.after if key_range is not None else None


def _first(item: tuple) -> str:
    return item[0]


def _expected_objects(parent_entry: ResourceEntry | None, key_range: KeyRange | None) -> int | None:
    """Live objects the parent recorded (of the part in `key_range`, when it has that part)."""
    if parent_entry is None:
        return None
    if key_range is None:
        return parent_entry.index_entries
    same = [p for p in parent_entry.parts if p.key_range == key_range and p.index is not None]
    return same[0].index.entries if same else None  # the parent was cut otherwise: unknown
