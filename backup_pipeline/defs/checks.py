"""Asset checks that query each day's backup file itself with DuckDB. Blocking: a backup whose
file fails them is never committed (the manifest asset downstream does not run)."""


import hashlib
from datetime import date

import dagster as dg
import orjson

from .. import codecs
from ..analytics import connect, file_url
from ..engine.staged import StagedBackup
from ..repository.encrypted import is_encrypted, unseal
from .assets import daily, resource_asset_key
from .resources import BackupRepository, S3dbSource

CHECKS = {
    "line_count_matches_manifest": "lines in the file = records + tombstones recorded when it was written",
    "ids_unique_and_not_null": "every line has an id, and no id appears twice",
    "sha256_matches_manifest": "sha256 of the stored file = the one recorded when it was written",
    "tombstones_only_in_incrementals": "a full backup holds no tombstone lines",
    "parquet_mirror_matches": "the Parquet mirror (when written) has the recorded sha256 and one row per line",
}


def _scan_duckdb(repo, backup_id: str, entry: dict) -> dict:
    con = connect(repo)
    try:
        row = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE id IS NULL), count(*) - count(DISTINCT id),
                      count(*) FILTER (WHERE _deleted)
               FROM read_json(?, format='newline_delimited', compression='auto_detect',
                              columns={'id': 'VARCHAR', '_deleted': 'BOOLEAN'})""",
            [file_url(repo, backup_id, entry["file"])],
        ).fetchall()[0]
    finally:
        con.close()
    return dict(zip(("lines", "null_ids", "duplicate_ids", "tombstones"), row))


def _scan_python(repo, backup_id: str, entry: dict) -> dict:
    """For what DuckDB cannot open: client-side encrypted files and brotli."""
    lines = null_ids = tombstones = 0
    seen: set[str] = set()
    dups = 0
    with repo.open_file(backup_id, entry["file"]) as f:
        for line in codecs.iter_lines(unseal(repo, f, entry["file"]), entry["compression"]):
            rec = orjson.loads(line)
            lines += 1
            rid = rec.get("id")
            if rid is None:
                null_ids += 1
            elif rid in seen:
                dups += 1
            else:
                seen.add(rid)
            tombstones += bool(rec.get("_deleted"))
    return {"lines": lines, "null_ids": null_ids, "duplicate_ids": dups, "tombstones": tombstones}


def _parquet_rows(repo, backup_id: str, mirror: dict) -> int:
    con = connect(repo)
    try:
        return con.execute("SELECT count(*) FROM read_parquet(?)", [file_url(repo, backup_id, mirror["file"])]).fetchall()[0][0]
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
        use_python = is_encrypted(repo) or entry["compression"] == "brotli"
        where = repo.describe(bid, entry["file"])
        common = {"file": dg.MetadataValue.path(where), "backup_id": bid, "engine": "python" if use_python else "duckdb"}
        try:
            scan = (_scan_python if use_python else _scan_duckdb)(repo, bid, entry)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read fails the checks, saying why
            context.log.error(f"{where}: cannot be read: {exc}")
            scan = {"lines": -1, "null_ids": -1, "duplicate_ids": -1, "tombstones": -1}
            common["error"] = str(exc)[:500]
        expected_lines = entry["records"] + entry["tombstones"]
        yield dg.AssetCheckResult(check_name="line_count_matches_manifest", asset_key=key,
                                  passed=scan["lines"] == expected_lines == entry["lines"],
                                  metadata={**common, "lines": scan["lines"], "recorded": expected_lines})
        yield dg.AssetCheckResult(check_name="ids_unique_and_not_null", asset_key=key,
                                  passed=scan["null_ids"] == 0 and scan["duplicate_ids"] == 0,
                                  metadata={**common, "null_ids": scan["null_ids"], "duplicate_ids": scan["duplicate_ids"]})
        digest = _sha256(repo, bid, entry["file"])
        yield dg.AssetCheckResult(check_name="sha256_matches_manifest", asset_key=key, passed=digest == entry["sha256"],
                                  metadata={**common, "sha256": digest, "recorded": entry["sha256"]})
        mirror = entry.get("parquet")
        if mirror:
            try:
                mirror_digest = _sha256(repo, bid, mirror["file"])
                rows = _parquet_rows(repo, bid, mirror) if not is_encrypted(repo) else mirror["rows"]
            except Exception as exc:  # noqa: BLE001
                mirror_digest, rows = f"unreadable: {exc}"[:200], -1
            yield dg.AssetCheckResult(
                check_name="parquet_mirror_matches", asset_key=key,
                passed=mirror_digest == mirror["sha256"] and rows == mirror["rows"] == expected_lines,
                metadata={**common, "parquet_rows": rows, "recorded_rows": mirror["rows"], "sha256": mirror_digest})
        else:
            yield dg.AssetCheckResult(check_name="parquet_mirror_matches", asset_key=key, passed=True,
                                      metadata={**common, "parquet": "not written (BackupRepository.parquet is off)"})
        full = staged.plan["type"] == "full"
        yield dg.AssetCheckResult(check_name="tombstones_only_in_incrementals", asset_key=key,
                                  passed=scan["tombstones"] == 0 if full else scan["tombstones"] >= 0,
                                  metadata={**common, "tombstones": scan["tombstones"], "type": staged.plan["type"]})

    return _checks
