"""The Dagster front end, materialized for real on an ephemeral instance."""

from __future__ import annotations

import gzip
import warnings

import dagster as dg
import orjson
import pytest

from backup_pipeline.definitions import build_definitions
from backup_pipeline.defs.assets import MANIFEST_KEY
from backup_pipeline.repository import FilesystemRepository
from s3db_fixtures import copy_fs_db, expected_records, load_dump_into_bucket

warnings.filterwarnings("ignore", category=dg.PreviewWarning) if hasattr(dg, "PreviewWarning") else None
DAY = "2026-11-22"  # a Sunday: the policy makes it full
NEXT = "2026-11-23"


@pytest.fixture
def fs_defs(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    return build_definitions(source=f"file://{src}", repos=[str(tmp_path / "repo")]), tmp_path


def _run_day(defs, day, instance, **kw):
    job = defs.get_job_def("s3db_backup_job")
    return job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False, **kw)


def _materializations(result):
    return {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()} if hasattr(result, "get_asset_materialization_events") \
        else {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
              for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}


def test_daily_partition_backs_up_every_resource_and_commits(fs_defs):
    defs, tmp = fs_defs
    instance = dg.DagsterInstance.ephemeral()
    result = _run_day(defs, DAY, instance)
    assert result.success
    mats = _materializations(result)
    expected = expected_records("fs")
    assert set(mats) == set(expected) | {"backup_manifest"}
    users = mats["users"]
    assert users["records"].value == 4 and users["type"].value == "full" and users["tombstones"].value == 0
    assert len(users["sha256"].value) == 64 and users["bytes"].value > 0 and "duration_s" in users
    assert users["dagster/row_count"].value == 4 and "parquet_rows" not in users  # no mirror, no sentinel
    columns = [c.name for c in users["dagster/column_schema"].schema.columns]
    assert columns[0] == "id" and "name" in columns
    manifest_md = mats["backup_manifest"]
    bid = manifest_md["backup_id"].value
    assert manifest_md["records"].value == 27 and manifest_md["verified"].value is True
    repo = FilesystemRepository(tmp / "repo")
    manifest = repo.read_manifest(bid)
    assert manifest["partition"] == DAY and manifest["type"] == "full"
    assert gzip.open(tmp / "repo" / bid / "users.jsonl.gz").read().count(b"\n") == 4
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    # one per resource, every rule in it (no Parquet rule without mirrors), and backup_verifies
    assert len(checks) == len(expected) + 1 and all(c.passed for c in checks)
    assert [c.check_name for c in checks if c.asset_key == MANIFEST_KEY] == ["backup_verifies"]
    users_check = [c for c in checks if c.asset_key.path[-1] == "users"][0]
    assert users_check.check_name == "backup_file_valid"
    rules = {k: v.value for k, v in users_check.metadata.items() if k.startswith("rule/")}
    assert rules == {"rule/line_count_matches_manifest": "passed", "rule/ids_unique_and_not_null": "passed",
                     "rule/tombstones_only_in_incrementals": "passed", "rule/sha256_matches_manifest": "passed"}
    assert users_check.metadata["lines"].value == 4 and users_check.metadata["engine"].value == "duckdb"
    # the next day is an incremental on top of it
    result2 = _run_day(defs, NEXT, instance)
    assert result2.success
    m2 = _materializations(result2)["backup_manifest"]
    assert m2["type"].value == "incremental" and m2["parent"].value == bid


def test_a_failing_check_blocks_the_manifest(fs_defs):
    defs, tmp = fs_defs
    instance = dg.DagsterInstance.ephemeral()
    job = defs.get_job_def("s3db_backup_job")
    resource_keys = [k for k in defs.resolve_all_asset_keys() if k != MANIFEST_KEY]
    first = job.execute_in_process(partition_key=DAY, instance=instance, asset_selection=resource_keys,
                                   raise_on_error=False)
    assert first.success
    bid = next(iter(_materializations(first).values()))["backup_id"].value
    data = tmp / "repo" / bid / "users.jsonl.gz"
    data.write_bytes(data.read_bytes()[:-30])  # damaged after it was written
    # a later run: the checks of the (already materialized) resource assets, then the manifest
    commit_job = dg.define_asset_job("checks_then_commit", selection=dg.AssetSelection.assets(MANIFEST_KEY)
                                     | dg.AssetSelection.checks_for_assets(*resource_keys))
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[commit_job]))
    second = merged.get_job_def("checks_then_commit").execute_in_process(
        partition_key=DAY, instance=instance, raise_on_error=False)
    assert not {"users", "articles"} & set(_materializations(second))  # the resource assets did not re-run
    failed = [e.event_specific_data for e in second.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed]
    assert failed, "the damaged file must fail its checks"
    # the one check names the rule that failed, and says what it found
    assert failed[0].metadata["rule/sha256_matches_manifest"].value == "FAILED"
    assert "sha256_matches_manifest" in failed[0].description and "users.jsonl.gz" in failed[0].description
    assert "backup_manifest" not in _materializations(second)
    assert FilesystemRepository(tmp / "repo").read_manifest(bid) is None


def test_sensor_requests_one_retention_run_per_new_manifest(fs_defs):
    defs, tmp = fs_defs
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.get_sensor_def("retention_after_backup")
    assert _run_day(defs, DAY, instance).success
    ctx = dg.build_sensor_context(instance=instance, definitions=defs)
    first = list(sensor(ctx)) if False else sensor.evaluate_tick(ctx)
    assert len(first.run_requests) == 1
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
    assert len(again.run_requests) == 0
    assert _run_day(defs, NEXT, instance).success
    third = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
    assert len(third.run_requests) == 1 and third.run_requests[0].run_key != first.run_requests[0].run_key


def test_retention_job_reports_every_backup_with_reasons(fs_defs):
    defs, tmp = fs_defs
    instance = dg.DagsterInstance.ephemeral()
    assert _run_day(defs, DAY, instance).success
    result = defs.get_job_def("retention_job").execute_in_process(instance=instance)
    assert result.success
    md = result.get_step_success_events()[0].event_specific_data  # noqa: F841 (exists)
    out = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"][0].event_specific_data.metadata
    assert out["dry_run"].value is True and out["kept"].value == 1 and "newest" in out["decisions"].value


def test_restore_job_restores_what_s3db_reads_back(fs_defs):
    from oracle import read_back

    defs, tmp = fs_defs
    instance = dg.DagsterInstance.ephemeral()
    run = _run_day(defs, DAY, instance)
    bid = _materializations(run)["backup_manifest"]["backup_id"].value
    target = tmp / "restored"
    result = defs.get_job_def("restore_job").execute_in_process(instance=instance, run_config={
        "ops": {"restore_backup": {"config": {"backup_id": bid, "target": f"file://{target}"}}}})
    assert result.success
    out = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"][0].event_specific_data.metadata
    assert out["written"].value == 27
    records, _partitions = read_back(f"file://{target}", tmp / "readback")
    strip = lambda recs: [{k: v for k, v in r.items() if k != "_lastModified"} for r in recs]  # noqa: E731
    assert {n: strip(v) for n, v in records.items()} == {n: strip(v) for n, v in expected_records("fs").items()}


def test_definitions_load_and_discover_resources(fs_defs):
    defs, _ = fs_defs
    dg.Definitions.validate_loadable(defs)
    keys = {k.path[-1] for k in defs.resolve_all_asset_keys()}
    assert keys == set(expected_records("fs")) | {"backup_manifest"}


def test_s3_source_and_repository(moto_server, bucket_name, tmp_path, monkeypatch):
    client = moto_server.boto_client()
    load_dump_into_bucket(client, bucket_name)
    client.create_bucket(Bucket=bucket_name + "-bk")
    monkeypatch.setenv("S3DB_SOURCE", moto_server.connection_string(bucket_name))  # credentials: an EnvVar
    defs = build_definitions(repos=[f"s3://{bucket_name}-bk/daily"],
                             endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
                             secret_access_key=moto_server.secret_key, parquet=True)
    result = _run_day(defs, DAY, dg.DagsterInstance.ephemeral())
    assert result.success
    mats = _materializations(result)
    assert mats["backup_manifest"]["records"].value == 27
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(c.passed for c in checks)
    users = [c for c in checks if c.asset_key.path[-1] == "users"][0]
    assert users.metadata["rule/parquet_mirror_matches"].value == "passed"
    assert users.metadata["parquet_rows"].value == 4  # read by DuckDB from the S3 repository
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket_name + "-bk")["Contents"]]
    assert any(k.endswith("/s3db.json") for k in keys)
