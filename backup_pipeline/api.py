"""The Python API, over the same engine and settings as the CLI and Dagster.

    from backup_pipeline import Backups
    b = Backups(source="file:///data/db", repo="./backups")
    m = b.backup("full")                      # or "incremental", "synthetic-full", resources=[...], exclude=[...]
    b.list(); b.status(m["id"]); b.verify(m["id"])
    b.verify_budget("10m")                    # the least recently verified backups, for 10 minutes
    b.restore(m["id"], target="file:///data/restored", mode="safe", dry_run=True)
    b.diff(full_id, "latest"); b.ls("latest"); b.find("u1"); b.dump("latest", "users", "u1")
    b.restore(target="file:///data/restored", at="2026-11-20T10:00Z")   # the newest backup finished by then
    b.drill("latest")                         # restore into a scratch folder, compare every record
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from .engine.backup import SYNTHETIC_FULL, BackupRequest, dry_run_backup, run_backup, source_identity
from .engine.check import CheckReport, check_repository
from .engine.catalog import (BackupInfo, PointInTime, complete_manifests, describe_backup, list_backups,
                             parse_point_in_time, resolve_at, resolve_backup_id)
from .engine.cleanup import run_cleanup
from .engine.drill import DrillReport, run_drill
from .engine.copy import copy_backup
from .engine.progress import Progress
from .engine.records import (RecordEntry, ResourceDiff, Sighting, diff_states, dump_record, find_record, list_records,
                             require_records)
from .engine.restore import RestoreReport, RestoreRun
from .engine.retention import Decision, RetentionPolicy
from .engine.stats import RepositoryStats, repository_stats
from .engine.synthetic import run_synthetic_full
from .engine.verification import BudgetReport, parse_budget, verify_remembered, verify_within
from .engine.verify import VerifyReport, committed_manifest
from .errors import UsageError
from .repository import Repository
from .repository.lock import LockOptions
from .repository.manifest import Manifest
from .settings import RepositorySettings, SourceSettings
from .store import Store


class Backups:
    def __init__(self, source: str | Store | SourceSettings | None = None,
                 repo: str | list[str] | Repository | RepositorySettings = "backups",
                 passphrase: str | None = None, *, repo_passphrase: str | None = None, encrypt: bool = False,
                 lock_wait: float = 0.0, lock_ttl: float = 60.0):
        """source: s3db.js connection string, SourceSettings or a Store; repo: folder,
        s3://bucket/prefix, a list of them (multi, strategy all), RepositorySettings or a Repository;
        passphrase: the s3db.js secrets passphrase; repo_passphrase: the repository encryption
        passphrase (encrypt=True encrypts a new one); lock_wait: seconds to wait for another writer."""
        if isinstance(source, str) or source is None:
            source = SourceSettings(connection=source, passphrase=passphrase)
        self._source = source
        self._store: Store | None = source if not isinstance(source, SourceSettings) else None
        self.passphrase = source.resolved_passphrase() if isinstance(source, SourceSettings) else passphrase
        if isinstance(repo, (str, list)):
            repo = RepositorySettings(repos=[repo] if isinstance(repo, str) else repo, repo_passphrase=repo_passphrase,
                                      encrypt=encrypt, lock_wait=lock_wait, lock_ttl=lock_ttl)
        if isinstance(repo, RepositorySettings):
            self.lock = repo.lock
            repo = repo.open()
        else:
            self.lock = LockOptions(wait=lock_wait, ttl=lock_ttl)
        self.repo: Repository = repo

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self._source.open()
        return self._store

    def close(self) -> None:
        if self._store is not None and isinstance(self._source, SourceSettings):
            self._store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- backups -------------------------------------------------------------------------
    def latest(self) -> Manifest | None:
        """The newest committed backup of this source: the parent of the next incremental."""
        manifests = complete_manifests(self.repo, source_identity(self.store))
        return manifests[-1] if manifests else None

    def backup(self, type: str = "full", *, resources: list[str] | None = None, exclude: list[str] | None = None,
               compression: str = "gzip", verify: bool = True, decrypt_secrets: bool = False,
               skip_corrupt: bool = False, full_if_no_parent: bool = False, progress: Progress | None = None,
               backup_id: str | None = None, parquet: bool = False, workers: int | None = None,
               skip_if_unchanged: bool = False, shard_records: int | None = None) -> Manifest:
        """Back up the source: type full, incremental or synthetic-full; resources/exclude select
        resources; compression gzip|zstd|brotli|none; verify re-reads before committing. Holds the
        repository's backup lease for this source while it runs. `skip_if_unchanged` (an
        incremental where nothing changed since its parent) commits nothing and returns the parent.
        A synthetic full builds a full backup from the newest committed backup of the source and
        its chain, in the repository alone: the source is not opened (engine/synthetic.py).
        `shard_records`: a resource listing more objects is backed up in key-range parts
        (engine/shards.py)."""
        request = BackupRequest(
            type=type, resources=resources, exclude=exclude, compression=compression, verify=verify,
            passphrase=self.passphrase, decrypt_secrets=decrypt_secrets, skip_corrupt=skip_corrupt,
            full_if_no_parent=full_if_no_parent, backup_id=backup_id, parquet=parquet, workers=workers,
            skip_if_unchanged=skip_if_unchanged, shard_records=shard_records,
        )
        if type == SYNTHETIC_FULL:
            return run_synthetic_full(self.repo, self.source_url(), request, progress, self.lock)
        return run_backup(self.store, self.repo, request, progress, self.lock)

    def source_url(self) -> str:
        """The source's identity as manifests record it, without opening the source when it is
        given by its connection string."""
        if self._store is None:
            return self._source.url()
        return source_identity(self._store)

    def backup_dry_run(self, type: str = "full", *, resources: list[str] | None = None,
                       exclude: list[str] | None = None, full_if_no_parent: bool = False):
        """What backup() would take, from the source's listings only (restic's backup --dry-run):
        (type, parent id, resource -> ResourceDryRun). Nothing is fetched, written or locked."""
        request = BackupRequest(type=type, resources=resources, exclude=exclude, full_if_no_parent=full_if_no_parent)
        return dry_run_backup(self.store, self.repo, request)

    def list(self) -> list[BackupInfo]:
        return list_backups(self.repo)

    def resolve(self, ref: str) -> str:
        """A backup's id from its id, a unique prefix of it, or `latest` (as restic names snapshots);
        every method taking a backup id accepts these."""
        return resolve_backup_id(self.repo, ref)

    def resolve_at(self, when: str | datetime) -> Manifest:
        """The newest committed backup finished at or before `when` (a datetime with a zone, or ISO
        8601 text with Z or an offset, or a date alone: the end of that UTC day). A backup's point
        in time is its finished_at (engine/catalog.py says why)."""
        return resolve_at(self.repo, parse_point_in_time(when) if isinstance(when, str) else when)

    def check(self, read_data_subset: str | None = None, progress: Progress | None = None) -> CheckReport:
        """restic's check: every committed backup's structure (manifest, chain, files at their
        recorded sizes); with read_data_subset ("n/t" or "x%") the content of those files too.
        Problems are in the report (`ok` false), each naming backup and file."""
        return check_repository(self.repo, read_data_subset, progress)

    def stats(self) -> RepositoryStats:
        """Sizes, counts, growth and bytes stored again by full backups (restic's stats)."""
        return repository_stats(self.repo)

    def status(self, backup_id: str) -> BackupInfo:
        return describe_backup(self.repo, self.resolve(backup_id))

    def verify(self, backup_id: str, progress: Progress | None = None) -> VerifyReport:
        """Check a backup's files, records and chain (exit 4 naming what differs), remembering the
        outcome in the repository (`verifications/ID.json`) before returning or raising."""
        return verify_remembered(self.repo, self.resolve(backup_id), progress)

    def verify_budget(self, budget: float | str, progress: Progress | None = None) -> BudgetReport:
        """Verify the committed backups least recently verified first (never verified first) for
        `budget` (seconds, or text: 90s, 10m, 1h), finishing the backup in progress and starting
        none once it is spent (0: exactly one); each outcome remembered. The report holds what
        was verified, what failed (not raised: the others are verified too) and what is left,
        which the next call takes first (engine/verification.py)."""
        return verify_within(self.repo, parse_budget(budget), lock=self.lock, progress=progress)

    def restore(self, backup_id: str | None = None, target: str | Store | None = None, *,
                at: str | datetime | None = None, resources: list[str] | None = None,
                mode: str | None = None, dry_run: bool = False, progress: Progress | None = None,
                verify: bool = False, accept_empty_metadata_loss: bool = False,
                ids: list[str] | None = None) -> RestoreReport:
        """Restore the state at `backup_id` (or at the point in time `at`: the newest committed
        backup finished by then, named in the report's `point_in_time`) into `target`, mode safe
        by default; `verify` reads every written object back from the target and compares it with
        the backup before the target is marked whole. A target that drops empty metadata values is
        refused unless `accept_empty_metadata_loss`. `ids`: only these records of the one resource
        named, merged into the target (mode merge)."""
        if (backup_id is None) == (at is None) or target is None:
            raise UsageError("restore: give a target and either a backup id or a point in time (at), one of the two")
        chosen = self.resolve_at(at) if at is not None else None
        backup_id = chosen.id if chosen is not None else self.resolve(backup_id)
        manifest = committed_manifest(self.repo, backup_id)  # before the target is opened: a wrong id creates nothing
        if ids is not None:  # and each record is there
            resources = [require_records(self.repo, manifest, resources, ids)]
        mode = mode or ("safe" if ids is None else "merge")
        target_store = SourceSettings(connection=target).open(create=True) if isinstance(target, str) else target
        try:
            report = RestoreRun(self.repo, backup_id, target_store, resources=resources, mode=mode, dry_run=dry_run,
                                progress=progress, lock=self.lock, verify=verify,
                                accept_empty_metadata_loss=accept_empty_metadata_loss, ids=ids).run()
        finally:
            if isinstance(target, str):
                target_store.close()
        if chosen is not None:
            at_text = at if isinstance(at, str) else at.isoformat()
            report.point_in_time = PointInTime(at_text, chosen.id, chosen.finished_at)
        return report

    def drill(self, backup_id: str = "latest", *, scratch: str | Store | None = None, keep_scratch: bool = False,
              progress: Progress | None = None, workers: int | None = None) -> DrillReport:
        """Restore drill (engine/drill.py): restore the backup's chain into `scratch` (None: a
        temporary folder; a named target must be empty), read every record back through the
        decoder and compare it with the backup, then remove the scratch target (a named one is
        emptied) unless `keep_scratch`. Raises DrillFailed (exit 4, with `.report`) naming the
        resource and id of the first records that differ."""
        backup_id = self.resolve(backup_id)
        committed_manifest(self.repo, backup_id)  # before the scratch target is opened
        store = SourceSettings(connection=scratch).open(create=True) if isinstance(scratch, str) else scratch
        try:
            return run_drill(self.repo, backup_id, store, passphrase=self.passphrase, lock=self.lock,
                             progress=progress, keep_scratch=keep_scratch, workers=workers)
        finally:
            if isinstance(scratch, str):
                store.close()

    # -- records (restic's ls, diff, find, dump) ------------------------------------------
    def ls(self, backup_id: str, resources: list[str] | None = None) -> Iterator[RecordEntry]:
        """The records of the state at a backup (resource, id, size, content hash), per resource in id order."""
        return list_records(self.repo, committed_manifest(self.repo, self.resolve(backup_id)), resources)

    def diff(self, old: str, new: str, resources: list[str] | None = None) -> dict[str, ResourceDiff]:
        """Per resource, the ids added, changed and removed from the state at `old` to that at `new`."""
        return diff_states(self.repo, committed_manifest(self.repo, self.resolve(old)),
                           committed_manifest(self.repo, self.resolve(new)), resources)

    def find(self, record_id: str, resources: list[str] | None = None) -> list[Sighting]:
        """The backups holding a record, oldest first, with how it changed from one to the next."""
        return find_record(self.repo, record_id, resources)

    def dump(self, backup_id: str, resource: str, record_id: str) -> dict:
        """One record of the state at a backup, decoded as the backup line holds it."""
        return dump_record(self.repo, committed_manifest(self.repo, self.resolve(backup_id)), resource, record_id)

    def copy(self, backup_id: str, to: Repository) -> list[str]:
        """Copy a committed backup into another repository (files, then the manifest)."""
        return copy_backup(self.repo, to, self.resolve(backup_id), self.lock)

    # -- retention -----------------------------------------------------------------------
    def cleanup(self, policy: RetentionPolicy, *, apply: bool = False, now: datetime | None = None,
                progress: Progress | None = None) -> list[Decision]:
        """Decide, for every backup, keep or remove and why (engine/retention.py); a dry run
        unless `apply`, which deletes the "remove" ones, children before parents, under the
        repository's exclusive cleanup lease."""
        return run_cleanup(self.repo, policy, apply=apply, now=now, progress=progress, lock=self.lock)
