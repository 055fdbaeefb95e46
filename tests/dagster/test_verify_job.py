"""The daily verification within a time budget in Dagster (issue 15 item 2), run for real on an
ephemeral instance: its result is the `backups_verified` check on the manifest asset, with
history, red when a backup fails; each run takes up where the last one stopped."""

from __future__ import annotations

import hashlib

import dagster as dg

from backup_pipeline.definitions import build_definitions
from backup_pipeline.defs.assets import MANIFEST_KEY
from backup_pipeline.defs.checks import VERIFY_CHECK
from backup_pipeline.repository import FilesystemRepository
from s3db_fixtures import copy_fs_db

CHECK_KEY = dg.AssetCheckKey(MANIFEST_KEY, VERIFY_CHECK)


def _verify_checks(result) -> list:
    return [e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == VERIFY_CHECK]


def _verify_check(result):
    [check] = _verify_checks(result)
    return check


def _meta(check) -> dict:
    return {k: check.metadata[k].value for k in ("verified", "failed", "left")}


def test_the_verify_job_checks_the_manifest_asset_resumes_and_fails_red(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    defs = build_definitions(source=f"file://{src}", repos=[str(repo)])
    assert defs.resolve_schedule_def("backups_verified_daily").default_status == dg.DefaultScheduleStatus.STOPPED
    instance = dg.DagsterInstance.ephemeral()
    for day in ("2026-11-22", "2026-11-23"):  # a full, then an incremental
        backup = defs.resolve_job_def("s3db_backup_job").execute_in_process(partition_key=day, instance=instance)
        assert backup.success
        assert not _verify_checks(backup)  # not part of the nightly step
    full, inc = FilesystemRepository(repo).backup_ids()
    manifests = {b: hashlib.sha256((repo / b / "s3db.json").read_bytes()).hexdigest() for b in (full, inc)}
    job = defs.resolve_job_def("verify_job")
    one = {"ops": {"backups_verified": {"config": {"budget_seconds": 0}}}}

    first = _verify_check(job.execute_in_process(instance=instance, run_config=one))
    assert first.passed and first.asset_key == MANIFEST_KEY
    assert _meta(first) == {"verified": 1, "failed": 0, "left": 1} and full in first.metadata["backups"].value
    second = _verify_check(job.execute_in_process(instance=instance, run_config=one))  # the rest
    assert _meta(second) == {"verified": 1, "failed": 0, "left": 1} and inc in second.metadata["backups"].value
    assert second.metadata["bytes"].value > 0

    data = repo / full / "users.jsonl.gz"
    body = bytearray(data.read_bytes())
    body[-5] ^= 0xFF
    data.write_bytes(bytes(body))
    bad = _verify_check(job.execute_in_process(instance=instance))  # default budget: an hour, both fit
    assert not bad.passed and _meta(bad) == {"verified": 1, "failed": 1, "left": 0}
    assert f"{full}: {data}" in bad.description
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK_KEY, limit=10)
    assert [h.status.value for h in history] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]  # newest first: red
    assert {b: hashlib.sha256((repo / b / "s3db.json").read_bytes()).hexdigest() for b in (full, inc)} == manifests


def test_materializing_everything_backs_up_without_verifying(tmp_path):
    """"Materialize all" runs every check of the assets it materializes: the budgeted verification
    says it runs in verify_job and verifies nothing there."""
    repo = tmp_path / "repo"
    defs = build_definitions(source=f"file://{copy_fs_db(tmp_path / 'src')}", repos=[str(repo)])
    everything = dg.define_asset_job("everything", selection=dg.AssetSelection.all())
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[everything]))
    result = merged.resolve_job_def("everything").execute_in_process(partition_key="2026-11-22",
                                                                     instance=dg.DagsterInstance.ephemeral())
    assert result.success and not _verify_checks(result)
    assert "backups_verified" in {e.step_key for e in result.all_events}  # its step ran, and verified nothing
    assert not (repo / "verifications").exists()
