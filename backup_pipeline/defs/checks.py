"""The asset checks of a day's backup, evaluated inside the backup step before it commits (so
a file that fails them is never committed), and again on a re-run of a committed partition.

Per resource file, one check (`backup_file_valid`) holding every rule: the engine's record
checks (engine/checks.py, the same `verify` runs), with counts from DuckDB querying the file in
place, or from reading it in Python where DuckDB cannot (encrypted, brotli); its sha256; the
Parquet mirror's, only where the mirror is on. On the manifest: `backup_verifies`, the whole
backup and its chain as `backup-pipeline verify` checks it; `restore_drill`, evaluated by
the weekly drill job (jobs.py), not by the backup step; and `backups_verified`, evaluated by the
daily verify job: the least recently verified backups within a time budget (`verify --budget`).
"""


import hashlib

import dagster as dg

from ..engine.checks import CHECKS, CheckOutcome, RecordScan, record_checks, scan_records
from ..engine.drill import DrillReport
from ..engine.verification import BudgetReport
from ..engine.verify import committed_manifest, describe_files, resource_records, verify_backup
from ..errors import BackupPipelineError
from ..query.connection import connect, file_url
from ..repository.manifest import ParquetMirror, ResourceEntry

PARQUET_RULE = "parquet_mirror_matches"
RESOURCE_CHECK = "backup_file_valid"
MANIFEST_CHECK = "backup_verifies"
DRILL_CHECK = "restore_drill"
VERIFY_CHECK = "backups_verified"


def resource_rules(parquet: bool) -> dict[str, str]:
    """The rules a resource's file is checked by: the mirror's only when mirrors are written."""
    return {name: desc for name, desc in CHECKS.items() if parquet or name != PARQUET_RULE}


def resource_check_names(parquet: bool) -> dict[str, str]:
    """The checks each resource asset has. One check holding every rule (each rule's outcome in
    its metadata): a check costs two events in Dagster's event log, and a partition of ten
    resources with one check per rule spent most of its time writing them (issue 16)."""
    rules = resource_rules(parquet)
    return {RESOURCE_CHECK: "the day's file of this resource passes every rule: "
                            + "; ".join(f"{name} ({desc})" for name, desc in rules.items())}


# Not partitioned (Dagster's partitioned checks are a preview that warns on every load): each
# evaluation belongs to the materialization of the day it ran for, whose backup id it names.
def check_specs(asset_key: dg.AssetKey, parquet: bool) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=desc)
            for name, desc in resource_check_names(parquet).items()]


def manifest_check_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(MANIFEST_CHECK, asset=asset_key, blocking=True,
                             description="every file of the backup and of its chain has its recorded sha256, size "
                                         "and lines, the chain is complete, and the record checks pass")


def duckdb_can_read(repo, entry: ResourceEntry) -> bool:
    return not repo.encryption.enabled and all(f.compression != "brotli" for f in entry.data_files())


def _scan_duckdb(repo, backup_id: str, entry: ResourceEntry) -> RecordScan:
    con = connect(repo)
    try:
        row = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE id IS NULL), count(id) - count(DISTINCT id),
                      count(*) FILTER (WHERE _deleted)
               FROM read_json(?, format='newline_delimited', compression='auto_detect',
                              columns={'id': 'VARCHAR', '_deleted': 'BOOLEAN'})""",
            [[file_url(repo, backup_id, f.file) for f in entry.data_files()]],  # a sharded resource: every part
        ).fetchall()[0]
    finally:
        con.close()
    return RecordScan(lines=row[0], null_ids=row[1], duplicate_ids=row[2], tombstones=row[3])


def _scan(repo, backup_id: str, entry: ResourceEntry) -> RecordScan:
    if duckdb_can_read(repo, entry):
        return _scan_duckdb(repo, backup_id, entry)
    return scan_records(resource_records(repo, backup_id, entry))


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


def _parquet_outcome(repo, backup_id: str, resource: str, entry: ResourceEntry) -> CheckOutcome:
    mirror = entry.parquet
    if mirror is None:
        return CheckOutcome(PARQUET_RULE, False, f"{resource}: no Parquet mirror was written, though "
                                                 "BackupRepository.parquet is on")
    try:
        mirror_digest = _sha256(repo, backup_id, mirror.file)
        rows = _parquet_rows(repo, backup_id, mirror) if not repo.encryption.enabled else mirror.rows
    except Exception as exc:  # noqa: BLE001 - an unreadable mirror fails the rule, saying why
        mirror_digest, rows = f"unreadable: {exc}"[:200], None
    expected = entry.records + entry.tombstones
    passed = mirror_digest == mirror.sha256 and rows == mirror.rows == expected
    return CheckOutcome(PARQUET_RULE, passed, f"{repo.describe(backup_id, mirror.file)}: {rows} rows (recorded "
                                              f"{mirror.rows}, lines {expected}), sha256 {mirror_digest}",
                        {"parquet_rows": rows, "recorded_parquet_rows": mirror.rows})


def resource_checks(repo, backup_id: str, resource: str, entry: ResourceEntry, asset_key: dg.AssetKey,
                    parquet: bool, log) -> list[dg.AssetCheckResult]:
    """`backup_file_valid` of one resource's file in one backup: every rule's outcome in the
    metadata (`rule/NAME`), the failed rules' findings in the description."""
    where = describe_files(repo, backup_id, entry)
    metadata = {"file": dg.MetadataValue.path(where), "backup_id": backup_id,
                "engine": "duckdb" if duckdb_can_read(repo, entry) else "python"}
    try:
        scan = _scan(repo, backup_id, entry)
    except Exception as exc:  # noqa: BLE001 - a file that cannot be read fails the checks, saying why
        log.error(f"{where}: cannot be read: {exc}")
        scan = RecordScan(lines=-1, null_ids=-1, duplicate_ids=-1, tombstones=-1)
        metadata["error"] = str(exc)[:500]
    outcomes = record_checks(where, entry, scan)
    for f in entry.data_files():  # one outcome: the first file that differs, else the (last) file's
        digest = _sha256(repo, backup_id, f.file)
        sha_outcome = CheckOutcome("sha256_matches_manifest", digest == f.sha256,
                                   f"{repo.describe(backup_id, f.file)}: sha256 {digest}, the manifest records "
                                   f"{f.sha256}", {"sha256": digest, "recorded_sha256": f.sha256})
        if not sha_outcome.passed:
            break
    outcomes.append(sha_outcome)
    if parquet:
        outcomes.append(_parquet_outcome(repo, backup_id, resource, entry))
    failed = [o for o in outcomes if not o.passed]
    for o in outcomes:
        metadata[f"rule/{o.name}"] = "passed" if o.passed else "FAILED"
        metadata.update(o.values)
    description = ("; ".join(f"{o.name}: {o.detail}" for o in failed) if failed
                   else f"{len(outcomes)} rules passed: " + ", ".join(o.name for o in outcomes))
    return [dg.AssetCheckResult(check_name=RESOURCE_CHECK, asset_key=asset_key, passed=not failed,
                                description=description[:2000], metadata=metadata)]


def manifest_check(repo, manifest, asset_key: dg.AssetKey, verified_now: bool = False) -> dg.AssetCheckResult:
    """`backup_verifies`. Right after a commit that verified every file (and whose record checks
    ran in the same step) only the chain is read again; otherwise the whole backup is verified."""
    try:
        if verified_now and manifest.verified:
            chain = [committed_manifest(repo, bid).id for bid in manifest.chain]
            files, size, how = len(list(manifest.files())), sum(e.bytes for _r, e in manifest.files()), "at commit"
        else:
            report = verify_backup(repo, manifest.id)
            chain, files, size, how = report.chain, report.files, report.bytes, "read again"
    except BackupPipelineError as exc:
        return dg.AssetCheckResult(check_name=MANIFEST_CHECK, asset_key=asset_key, passed=False,
                                   description=str(exc)[:2000], metadata={"backup_id": manifest.id})
    return dg.AssetCheckResult(check_name=MANIFEST_CHECK, asset_key=asset_key, passed=True, metadata={
        "backup_id": manifest.id, "chain": " -> ".join(chain), "files_verified": how,
        "files": dg.MetadataValue.int(files), "bytes": dg.MetadataValue.int(size)})


def drill_check_result(report: DrillReport | None, error: str | None, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """`restore_drill`: passed when every record read back from the scratch restore equals the
    backup; a drill that differs, or that could not restore, fails, saying why."""
    metadata = {}
    if report is not None:
        rows = [f"| {n} | {r.records:,} | {r.differences:,} | {r.seconds:.1f} | {r.records_per_second:,.0f} |"
                for n, r in report.resources.items()]
        metadata = {
            "backup_id": report.backup_id, "chain": " -> ".join(report.chain),
            "records_compared": dg.MetadataValue.int(report.records),
            "differences": dg.MetadataValue.int(report.differences),
            "restore_seconds": dg.MetadataValue.float(round(report.restore_seconds, 3)),
            "per_resource": dg.MetadataValue.md("| resource | records | differences | seconds | records/s |\n"
                                                "|---|---|---|---|---|\n" + "\n".join(rows)),
        }
    return dg.AssetCheckResult(check_name=DRILL_CHECK, asset_key=asset_key, passed=error is None,
                               description=(error or "")[:2000] or None, metadata=metadata)


def verify_check_result(report: BudgetReport, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """`backups_verified`: passed when no backup verified in this run failed; the failures named."""
    rows = [f"| {r.backup_id} | {r.outcome} | {r.bytes or 0:,} | {r.seconds:.1f} | {(r.error or '')[:200]} |"
            for r in report.results]
    failed = "; ".join(f"{r.backup_id}: {r.error}" for r in report.failed)
    return dg.AssetCheckResult(check_name=VERIFY_CHECK, asset_key=asset_key, passed=not report.failed,
                               description=failed[:2000] or None, metadata={
        "verified": dg.MetadataValue.int(len(report.verified)), "failed": dg.MetadataValue.int(len(report.failed)),
        "left": dg.MetadataValue.int(len(report.left)), "bytes": dg.MetadataValue.int(report.bytes),
        "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "budget_seconds": dg.MetadataValue.float(report.budget_seconds),
        "backups": dg.MetadataValue.md("| backup | outcome | bytes | seconds | error |\n|---|---|---|---|---|\n"
                                       + "\n".join(rows)),
    })
