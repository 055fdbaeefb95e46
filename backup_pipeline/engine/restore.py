"""Restore the state at a backup id into a target database, as s3db.js itself would have left it.

Per resource, the chain is replayed newest first (the resource's lines from the backup asked
for, then its parents' back to the last snapshot of the resource): the first line seen for a
key wins, a tombstone deletes. Objects are written raw (key, metadata, content type, body),
each followed by its partition references regenerated from its decoded record, then sequence
objects, then `s3db.json` (merged into the target's when it has one). A marker object stays in
the target while it writes (restore_marker.py), so an interrupted restore never looks complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from datetime import datetime, timezone
from typing import Iterator

import orjson

from ..errors import ConflictError, IntegrityError, MetadataLossRefused, NotFound, UsageError
from ..format import ResourceSchema, partition_reference_key
from ..repository import Repository
from ..repository.files import read_records
from ..repository.lock import LockOptions, StoreLeaseBackend, acquire
from ..repository.manifest import Manifest
from ..store import RawObject, Store, id_from_key
from ..store.filesystem import iso_ms
from ..format.keys import DATABASE_JSON_KEY
from . import restore_marker, target_probe
from .catalog import PointInTime
from .lines import RAW_KEY, raw_from_json
from .progress import Progress
from .verify import committed_manifest, describe_files

MODES = ("safe", "replace", "merge", "skip")


@dataclass
class ResourcePlan:
    name: str
    written: int = 0
    deleted: int = 0
    kept_existing: int = 0
    partition_refs: int = 0
    stale_refs_deleted: int = 0
    verified: int = 0  # restore --verify: objects read back from the target and found equal
    empty_values_lost: int = 0  # accepted: empty metadata values the target dropped (read back)
    identical: int = 0  # merge: records the target already holds as the backup has them (not written again)

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RestoreReport:
    backup_id: str
    target: str
    mode: str
    dry_run: bool
    chain: list[str] = field(default_factory=list)
    resources: dict[str, ResourcePlan] = field(default_factory=dict)
    database_json: str = ""
    refused: str | None = None  # a dry run in safe mode: why the real run would refuse
    point_in_time: PointInTime | None = None  # restore --at: the time asked for, and the backup it chose

    def as_json(self) -> dict:
        return {
            "id": self.backup_id, "target": self.target, "mode": self.mode, "dry_run": self.dry_run,
            "chain": self.chain, "database_json": self.database_json,
            "resources": {k: v.as_json() for k, v in self.resources.items()},
            **({"refused": self.refused} if self.refused else {}),
            **({"point_in_time": self.point_in_time.as_json()} if self.point_in_time else {}),
            "totals": {"written": sum(p.written for p in self.resources.values()),
                       "deleted": sum(p.deleted for p in self.resources.values())},
        }


def resource_chain(repo: Repository, manifest: Manifest, resource: str,
                   read: dict[str, Manifest] | None = None) -> list[Manifest]:
    """Manifests holding the resource's lines, newest first, back to its last snapshot. `read`:
    manifests already read, by id, filled as it goes (one read per manifest over many resources)."""
    read = {} if read is None else read
    out = []
    for bid in reversed(manifest.chain):
        if bid == manifest.id:
            m = manifest
        elif bid in read:
            m = read[bid]
        else:
            m = read[bid] = committed_manifest(repo, bid)
        entry = m.resources.get(resource)
        if entry is None:
            continue
        out.append(m)
        if entry.snapshot:
            return out
    raise IntegrityError(f"backup {manifest.id}: resource {resource!r} has no full snapshot in its chain "
                         f"{manifest.chain}")


def checked_lines(repo: Repository, manifest: Manifest, resource: str) -> Iterator[tuple[int, dict]]:
    """The lines of a resource's file in one backup, checked against what the manifest recorded:
    stored bytes, sha256 and line count by the file reader, then records and tombstones here.
    A file that differs raises at its end, before the restore clears its in-progress marker, so
    nothing from it ever looks complete."""
    entry = manifest.resources[resource]
    lines = tombstones = 0
    for data in entry.data_files():  # a sharded resource: its parts in key order
        for n, line in read_records(repo, manifest.id, data.file, data.compression, data):
            raw = line.get(RAW_KEY)
            tombstones += isinstance(raw, dict) and raw.get("deleted") is True
            lines += 1
            yield n, line
    if (lines - tombstones, tombstones) != (entry.records, entry.tombstones):
        raise IntegrityError(
            f"{describe_files(repo, manifest.id, entry)}: {lines - tombstones} records and {tombstones} tombstones, "
            f"the manifest of backup {manifest.id} records {entry.records} and {entry.tombstones}; the restore "
            "stopped with its target marked unfinished")


def chain_lines(repo: Repository, manifest: Manifest, resource: str) -> Iterator[tuple[Manifest, int, dict]]:
    """(backup, line number, line) of every line that decides the resource's state at `manifest`:
    the chain newest first, the first line seen for a key winning (a tombstone: deleted), each
    file checked against its manifest (checked_lines). Memory holds the keys of the chain's
    incrementals, not those of its snapshot (nothing older follows it)."""
    seen: set[str] = set()  # keys decided by a newer backup of the chain
    chain = resource_chain(repo, manifest, resource)
    for position, m in enumerate(chain):
        oldest = position == len(chain) - 1
        for n, line in checked_lines(repo, m, resource):
            raw = line.get(RAW_KEY)
            if not isinstance(raw, dict) or "key" not in raw:
                raise IntegrityError(f"{describe_files(repo, m.id, m.resources[resource])}: line {n} has no "
                                     f"{RAW_KEY} object")
            if raw["key"] in seen:
                continue
            if not oldest:
                seen.add(raw["key"])
            yield m, n, line


READ_BACK_BATCH = 256
DEFAULT_CONTENT_TYPE = "application/octet-stream"  # what stores report for an object written without one


def object_differences(want: RawObject, got: RawObject | None, empty_may_drop: bool = False) -> list[str]:
    """What differs between an object as the backup holds it and as read back (empty: equal).
    Metadata keys compare case-insensitively: S3 lower-cases them. `empty_may_drop`: an empty
    value missing is an accepted loss, not a difference."""
    if got is None:
        return ["missing from the target"]
    out = []
    wanted = {k.lower(): v for k, v in want.metadata.items()}
    read = {k.lower(): v for k, v in got.metadata.items()}
    for k in sorted(wanted.keys() | read.keys()):
        if k not in read:
            if not (empty_may_drop and wanted[k] == ""):
                out.append(f"metadata {k!r} lost ({wanted[k]!r} was written)")
        elif k not in wanted:
            out.append(f"metadata {k!r} appeared ({read[k]!r})")
        elif wanted[k] != read[k]:
            out.append(f"metadata {k!r} reads {read[k]!r}, {wanted[k]!r} was written")
    if (want.content_type or DEFAULT_CONTENT_TYPE) != (got.content_type or DEFAULT_CONTENT_TYPE):
        out.append(f"content type reads {got.content_type!r}, {want.content_type!r} was written")
    if want.body != got.body:
        out.append(f"body differs ({len(got.body)} bytes read, {len(want.body)} written)")
    return out


def state_lines(repo: Repository, manifest: Manifest, resource: str) -> Iterator[dict]:
    """The resource's live lines at this backup: the newest line of each key over its chain,
    tombstones left out (what a restore writes, and what a drill compares with)."""
    for _m, _n, line in chain_lines(repo, manifest, resource):
        if not line[RAW_KEY].get("deleted"):
            yield line


def fetch_back(store: Store, keys: list[str]) -> list[RawObject | None]:
    """The objects at `keys`, None for a missing one (read back after a restore)."""
    try:
        return list(store.get_many(keys))
    except NotFound:  # one is missing: look at them one by one to name it
        out: list[RawObject | None] = []
        for key in keys:
            try:
                out.append(store.get(key))
            except NotFound:
                out.append(None)
        return out


def live_objects(manifest: Manifest, resource: str) -> int | None:
    """How many objects the resource holds at this backup (its key index counts them): the total
    a restore's progress runs to, so it can show an ETA."""
    return manifest.resources[resource].index_entries


def merge_database_json(target: dict | None, source: dict, resources: list[str]) -> dict:
    """The target's s3db.json with the restored resources' definitions added; a resource the
    target already defines differently is refused."""
    if target is None:
        merged = {k: v for k, v in source.items() if k != "resources"}
        merged["resources"] = {}
    else:
        merged = orjson.loads(orjson.dumps(target))
        merged.setdefault("resources", {})
    for name in resources:
        incoming = source["resources"][name]
        existing = merged["resources"].get(name)
        if existing is not None and _definition_hash(existing) != _definition_hash(incoming):
            raise ConflictError(
                f"target s3db.json already defines resource {name!r} differently "
                f"({_definition_hash(existing)} vs the backup's {_definition_hash(incoming)}); "
                "restore into another database or drop that resource from the target first"
            )
        if existing is None or target is None:
            merged["resources"][name] = incoming
    return merged


def _definition_hash(entry: dict) -> str | None:
    version = entry.get("currentVersion")
    return (entry.get("versions", {}).get(version) or {}).get("hash")


class RestoreRun:
    def __init__(self, repo: Repository, backup_id: str, target: Store, *, resources: list[str] | None = None,
                 mode: str = "safe", dry_run: bool = False, progress: Progress | None = None,
                 lock: LockOptions | None = None, verify: bool = False, accept_empty_metadata_loss: bool = False,
                 ids: list[str] | None = None):
        """ids: restore only these records (restic's restore --include), with merge semantics: the
        target keeps its other records and its sequences."""
        if mode not in MODES:
            raise UsageError(f"unknown restore mode {mode!r}; choose one of {', '.join(MODES)}")
        if ids is not None and mode != "merge":
            raise UsageError(f"restoring single records merges them into the target; mode {mode!r} does not apply")
        self.ids = set(ids) if ids is not None else None
        self.repo, self.backup_id, self.target = repo, backup_id, target
        self.resources, self.mode, self.dry_run = resources, mode, dry_run
        self.progress = progress or Progress()
        self.lock = lock
        self.verify = verify and not dry_run
        self.accept_empty_metadata_loss = accept_empty_metadata_loss
        self._drops_empty = False  # the target was probed and drops empty metadata values
        self._kept: dict[str, set[str]] = {}  # skip mode: keys the target held and kept, per resource

    def run(self) -> RestoreReport:
        """Restore under the target's restore lease (one restore per target); a dry run writes
        nothing and takes none."""
        if self.dry_run:
            return self._run()
        with acquire(StoreLeaseBackend(self.target), "restore", self.target.url, self.lock):
            return self._run()

    def _run(self) -> RestoreReport:
        manifest = committed_manifest(self.repo, self.backup_id)
        for bid in manifest.chain:
            committed_manifest(self.repo, bid)  # a missing parent fails before anything is written
        available = list(manifest.resources)
        chosen = available if not self.resources else self.resources
        missing = [r for r in chosen if r not in available]
        if missing:
            raise NotFound(f"backup {self.backup_id} does not hold resource(s) {', '.join(missing)}; it holds {', '.join(available)}")
        report = RestoreReport(self.backup_id, self.target.url, self.mode, self.dry_run, chain=list(manifest.chain))
        try:
            target_db = self.target.read_database_json()
        except NotFound:  # no s3db.json yet; an unreadable one is an error, never overwritten
            target_db = None
        merged = merge_database_json(target_db, manifest.database, chosen)  # conflicts fail early
        marker = restore_marker.read(self.target)
        if marker is not None and self.mode == "safe":
            raise restore_marker.unfinished(self.target, marker, "restored into in safe mode")
        if self.mode == "safe":
            held = [name for name in chosen if next(iter(self.target.list_data(name)), None) is not None]
            if held:
                refusal = (f"target {self.target.url} already holds records of resource(s) {', '.join(held)}; "
                           "choose --mode replace (delete them first), merge (overwrite same ids, keep others) "
                           "or skip (keep existing ids)")
                if not self.dry_run:
                    raise ConflictError(refusal)
                report.refused = refusal  # a dry run shows the plan, and says the real run would refuse
        if not self.dry_run:
            self._probe_target(manifest, chosen)
            restore_marker.write(self.target, self.backup_id, self.mode, chosen, iso_ms(datetime.now(timezone.utc)))
        for name in chosen:
            report.resources[name] = self._restore_resource(manifest, name)
        if self.verify:  # before the target is marked whole: a difference leaves it unfinished
            differences: list[str] = []
            for name in chosen:
                plan = report.resources[name]
                plan.verified, plan.empty_values_lost, found = self._read_back(manifest, name)
                differences += found
            if differences:
                shown = "\n  ".join(differences[:20]) + (f"\n  ... and {len(differences) - 20} more"
                                                         if len(differences) > 20 else "")
                checked = sum(p.verified for p in report.resources.values()) + len(differences)
                raise IntegrityError(
                    f"restore --verify: {len(differences)} of {checked} objects read back from {self.target.url} differ "
                    f"from backup {self.backup_id} (the target stays marked unfinished):\n  {shown}")
        sequenced = chosen if self.ids is None else []  # single records leave the target's sequences alone
        for name in sequenced:
            for raw in manifest.sequences.get(name, []):
                if not self.dry_run:
                    self.target.put(raw_from_json(raw))
        report.database_json = "written" if target_db is None else "merged"
        if not self.dry_run:
            body = orjson.dumps(merged, option=orjson.OPT_INDENT_2)
            self.target.put(RawObject(key=DATABASE_JSON_KEY, metadata={}, content_type="application/json", body=body))
            restore_marker.clear(self.target)  # the last write: the target is whole
        return report

    def _probe_target(self, manifest: Manifest, chosen: list[str]) -> None:
        """Before anything is written: a target that drops empty metadata values (SeaweedFS)
        would lose every "" and [] field of the backup. Refuse, naming them, unless accepted."""
        self._drops_empty = target_probe.drops_empty_metadata(self.target)
        if not self._drops_empty or self.accept_empty_metadata_loss:
            return
        losses: list[str] = []
        for name in chosen:
            schema = ResourceSchema.from_database_json(name, manifest.database)
            for obj in self._written(manifest, name):
                for k in target_probe.empty_values(obj):
                    field_name = schema.key_to_attribute.get(k) or schema.key_to_plugin_attribute.get(k) or k
                    losses.append(f"{name} {id_from_key(obj.key)}: {field_name}")
        if losses:
            shown = "\n  ".join(losses[:20]) + (f"\n  ... and {len(losses) - 20} more" if len(losses) > 20 else "")
            raise MetadataLossRefused(
                f"target {self.target.url} drops empty metadata values (probed before writing): restoring backup "
                f"{self.backup_id} there would lose {len(losses)} empty field value(s) (\"\" or []), which s3db.js would "
                f"then read as missing:\n  {shown}\nrestore into another server or a folder, or pass "
                "--accept-empty-metadata-loss to restore without them (nothing was written)")

    def _restore_resource(self, manifest: Manifest, name: str) -> ResourcePlan:
        """Streams the resource's chain into the target. Memory holds the keys of the chain's
        incrementals (the newest line of a key wins) but not those of its snapshot, nor the
        records or their references: a restore is flat in safe and replace modes. skip and
        merge hold the target's existing keys, and merge its new references, to compare."""
        plan = ResourcePlan(name)
        schema = ResourceSchema.from_database_json(name, manifest.database)
        definition = manifest.resource_definition(name)
        partitions = list(definition.get("partitions") or {})
        version = definition.get("currentVersion", "v1")
        if self.mode == "replace":
            self._delete_existing(name, plan)
        existing: set[str] = set()
        if self.mode in ("skip", "merge"):
            existing = {info.key for info in self.target.list_data(name)}
        if self.mode == "skip" and self.verify:
            self._kept[name] = existing
        new_refs: set[str] = set()  # merge only: the references this restore wrote
        restored_ids: set[str] = set()  # merge only: ids whose references it rewrote
        self.progress.start(name, len(self.ids) if self.ids else live_objects(manifest, name))

        lines = self._decided(manifest, name)
        checked = self._with_target_equal(lines, existing) if self.mode == "merge" else ((l, False) for l in lines)

        def objects() -> Iterator[RawObject]:
            for line, held_equal in checked:
                raw = line[RAW_KEY]
                key = raw["key"]
                record_id = line.get("id")
                if raw.get("deleted"):
                    if key in existing and self.mode != "skip":
                        plan.deleted += 1
                        if not self.dry_run:
                            self.target.delete(key)
                        # its partition references are stale too (s3db.js would still list it)
                        restored_ids.add(record_id)
                    continue
                if self.mode == "skip" and key in existing:
                    plan.kept_existing += 1
                    continue
                self.progress.advance(name)
                if held_equal:  # merge: already there as backed up; its references are written again below
                    plan.identical += 1
                else:
                    plan.written += 1
                    yield raw_from_json(raw)
                if self.mode == "merge":
                    restored_ids.add(record_id)
                # its partition references, one empty object per partition, right after it
                for p in partitions:
                    ref = partition_reference_key(schema, p, line, record_id)
                    if ref:
                        plan.partition_refs += 1
                        if self.mode == "merge":
                            new_refs.add(ref)
                        yield RawObject(key=ref, metadata={"_v": version}, content_type=None, body=b"")

        if self.dry_run:
            for _ in objects():
                pass
        else:
            # safe found the resource empty and replace emptied it: nothing to replace, and the
            # marker flags an interrupted restore, so the store may write without renames
            self.target.put_many(objects(), fresh=self.mode in ("safe", "replace"))
        if self.mode == "merge":
            # references of the ids this restore touched that it did not write again are stale
            stale = [info.key for info in self.target.list_prefix(f"resource={name}/partition=")
                     if info.key not in new_refs and id_from_key(info.key) in restored_ids]
            plan.stale_refs_deleted = len(stale)
            if not self.dry_run:
                for key in stale:
                    self.target.delete(key)
        self.progress.finish(name)
        return plan

    def _written(self, manifest: Manifest, name: str) -> Iterator[RawObject]:
        """The objects of the resource this restore wrote, as the backup holds them (newest line
        of each key; tombstones and kept keys left out)."""
        kept = self._kept.get(name, set())
        for line in self._decided(manifest, name):
            raw = line[RAW_KEY]
            if not raw.get("deleted") and raw["key"] not in kept:
                yield raw_from_json(raw)

    def _with_target_equal(self, lines: Iterator[dict], existing: set[str]) -> Iterator[tuple[dict, bool]]:
        """merge: each line, with whether the target already holds its object exactly as the
        backup has it (read in batches; metadata, content type and body compared)."""
        while batch := list(islice(lines, READ_BACK_BATCH)):
            keys = [ln[RAW_KEY]["key"] for ln in batch if ln[RAW_KEY]["key"] in existing and not ln[RAW_KEY].get("deleted")]
            held = dict(zip(keys, fetch_back(self.target, keys))) if keys else {}
            for line in batch:
                got = held.get(line[RAW_KEY]["key"])
                yield line, got is not None and not object_differences(raw_from_json(line[RAW_KEY]), got)

    def _decided(self, manifest: Manifest, name: str) -> Iterator[dict]:
        """The lines deciding the resource's state (chain_lines), only those of `ids` when given."""
        for _m, _n, line in chain_lines(self.repo, manifest, name):
            if self.ids is None or line.get("id") in self.ids:
                yield line

    def _read_back(self, manifest: Manifest, name: str) -> tuple[int, int, list[str]]:
        """restore --verify (restic's): every object written is read back from the target and
        compared with the backup: user metadata, content type, body. Returns how many were
        equal, how many empty values the target dropped (an accepted loss), and what differs in
        the others (object and field)."""
        self.progress.start(f"verify {name}", live_objects(manifest, name))
        differences: list[str] = []
        count = lost_empty = 0
        batch: list[RawObject] = []

        def compare() -> None:
            nonlocal count, lost_empty
            for want, got in zip(batch, self._fetch_back(batch)):
                found = object_differences(want, got, empty_may_drop=self._drops_empty)
                if self._drops_empty and got is not None:
                    lost = {k.lower() for k in target_probe.empty_values(want)} - {k.lower() for k in got.metadata}
                    lost_empty += len(lost)
                if found:
                    differences.append(f"{want.key}: {'; '.join(found)}")
                else:
                    count += 1
            self.progress.advance(f"verify {name}", len(batch))
            batch.clear()

        for obj in self._written(manifest, name):
            batch.append(obj)
            if len(batch) >= READ_BACK_BATCH:
                compare()
        compare()
        self.progress.finish(f"verify {name}")
        return count, lost_empty, differences

    def _fetch_back(self, batch: list[RawObject]) -> list[RawObject | None]:
        return fetch_back(self.target, [o.key for o in batch])

    def _delete_existing(self, name: str, plan: ResourcePlan) -> None:
        """replace: the resource's records and partition references go first, streamed."""
        for key in self.target.list_data_keys(name):
            plan.deleted += 1
            if not self.dry_run:
                self.target.delete(key)
        for info in self.target.list_prefix(f"resource={name}/partition="):
            plan.stale_refs_deleted += 1
            if not self.dry_run:
                self.target.delete(info.key)
