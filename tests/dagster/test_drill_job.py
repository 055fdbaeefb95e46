"""The weekly restore drill in Dagster (issue 15 item 1), run for real on an ephemeral instance: its
result is the `restore_drill` check on the manifest asset, with history, red when a record differs."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg

from backup_pipeline.definitions import build_definitions
from backup_pipeline.defs.assets import MANIFEST_KEY
from backup_pipeline.defs.checks import DRILL_CHECK
from backup_pipeline.repository import FilesystemRepository
from s3db_fixtures import copy_fs_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from helpers import tamper_first_line  # noqa: E402

DAY = "2026-11-22"
CHECK_KEY = dg.AssetCheckKey(MANIFEST_KEY, DRILL_CHECK)


def _drill_checks(result) -> list:
    return [e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == DRILL_CHECK]


def test_the_drill_job_checks_the_manifest_asset_and_fails_red_on_a_difference(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    defs = build_definitions(source=f"file://{src}", repos=[str(tmp_path / "repo")])
    assert defs.resolve_schedule_def("restore_drill_weekly").default_status == dg.DefaultScheduleStatus.STOPPED
    instance = dg.DagsterInstance.ephemeral()
    backup = defs.resolve_job_def("s3db_backup_job").execute_in_process(partition_key=DAY, instance=instance)
    assert backup.success and not _drill_checks(backup)  # the drill is not part of the nightly step
    bid = next(e.step_materialization_data.materialization.metadata["backup_id"].value
               for e in backup.get_asset_materialization_events() if e.asset_key == MANIFEST_KEY)

    good = defs.resolve_job_def("drill_job").execute_in_process(instance=instance)
    [check] = _drill_checks(good)
    assert good.success and check.passed and check.asset_key == MANIFEST_KEY
    assert check.metadata["backup_id"].value == bid and check.metadata["differences"].value == 0
    records = FilesystemRepository(tmp_path / "repo").read_manifest(bid).totals.records
    assert check.metadata["records_compared"].value == records  # every record of the backup

    record_id = tamper_first_line(tmp_path / "repo", bid, "users", lambda line: line.update(name="Mallory"))
    bad = defs.resolve_job_def("drill_job").execute_in_process(instance=instance, raise_on_error=False)
    [check] = _drill_checks(bad)
    assert not check.passed and f"users {record_id}: field 'name'" in check.description
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK_KEY, limit=10)
    assert [h.status.value for h in history] == ["FAILED", "SUCCEEDED"]  # newest first: red on the asset


def test_materializing_everything_backs_up_without_drilling(tmp_path):
    """"Materialize all" (the UI, `dagster asset materialize --select '*'`) runs every check of the
    assets it materializes: the drill says it runs in drill_job and is not evaluated there."""
    src = copy_fs_db(tmp_path / "src")
    defs = build_definitions(source=f"file://{src}", repos=[str(tmp_path / "repo")])
    every = dg.AssetSelection.all()
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("everything", selection=every)]))
    result = job.resolve_job_def("everything").execute_in_process(partition_key=DAY,
                                                                  instance=dg.DagsterInstance.ephemeral())
    assert result.success and not _drill_checks(result)
    assert "restore_drill" in {e.step_key for e in result.all_events}  # its step ran, and drilled nothing
