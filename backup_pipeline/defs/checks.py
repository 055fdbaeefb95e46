"""Asset checks on each day's backup file, blocking: a backup whose file fails them is never
committed (the manifest asset downstream does not run). The rules are the engine's record
checks (engine/checks.py), the same `verify` runs; the counts come from DuckDB querying the
file in place, or from reading it in Python where DuckDB cannot (encrypted, brotli)."""


import hashlib
from datetime import date

import dagster as dg

from ..engine.checks import CHECKS, RecordScan, record_checks, scan_records
from ..engine.staged import StagedBackup
from ..query.duckdb_views import connect, file_url
from ..repository.files import read_records
from ..repository.manifest import ParquetMirror, ResourceEntry
from .assets import daily, resource_asset_key
from .resources import BackupRepository, S3dbSource


def duckdb_can_read(repo, entry: ResourceEntry) -> bool:
    return not repo.encryption.enabled and entry.data.compression != "brotli"


def _scan_duckdb(repo, backup_id: str, entry: ResourceEntry) -> RecordScan:
    con = connect(repo)
    try:
        row = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE id IS NULL), count(id) - count(DISTINCT id),
                      count(*) FILTER (WHERE _deleted)
               FROM read_json(?, format='newline_delimited', compression='auto_detect',
                              columns={'id': 'VARCHAR', '_deleted': 'BOOLEAN'})""",
            [file_url(repo, backup_id, entry.data.file)],
        ).fetchall()[0]
    finally:
        con.close()
    return RecordScan(lines=row[0], null_ids=row[1], duplicate_ids=row[2], tombstones=row[3])


def _scan(repo, backup_id: str, entry: ResourceEntry) -> RecordScan:
    if duckdb_can_read(repo, entry):
        return _scan_duckdb(repo, backup_id, entry)
    return scan_records(read_records(repo, backup_id, entry.data.file, entry.data.compression))


def _parquet_rows(repo, backup_id: str, mirror: ParquetMirror) -> int:
    con = connect(repo)
    try:
        return con.execute("SELECT count(*) FROM read_parquet(?)", [file_url(repo, backup_id, mirror.file)]).fetchall()[0][0]
    finally:
        con.close()


def _sha256(repo, backup_id: str, name: str) -> str:
    h = hashlib.sha256()
    with repo.open_file(backup_id, name) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def build_resource_checks(resource: str) -> dg.AssetChecksDefinition:
    key = resource_asset_key(resource)
    specs = [dg.AssetCheckSpec(name, asset=key, blocking=True, description=desc, partitions_def=daily)
             for name, desc in CHECKS.items()]

    @dg.multi_asset_check(specs=specs, name=f"check_{resource}_backup_file", can_subset=True)
    def _checks(context: dg.AssetCheckExecutionContext, s3db: S3dbSource, backup_repo: BackupRepository):
        repo = backup_repo.open()
        staged = StagedBackup.existing_for_day(s3db.open(), repo, date.fromisoformat(context.partition_key))
        entry = staged.stage_info(resource) if staged else None
        if entry is None:
            for name in CHECKS:
                yield dg.AssetCheckResult(check_name=name, asset_key=key, passed=False,
                                          metadata={"reason": f"{resource} has not been backed up for {context.partition_key}"})
            return
        bid = staged.backup_id
        where = repo.describe(bid, entry.data.file)
        common = {"file": dg.MetadataValue.path(where), "backup_id": bid,
                  "engine": "duckdb" if duckdb_can_read(repo, entry) else "python"}
        try:
            scan = _scan(repo, bid, entry)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read fails the checks, saying why
            context.log.error(f"{where}: cannot be read: {exc}")
            scan = RecordScan(lines=-1, null_ids=-1, duplicate_ids=-1, tombstones=-1)
            common["error"] = str(exc)[:500]
        for outcome in record_checks(where, entry, scan):
            yield dg.AssetCheckResult(check_name=outcome.name, asset_key=key, passed=outcome.passed,
                                      description=outcome.detail, metadata={**common, **outcome.values})
        digest = _sha256(repo, bid, entry.data.file)
        yield dg.AssetCheckResult(check_name="sha256_matches_manifest", asset_key=key, passed=digest == entry.data.sha256,
                                  metadata={**common, "sha256": digest, "recorded": entry.data.sha256})
        mirror = entry.parquet
        expected_lines = entry.records + entry.tombstones
        if mirror:
            try:
                mirror_digest = _sha256(repo, bid, mirror.file)
                rows = _parquet_rows(repo, bid, mirror) if not repo.encryption.enabled else mirror.rows
            except Exception as exc:  # noqa: BLE001
                mirror_digest, rows = f"unreadable: {exc}"[:200], -1
            yield dg.AssetCheckResult(
                check_name="parquet_mirror_matches", asset_key=key,
                passed=mirror_digest == mirror.sha256 and rows == mirror.rows == expected_lines,
                metadata={**common, "parquet_rows": rows, "recorded_rows": mirror.rows, "sha256": mirror_digest})
        else:
            yield dg.AssetCheckResult(check_name="parquet_mirror_matches", asset_key=key, passed=True,
                                      metadata={**common, "parquet": "not written (BackupRepository.parquet is off)"})

    return _checks
