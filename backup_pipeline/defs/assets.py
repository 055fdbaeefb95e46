"""The day's backup: one asset per s3db.js resource and the manifest asset that commits, all made
by one step (a multi-asset), so a partition is one process and one repository lease from plan to
commit.

- Per day, under the source's backup lease: plan (type and parent), back up each selected
  resource, evaluate its checks, then, if the manifest is selected and every check passed,
  commit (the manifest written last) and evaluate `backup_verifies` on it. A failed check fails
  the step before the commit: nothing incomplete looks committed.
- A partition whose backup is committed is reported again, nothing written (its checks re-run).
- A backfill is one run over its days (`BackfillPolicy.single_run`), done oldest first, so each
  incremental's parent is committed before the next day plans: full -> incremental -> ...
"""


import os
import time
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Optional

import dagster as dg

from ..engine.backup import BackupRequest
from ..engine.staged import StagedBackup, TypePolicy, partition_lease
from ..repository.manifest import MANIFEST as MANIFEST_NAME, Manifest, ResourceEntry
from ..store.retry import retry_count
from .alerts import MANIFEST_FRESHNESS
from .checks import check_specs, manifest_check, manifest_check_spec, resource_checks
from .resources import BackupRepository, S3dbSource

GROUP = "s3db_backup"
START_DATE = os.environ.get("BACKUP_PIPELINE_START_DATE", "2026-11-01")
daily = dg.DailyPartitionsDefinition(start_date=START_DATE)
MANIFEST_KEY = dg.AssetKey(["s3db", "backup_manifest"])


def resource_asset_key(resource: str) -> dg.AssetKey:
    return dg.AssetKey(["s3db", resource])


class BackupType(str, Enum):
    full = "full"
    incremental = "incremental"


class BackupRunConfig(dg.Config):
    type: Optional[BackupType] = None  # overrides the weekday policy for this run (a dropdown)


# s3db.js attribute rules -> a column type DuckDB users recognise
_TYPES = {"string": "VARCHAR", "email": "VARCHAR", "url": "VARCHAR", "secret": "VARCHAR", "ip4": "VARCHAR",
          "ip6": "VARCHAR", "uuid": "VARCHAR", "number": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
          "datetime": "TIMESTAMP", "array": "LIST", "json": "JSON", "object": "STRUCT", "embedding": "LIST"}


def column_schema(database: dict, resource: str) -> dg.TableSchema:
    """The columns of a resource's backup lines, from its s3db.js schema."""
    entry = (database.get("resources") or {}).get(resource) or {}
    version = (entry.get("versions") or {}).get(entry.get("currentVersion") or "v1") or {}
    columns = [dg.TableColumn("id", "VARCHAR", description="the record id")]
    for name, rule in (version.get("attributes") or {}).items():
        if name == "id":
            continue
        kind = "object" if isinstance(rule, dict) else str(rule).split("|", 1)[0].strip()
        if "integer:true" in str(rule):
            kind = "integer"
        columns.append(dg.TableColumn(name, "BIGINT" if kind == "integer" else _TYPES.get(kind, "VARCHAR"),
                                      description=str(rule) if not isinstance(rule, dict) else "nested object"))
    return dg.TableSchema(columns=columns)


@dataclass
class DayOutcome:
    day: str
    backup_id: str
    type: str
    parent: str | None
    database: dict
    entries: dict[str, ResourceEntry] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    retries: int = 0
    checks: list[dg.AssetCheckResult] = field(default_factory=list)
    manifest: Manifest | None = None
    already_committed: bool = False


def open_backup(s3db: S3dbSource, backup_repo: BackupRepository):
    """The source store, the repository, the backup request and the lease options a step works with."""
    source = s3db.settings()
    source.check()
    request = BackupRequest(compression=backup_repo.compression, passphrase=source.resolved_passphrase(),
                            decrypt_secrets=source.decrypt_secrets, workers=backup_repo.workers,
                            parquet=backup_repo.parquet, skip_corrupt=backup_repo.skip_corrupt,
                            shard_records=backup_repo.shard_records,
                            verify=backup_repo.verify)
    settings = backup_repo.settings()
    return source.open(), settings.open(), request, settings.lock


def backup_day(context, day: str, resources: list[str], commit: bool, s3db: S3dbSource,
               backup_repo: BackupRepository, forced: str | None, also_check: list[str] = ()) -> DayOutcome:
    """Back up `resources` for the day and check them (and the already staged `also_check`);
    with `commit`, commit if every check passed. Everything under one lease."""
    store, repo, request, lock = open_backup(s3db, backup_repo)
    retries_before = retry_count()
    when = date.fromisoformat(day)
    try:
        with partition_lease(repo, store, when, lock):  # held from the plan to the commit
            staged = StagedBackup.for_day(store, repo, when, TypePolicy(full_weekday=backup_repo.full_weekday,
                                                                        force=forced), request, lock, lease_held=True)
            with staged:  # its decoding workers serve every resource of the day
                return _backup_staged(context, staged, repo, resources, commit, backup_repo, also_check,
                                      retries_before)
    finally:
        store.close()


def _backup_staged(context, staged: StagedBackup, repo, resources: list[str], commit: bool,
                   backup_repo: BackupRepository, also_check, retries_before: int) -> DayOutcome:
    day = staged.plan.day
    out = DayOutcome(day, staged.backup_id, staged.plan.type, staged.plan.parent, staged.plan.database)
    committed = staged.committed()
    if committed is not None:
        context.log.info(f"{day}: backup {committed.id} is already committed; reporting it again, nothing written")
        out.already_committed, out.manifest = True, committed
        out.entries = {r: committed.resources[r] for r in resources if r in committed.resources}
    else:
        for r in resources:
            context.log.info(f"{day}: backing up {r} into {staged.backup_id} ({staged.plan.type}, parent "
                             f"{staged.plan.parent or 'none'})")
            t0 = time.perf_counter()
            out.entries[r] = staged.stage_resource(r)
            out.seconds[r] = time.perf_counter() - t0
    checked = dict(out.entries)
    for r in also_check:  # a commit-only run: the checks of what earlier runs staged
        entry = committed.resources.get(r) if committed is not None else staged.stage_info(r)
        if entry is not None:
            checked.setdefault(r, entry)
    for r, entry in checked.items():
        out.checks += resource_checks(repo, staged.backup_id, r, entry, resource_asset_key(r),
                                      backup_repo.parquet, context.log)
    failed = [c for c in out.checks if not c.passed]
    if failed or not commit:
        out.retries = retry_count() - retries_before
        return out
    committed_now = out.manifest is None
    if committed_now:
        out.manifest = staged.commit()
        context.log.info(f"{day}: committed {out.manifest.id} ({out.manifest.totals.records} records)")
    out.checks.append(manifest_check(repo, out.manifest, MANIFEST_KEY, verified_now=committed_now))
    out.retries = retry_count() - retries_before
    return out


def entry_metadata(backup_id: str, plan_type: str, parent: str | None, database: dict, resource: str,
                   entry: ResourceEntry, repo_describe) -> dict:
    """A resource's materialization metadata: counts, where its data is (its file and sha256, or
    its parts' files), its columns; `parquet_rows` with a mirror."""
    if entry.data is not None:
        files = {"sha256": entry.data.sha256, "file": dg.MetadataValue.path(repo_describe(backup_id, entry.data.file))}
    else:
        files = {"parts": dg.MetadataValue.int(len(entry.parts)),
                 "files": dg.MetadataValue.md("\n".join(f"- `{repo_describe(backup_id, f.file)}` ({f.lines:,} lines)"
                                                         for f in entry.data_files()))}
    md = {
        "backup_id": backup_id, "type": plan_type, "parent": parent or "none",
        "records": dg.MetadataValue.int(entry.records), "tombstones": dg.MetadataValue.int(entry.tombstones),
        "unchanged": dg.MetadataValue.int(entry.unchanged), "bytes": dg.MetadataValue.int(entry.data_bytes),
        **files, "dagster/row_count": dg.MetadataValue.int(entry.records),
        "dagster/column_schema": column_schema(database, resource),
    }
    if entry.parquet is not None:
        md["parquet_rows"] = dg.MetadataValue.int(entry.parquet.rows)
    return md


def _resource_metadata(outcome: DayOutcome, resource: str, repo_describe) -> dict:
    entry = outcome.entries[resource]
    md = {**entry_metadata(outcome.backup_id, outcome.type, outcome.parent, outcome.database, resource, entry,
                           repo_describe),
          "already_committed": outcome.already_committed, "retries": dg.MetadataValue.int(outcome.retries)}
    seconds = outcome.seconds.get(resource)
    if seconds is not None:
        md["duration_s"] = dg.MetadataValue.float(round(seconds, 3))
        if seconds >= 1.0:  # a rate over milliseconds says nothing
            md["records_per_second"] = dg.MetadataValue.float(round(entry.fetched / seconds, 1))
    return md


def _manifest_metadata(outcome: DayOutcome, repo_describe) -> dict:
    m = outcome.manifest
    return {
        "backup_id": m.id, "type": m.type, "parent": m.parent or "none",
        "resources": dg.MetadataValue.int(len(m.resources)), "records": dg.MetadataValue.int(m.totals.records),
        "tombstones": dg.MetadataValue.int(m.totals.tombstones), "bytes": dg.MetadataValue.int(m.totals.bytes),
        "verified": m.verified, "already_committed": outcome.already_committed,
        "manifest": dg.MetadataValue.path(repo_describe(m.id, MANIFEST_NAME)),
    }


def build_backup_assets(resources: list[str], *, parquet: bool = False, source_kind: str = "s3",
                        repo_kind: str = "s3", sharded: list[str] = ()) -> dg.AssetsDefinition:
    """The day's backup step; the `sharded` resources are assets of their own (sharded.py),
    which the manifest asset waits for and commits with the others."""
    committed_with = resources
    resources = [r for r in resources if r not in sharded]
    specs = [dg.AssetSpec(resource_asset_key(r), group_name=GROUP, kinds={source_kind, "json"},
                          description=f"Backup of the s3db.js resource `{r}` for the day: RESOURCE.jsonl.gz "
                                      "(decoded records plus the raw objects) and its key index.")
             for r in resources]
    specs.append(dg.AssetSpec(MANIFEST_KEY, group_name=GROUP, kinds={repo_kind}, freshness_policy=MANIFEST_FRESHNESS,
                              deps=[resource_asset_key(r) for r in committed_with],
                              description="Commits the day's backup: verifies every file, then writes the manifest "
                                          "(s3db.json) last. A backup without it is never listed as complete nor "
                                          "restored."))
    checks = [c for r in resources for c in check_specs(resource_asset_key(r), parquet)]
    checks.append(manifest_check_spec(MANIFEST_KEY))

    @dg.multi_asset(name="s3db_backup", specs=specs, check_specs=checks, can_subset=True, partitions_def=daily,
                    backfill_policy=dg.BackfillPolicy.single_run())
    def s3db_backup(context: dg.AssetExecutionContext, config: BackupRunConfig, s3db: S3dbSource,
                    backup_repo: BackupRepository):
        selected = context.selected_asset_keys
        wanted = [r for r in resources if resource_asset_key(r) in selected]
        commit = MANIFEST_KEY in selected
        forced = (config.type.value if config.type else None) or context.run.tags.get("backup_pipeline/type")
        selected_checks = context.selected_asset_check_keys
        also_check = [r for r in resources if r not in wanted
                      and any(k.asset_key == resource_asset_key(r) for k in selected_checks)]
        describe = backup_repo.open().describe
        outcome = None
        for day in sorted(context.partition_keys):  # oldest first: each day's parent is committed
            outcome = backup_day(context, day, wanted, commit, s3db, backup_repo, forced, also_check)
            failed = [c for c in outcome.checks if not c.passed]
            if failed:
                yield from _report(outcome, wanted, selected_checks, describe)
                raise dg.Failure(
                    description=f"{day}: backup {outcome.backup_id} not committed: "
                                f"{len(failed)} check(s) failed: "
                                + "; ".join(f"{c.asset_key.path[-1]} {c.check_name}: {c.description}" for c in failed),
                    metadata={"backup_id": outcome.backup_id})
        yield from _report(outcome, wanted, selected_checks, describe)

    return s3db_backup


def _report(outcome: DayOutcome, wanted: list[str], selected_checks, describe):
    """One materialization per selected asset (in a backfill run: the last day's figures), with
    its check results; check results of assets not selected (a commit-only run) on their own."""
    by_asset: dict[dg.AssetKey, list[dg.AssetCheckResult]] = {}
    for c in outcome.checks:
        if dg.AssetCheckKey(c.asset_key, c.check_name) in selected_checks:
            by_asset.setdefault(c.asset_key, []).append(c)
    for r in wanted:
        key = resource_asset_key(r)
        if r in outcome.entries:
            yield dg.MaterializeResult(asset_key=key, metadata=_resource_metadata(outcome, r, describe),
                                       check_results=by_asset.pop(key, []))
    if outcome.manifest is not None and not any(not c.passed for c in outcome.checks if c.asset_key != MANIFEST_KEY):
        yield dg.MaterializeResult(asset_key=MANIFEST_KEY, metadata=_manifest_metadata(outcome, describe),
                                   check_results=by_asset.pop(MANIFEST_KEY, []))
    for results in by_asset.values():
        yield from results
