"""A backup built in steps, one resource at a time, committed later: what Dagster runs (each
resource is its own asset, possibly in its own process; the manifest asset commits).

The first step of a backup writes its plan (`plan.json`: id, type, parent, the source's
s3db.json snapshot) create-only, so every step of the same backup agrees on type and parent.
Each resource step leaves `RESOURCE.stage.json` next to its files (what the manifest will
record); commit reads them all and writes the manifest last.

Every step holds the repository's backup lease for the source while it works, in the group of
its partition: the steps of one backup run side by side, while another backup of the same
source (a CLI run, another partition) or a cleanup waits for them, or fails with exit code 7.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timezone

from ..errors import ConflictError, IntegrityError, NotFound, UsageError
from ..repository import Repository
from ..repository.files import read_json, write_json
from ..repository.lock import Lease, LockOptions, acquire
from ..repository.manifest import (PLAN, Manifest, Plan, ResourceEntry, ShardPlan, part_stage_name, shards_name,
                                   stage_name)
from ..store import Store
from .backup import BackupRequest, BackupRun, source_identity
from .catalog import complete_manifests

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class TypePolicy:
    """Which type a scheduled backup is: full on `full_weekday` (or every day with "daily"),
    or when there is no parent; incremental otherwise. `force` overrides (run config)."""

    full_weekday: str = "sunday"
    force: str | None = None  # "full" | "incremental" | None

    def decide(self, day: date, has_parent: bool) -> str:
        if self.force:
            if self.force not in ("full", "incremental"):
                raise UsageError(f"backup type {self.force!r}: choose full or incremental")
            return self.force if (self.force == "full" or has_parent) else "full"
        if self.full_weekday == "daily" or not has_parent:
            return "full"
        if self.full_weekday not in WEEKDAYS:
            raise UsageError(f"full_weekday {self.full_weekday!r}: a weekday name or 'daily'")
        return "full" if WEEKDAYS[day.weekday()] == self.full_weekday else "incremental"


def partition_backup_id(kind: str, day: date, source: str) -> str:
    """Deterministic per (source, day, type), so every step of a partition finds the same folder."""
    tag = hashlib.sha256(source.encode()).hexdigest()[:4]
    return f"{'full' if kind == 'full' else 'incr'}-{day.isoformat()}T000000Z-{tag}"


def partition_lease(repo: Repository, store: Store, day: date, lock: LockOptions | None) -> Lease:
    """The backup lease of the source, shared by the steps of the day's backup."""
    source = source_identity(store)
    return acquire(repo, "backup", source, lock, group=f"partition {day.isoformat()} of {source}")


class StagedBackup:
    def __init__(self, store: Store, repo: Repository, plan: Plan, request: BackupRequest,
                 lock: LockOptions | None = None, lease_held: bool = False):
        self.store, self.repo, self.plan, self.lock = store, repo, plan, lock
        self.lease_held = lease_held  # the caller holds the day's lease from plan to commit
        self.backup_id = plan.id
        self.day = date.fromisoformat(plan.day)
        parent = repo.read_manifest(plan.parent) if plan.parent else None
        if plan.parent and parent is None:
            raise IntegrityError(f"backup {self.backup_id}: its parent {plan.parent} is missing or incomplete")
        request.type = plan.type
        self.run = BackupRun(store, repo, request, parent=parent)

    @classmethod
    def for_day(cls, store: Store, repo: Repository, day: date, policy: TypePolicy,
                request: BackupRequest | None = None, lock: LockOptions | None = None,
                lease_held: bool = False) -> "StagedBackup":
        request = request or BackupRequest()
        source = source_identity(store)
        for kind in ("full", "incremental"):  # an existing plan for this day wins
            plan = _read_plan(repo, partition_backup_id(kind, day, source))
            if plan is not None:
                return cls(store, repo, plan, request, lock, lease_held)
        # the parent is chosen under the lease
        with nullcontext() if lease_held else partition_lease(repo, store, day, lock):
            staged = cls._plan(store, repo, day, policy, request, lock)
        staged.lease_held = lease_held
        return staged

    @classmethod
    def _plan(cls, store: Store, repo: Repository, day: date, policy: TypePolicy, request: BackupRequest,
              lock: LockOptions | None) -> "StagedBackup":
        source = source_identity(store)
        day_start = f"{day.isoformat()}T00:00:00.000Z"
        earlier = [m for m in complete_manifests(repo, source) if m.started_at < day_start]
        parent = earlier[-1] if earlier else None
        kind = policy.decide(day, parent is not None)
        bid = partition_backup_id(kind, day, source)
        # A partition's backup is dated by its day (its logical time), not by when it ran: so a
        # backfill orders and retains by day, and finds as parent the newest backup before it.
        plan = Plan(id=bid, type=kind, parent=parent.id if (parent and kind == "incremental") else None,
                    day=day.isoformat(), started_at=day_start, created_at=datetime.now(timezone.utc).isoformat(),
                    source=source, database=store.read_database_json(), compression=request.compression)
        existing = _read_plan(repo, bid)  # a step of the same day may have planned it meanwhile
        if existing is None and repo.read_manifest(bid) is None:
            write_json(repo, bid, PLAN, plan)
        return cls(store, repo, existing or plan, request, lock)

    @classmethod
    def existing_for_day(cls, store: Store, repo: Repository, day: date) -> "StagedBackup | None":
        """The day's backup if a step already planned it (checks read, never plan)."""
        source = source_identity(store)
        for kind in ("full", "incremental"):
            plan = _read_plan(repo, partition_backup_id(kind, day, source))
            if plan is not None:
                return cls(store, repo, plan, BackupRequest(compression=plan.compression))
        return None

    def stage_info(self, resource: str) -> ResourceEntry | None:
        return self.staged().get(resource)

    @property
    def resources(self) -> list[str]:
        return list(self.plan.database.get("resources", {}))

    def committed(self) -> Manifest | None:
        return self.repo.read_manifest(self.backup_id)

    def stage_resource(self, name: str, whole: bool = False) -> ResourceEntry:
        """Back up the resource in this step (its parts one after the other when it is sharded;
        `whole`: in one piece, as its shard plan found it fits one part)."""
        self._stageable(name)
        with self._lease():
            self.run.refuse_partial_source()
            if whole:
                result = self.run.backup_part(self.backup_id, name, self.plan.database, None)
            else:
                result = self.run.backup_resource(self.backup_id, name, self.plan.database)
            result = self.run.with_parquet(self.backup_id, name, result, self.plan.database)
            write_json(self.repo, self.backup_id, stage_name(name), result)
        return result

    # -- a sharded resource, one step per part (shards.py) ----------------------------------
    def shard_plan(self, name: str) -> ShardPlan | None:
        """The resource's key ranges for this backup, decided by its first step and kept in
        RESOURCE.shards.json so every part's step agrees; None: backed up whole (stage_resource)."""
        self._stageable(name)
        where = shards_name(name)
        try:
            return ShardPlan.load(read_json(self.repo, self.backup_id, where), self.repo.describe(self.backup_id, where))
        except NotFound:
            pass
        with self._lease():
            ranges = self.run.shard_ranges(name)
            if ranges is None:
                return None
            plan = ShardPlan(self.run.req.shard_records, ranges)
            write_json(self.repo, self.backup_id, where, plan)
        return plan

    def stage_part(self, name: str, part: int) -> ResourceEntry:
        """Back up part `part` of the resource (RESOURCE.part-NNN files and stage file)."""
        self._stageable(name)
        plan = self.shard_plan(name)
        if plan is None or not 0 <= part < len(plan.ranges):
            raise NotFound(f"backup {self.backup_id}: resource {name!r} has no part {part} "
                           f"({len(plan.ranges) if plan else 'no'} parts planned)")
        with self._lease():
            self.run.refuse_partial_source()
            entry = self.run.backup_part(self.backup_id, name, self.plan.database, plan.ranges[part])
            write_json(self.repo, self.backup_id, part_stage_name(name, part), entry)
        return entry

    def join_parts(self, name: str) -> ResourceEntry:
        """The sharded resource's entry from its staged parts (all of them, or it fails naming the
        missing), its Parquet mirror when asked, staged as RESOURCE.stage.json."""
        plan = self.shard_plan(name)
        if plan is None:
            raise NotFound(f"backup {self.backup_id}: resource {name!r} is not sharded")
        names = set(self.repo.file_names(self.backup_id))
        missing = [r.part for r in plan.ranges if part_stage_name(name, r.part) not in names]
        if missing:
            raise IntegrityError(f"backup {self.backup_id}: part(s) {', '.join(map(str, missing))} of resource "
                                 f"{name!r} were not backed up (their step failed or did not run)")
        parts = [ResourceEntry.load(read_json(self.repo, self.backup_id, part_stage_name(name, r.part)),
                                    self.repo.describe(self.backup_id, part_stage_name(name, r.part)))
                 for r in plan.ranges]
        with self._lease():
            entry = ResourceEntry.joined(parts, plan.shard_records)
            entry = self.run.with_parquet(self.backup_id, name, entry, self.plan.database)
            write_json(self.repo, self.backup_id, stage_name(name), entry)
        return entry

    def _stageable(self, name: str) -> None:
        if self.committed() is not None:
            raise ConflictError(f"backup {self.backup_id} is already committed; a committed backup is never "
                                "rewritten (materialize another partition, or remove it with cleanup)")
        if name not in self.resources:
            raise NotFound(f"resource {name!r} is not in the plan of backup {self.backup_id}")

    def close(self) -> None:
        """Stop the decoding workers: kept between resources, since starting them costs ~1 s."""
        self.run.decoder.close()

    def __enter__(self) -> "StagedBackup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def staged(self) -> dict[str, ResourceEntry]:
        out = {}
        names = set(self.repo.file_names(self.backup_id))
        for name in self.resources:
            if stage_name(name) in names:
                out[name] = ResourceEntry.load(read_json(self.repo, self.backup_id, stage_name(name)),
                                               self.repo.describe(self.backup_id, stage_name(name)))
        return out

    def _lease(self):
        return nullcontext() if self.lease_held else partition_lease(self.repo, self.store, self.day, self.lock)

    def commit(self, require_all: bool = True) -> Manifest:
        with self._lease():
            return self._commit(require_all)

    def _commit(self, require_all: bool) -> Manifest:
        staged = self.staged()
        missing = [r for r in self.resources if r not in staged]
        if require_all and missing:
            raise IntegrityError(f"backup {self.backup_id} cannot be committed: resource(s) {', '.join(missing)} "
                                 "were not backed up (their step failed or did not run)")
        started = datetime.fromisoformat(self.plan.started_at)
        manifest = self.run.build_manifest(self.backup_id, started, self.plan.database, staged)
        manifest.partition, manifest.created_at = self.plan.day, self.plan.created_at or None
        return self.run.commit(manifest)


def _read_plan(repo: Repository, backup_id: str) -> Plan | None:
    try:
        return Plan.load(read_json(repo, backup_id, PLAN), repo.describe(backup_id, PLAN))
    except NotFound:
        return None
