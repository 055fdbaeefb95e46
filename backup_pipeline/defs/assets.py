"""One partitioned asset per s3db.js resource, and the manifest asset that commits the day's backup."""



import os
import time
from datetime import date
from typing import Optional

import dagster as dg

from ..engine.backup import BackupRequest
from ..engine.staged import StagedBackup, TypePolicy
from ..repository.manifest import MANIFEST as MANIFEST_NAME
from ..store.retry import retry_count
from .resources import BackupRepository, S3dbSource

GROUP = "s3db_backup"
START_DATE = os.environ.get("BACKUP_PIPELINE_START_DATE", "2026-11-01")
daily = dg.DailyPartitionsDefinition(start_date=START_DATE)
MANIFEST_KEY = dg.AssetKey(["s3db", "backup_manifest"])


def resource_asset_key(resource: str) -> dg.AssetKey:
    return dg.AssetKey(["s3db", resource])


class BackupRunConfig(dg.Config):
    type: Optional[str] = None  # "full" | "incremental": overrides the weekday policy for this run


def staged_backup(context, s3db: S3dbSource, backup_repo: BackupRepository, type_override: str | None):
    day = date.fromisoformat(context.partition_key)
    forced = type_override or context.run.tags.get("backup_pipeline/type")
    source = s3db.settings()
    source.check()
    request = BackupRequest(compression=backup_repo.compression, passphrase=source.resolved_passphrase(),
                            decrypt_secrets=source.decrypt_secrets, workers=backup_repo.workers,
                            parquet=backup_repo.parquet, skip_corrupt=backup_repo.skip_corrupt,
                            verify=backup_repo.verify)
    settings = backup_repo.settings()
    return StagedBackup.for_day(source.open(), settings.open(), day,
                                TypePolicy(full_weekday=backup_repo.full_weekday, force=forced), request, settings.lock)


def build_resource_asset(resource: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=resource_asset_key(resource),
        group_name=GROUP,
        partitions_def=daily,
        kinds={"s3", "json"},
        description=f"Backup of the s3db.js resource `{resource}` for the day: RESOURCE.jsonl.gz (decoded records "
                    "plus the raw objects) and its key index, in that day's backup folder.",
    )
    def _asset(context: dg.AssetExecutionContext, config: BackupRunConfig, s3db: S3dbSource,
               backup_repo: BackupRepository) -> dg.MaterializeResult:
        staged = staged_backup(context, s3db, backup_repo, config.type)
        t0, retries_before = time.perf_counter(), retry_count()
        context.log.info(f"backing up {resource} into {staged.backup_id} ({staged.plan.type}, parent "
                         f"{staged.plan.parent})")
        result = staged.stage_resource(resource)
        seconds = time.perf_counter() - t0
        return dg.MaterializeResult(metadata={
            "backup_id": staged.backup_id,
            "type": staged.plan.type,
            "parent": staged.plan.parent or "",
            "records": dg.MetadataValue.int(result.records),
            "tombstones": dg.MetadataValue.int(result.tombstones),
            "unchanged": dg.MetadataValue.int(result.unchanged),
            "bytes": dg.MetadataValue.int(result.data.bytes),
            "sha256": result.data.sha256,
            "file": dg.MetadataValue.path(staged.repo.describe(staged.backup_id, result.data.file)),
            "parquet_rows": dg.MetadataValue.int(result.parquet.rows if result.parquet else -1),
            "records_per_second": dg.MetadataValue.float(round(result.fetched / seconds, 1) if seconds else 0.0),
            "duration_s": dg.MetadataValue.float(round(seconds, 3)),
            "retries": dg.MetadataValue.int(retry_count() - retries_before),
        })

    return _asset


def build_manifest_asset(resources: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        key=MANIFEST_KEY,
        group_name=GROUP,
        partitions_def=daily,
        deps=[resource_asset_key(r) for r in resources],
        kinds={"s3"},
        description="Commits the day's backup: verifies every file, then writes the manifest (s3db.json) last. "
                    "A backup without it is never listed as complete nor restored.",
    )
    def backup_manifest(context: dg.AssetExecutionContext, s3db: S3dbSource,
                        backup_repo: BackupRepository) -> dg.MaterializeResult:
        staged = staged_backup(context, s3db, backup_repo, None)
        manifest = staged.committed() or staged.commit()
        totals = manifest.totals
        return dg.MaterializeResult(metadata={
            "backup_id": manifest.id,
            "type": manifest.type,
            "parent": manifest.parent or "",
            "resources": dg.MetadataValue.int(len(manifest.resources)),
            "records": dg.MetadataValue.int(totals.records),
            "tombstones": dg.MetadataValue.int(totals.tombstones),
            "bytes": dg.MetadataValue.int(totals.bytes),
            "verified": manifest.verified,
            "manifest": dg.MetadataValue.path(staged.repo.describe(manifest.id, MANIFEST_NAME)),
        })

    return backup_manifest
