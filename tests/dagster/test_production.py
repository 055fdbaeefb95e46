"""Dagster in production (issue 16), materialized for real on an ephemeral instance: re-runs of
a committed partition, backfills that keep the chain, retention beside a staged backup of an old
partition, and a restore config that refuses what it does not know at launch."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from backup_pipeline.definitions import build_definitions
from backup_pipeline.defs.assets import MANIFEST_KEY
from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from helpers import snapshot  # noqa: E402

SUNDAY = "2026-11-22"


@pytest.fixture
def setup(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    defs = build_definitions(source=f"file://{src}", repos=[str(tmp_path / "repo")])
    return defs, src, FilesystemRepository(tmp_path / "repo"), tmp_path


def _materializations(result) -> dict:
    return {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


def _checks(result) -> list:
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def _job(defs):
    return defs.resolve_job_def("s3db_backup_job")


def test_a_committed_partition_materializes_again_as_a_no_op(setup):
    defs, _src, repo, _tmp = setup
    instance = dg.DagsterInstance.ephemeral()
    first = _job(defs).execute_in_process(partition_key=SUNDAY, instance=instance)
    bid = _materializations(first)["backup_manifest"]["backup_id"].value
    committed = repo.read_manifest(bid)
    again = _job(defs).execute_in_process(partition_key=SUNDAY, instance=instance, raise_on_error=False)
    assert again.success  # no ConflictError: the partition stays green
    mats = _materializations(again)
    assert mats["backup_manifest"]["backup_id"].value == bid and mats["backup_manifest"]["already_committed"].value
    assert mats["users"]["backup_id"].value == bid and mats["users"]["records"].value == 4
    assert _checks(again) and all(c.passed for c in _checks(again))  # its checks ran again
    assert repo.backup_ids() == [bid] and repo.read_manifest(bid).finished_at == committed.finished_at
    logs = [e.message for e in instance.all_logs(again.run_id) if e.message]
    assert any("already committed" in m for m in logs)


def test_an_uncommitted_partition_reruns_and_commits(setup):
    defs, _src, repo, _tmp = setup
    instance = dg.DagsterInstance.ephemeral()
    users = dg.AssetKey(["s3db", "users"])
    partial = _job(defs).execute_in_process(partition_key=SUNDAY, instance=instance, asset_selection=[users])
    bid = _materializations(partial)["users"]["backup_id"].value
    assert repo.read_manifest(bid) is None  # staged, not committed
    whole = _job(defs).execute_in_process(partition_key=SUNDAY, instance=instance)
    assert _materializations(whole)["backup_manifest"]["backup_id"].value == bid
    assert repo.read_manifest(bid).totals.records == 27


def test_a_three_day_backfill_keeps_the_chain(setup, tmp_path):
    """A backfill is one run over its days (BackfillPolicy.single_run, what the daemon launches for
    it), done oldest first: full -> incremental -> incremental, each parent committed first."""
    defs, src, repo, _tmp = setup
    assets = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition))
    assert assets.backfill_policy == dg.BackfillPolicy.single_run()
    days = [SUNDAY, "2026-11-23", "2026-11-24"]
    result = _job(defs).execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags={
        "dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]})
    assert result.success
    manifests = sorted((repo.read_manifest(b) for b in repo.backup_ids()), key=lambda m: m.started_at)
    assert [(m.partition, m.type) for m in manifests] == [(days[0], "full"), (days[1], "incremental"),
                                                          (days[2], "incremental")]
    assert manifests[1].parent == manifests[0].id and manifests[2].parent == manifests[1].id
    from backup_pipeline import Backups

    target = open_store(f"file://{tmp_path / 'restored'}", create=True)
    Backups(None, str(tmp_path / "repo")).restore(manifests[-1].id, target)
    assert snapshot(target) == snapshot(open_store(f"file://{src}"))


def test_retention_beside_a_staged_old_partition_leaves_it_and_it_commits(setup):
    """The old failure: an unfinished backup's age was read from its id (the partition's date),
    so retention removed a backfill of a week-old day while it was being written."""
    defs, _src, repo, _tmp = setup
    instance = dg.DagsterInstance.ephemeral()
    today = date.today()
    recent = today - timedelta(days=1)
    old = today - timedelta(days=10)
    assert _job(defs).execute_in_process(partition_key=recent.isoformat(), instance=instance).success
    resource_keys = [k for k in _job(defs).asset_layer.executable_asset_keys if k != MANIFEST_KEY]
    staged = _job(defs).execute_in_process(partition_key=old.isoformat(), instance=instance,
                                           asset_selection=resource_keys)
    old_id = _materializations(staged)["users"]["backup_id"].value
    retention = defs.resolve_job_def("retention_job").execute_in_process(instance=instance, run_config={
        "ops": {"apply_retention": {"config": {"dry_run": False}}}})
    assert retention.success and old_id in repo.backup_ids()  # kept: written seconds ago
    commit = _job(defs).execute_in_process(partition_key=old.isoformat(), instance=instance,
                                           asset_selection=[MANIFEST_KEY])
    assert commit.success and repo.read_manifest(old_id) is not None


def test_restore_mode_is_refused_at_launch(setup):
    defs, _src, _repo, tmp = setup
    with pytest.raises(dg.DagsterInvalidConfigError, match="bogus"):
        defs.resolve_job_def("restore_job").execute_in_process(run_config={"ops": {"restore_backup": {"config": {
            "backup_id": "full-2026-11-22T000000Z-abcd", "target": f"file://{tmp / 'x'}", "mode": "bogus"}}}})


def test_the_restore_launchpad_asks_for_restore_settings_only(setup):
    """What the launchpad asks of a restore: the op's settings, all of them restore settings;
    the repository and every other resource come configured (nothing of theirs is required)."""
    from backup_pipeline.defs.jobs import RestoreConfig

    defs = setup[0]
    fields = defs.resolve_job_def("restore_job").run_config_schema.config_type.fields
    required = [name for name, f in fields.items() if f.is_required]
    assert required == []  # a restore of `latest` into a target needs nothing else than its op config
    for name, f in fields["resources"].config_type.fields.items():
        assert not f.is_required, name
    op = fields["ops"].config_type.fields["restore_backup"].config_type.fields["config"].config_type.fields
    assert set(op) == set(RestoreConfig.model_fields)
    backup_only = {"compression", "full_weekday", "parquet", "workers", "skip_corrupt", "type"}
    assert not backup_only & set(op)


CANARY = "CANARY-s3cr3t-4242"


def test_a_source_secret_never_reaches_run_storage(moto_server, bucket_name, tmp_path, monkeypatch):
    """The source connection comes from $S3DB_SOURCE as an EnvVar: the run works with the secret,
    and no file of the Dagster instance (runs, event log, compute logs) holds it."""
    from s3db_fixtures import load_dump_into_bucket

    load_dump_into_bucket(moto_server.boto_client(), bucket_name)
    host = moto_server.endpoint.split("://", 1)[1]
    monkeypatch.setenv("S3DB_SOURCE", f"http://{moto_server.access_key}:{CANARY}@{host}/{bucket_name}")
    defs = build_definitions(repos=[str(tmp_path / "repo")])
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        result = _job(defs).execute_in_process(partition_key=SUNDAY, instance=instance)
        assert result.success and _materializations(result)["backup_manifest"]["records"].value == 27
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in stored)
    assert not [p for p in stored if CANARY.encode() in p.read_bytes()]


def test_a_literal_secret_in_config_is_refused(moto_server, bucket_name, tmp_path, monkeypatch):
    from backup_pipeline.errors import UsageError

    monkeypatch.delenv("S3DB_SOURCE", raising=False)
    host = moto_server.endpoint.split("://", 1)[1]
    with pytest.raises(UsageError, match=r"holds a secret key.*S3DB_SOURCE"):
        build_definitions(source=f"http://key:{CANARY}@{host}/{bucket_name}", repos=[str(tmp_path / "repo")])


def test_a_restore_target_with_a_secret_is_refused_and_target_env_works(setup, monkeypatch):
    defs, src, repo, tmp = setup
    instance = dg.DagsterInstance.ephemeral()
    bid = _materializations(_job(defs).execute_in_process(partition_key=SUNDAY, instance=instance))[
        "backup_manifest"]["backup_id"].value
    restore = defs.resolve_job_def("restore_job")
    refused = restore.execute_in_process(instance=instance, raise_on_error=False, run_config={"ops": {"restore_backup": {
        "config": {"backup_id": bid, "target": f"http://key:{CANARY}@127.0.0.1:9/bucket"}}}})
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "target_env" in failure.event_specific_data.error.to_string()
    monkeypatch.setenv("RESTORE_TARGET", f"file://{tmp / 'restored'}")
    done = restore.execute_in_process(instance=instance, run_config={"ops": {"restore_backup": {
        "config": {"backup_id": bid, "target_env": "RESTORE_TARGET"}}}})
    assert done.success
    assert snapshot(open_store(f"file://{tmp / 'restored'}")) == snapshot(open_store(f"file://{src}"))


def test_a_wrong_backup_id_fails_first_naming_it(setup):
    defs, _src, _repo, tmp = setup
    result = defs.resolve_job_def("restore_job").execute_in_process(raise_on_error=False, run_config={"ops": {
        "restore_backup": {"config": {"backup_id": "full-2026-01-01T000000Z-0000", "target": f"file://{tmp / 'x'}"}}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "'full-2026-01-01T000000Z-0000' not found" in failure.event_specific_data.error.to_string()
    assert not (tmp / "x").exists()  # nothing was created


def test_a_failed_run_is_logged_and_posted_to_the_webhook(setup, monkeypatch):
    """The run-failure sensor posts the failure (job, partition-less here, the reason) to
    $BACKUP_ALERT_WEBHOOK: a webhook on 127.0.0.1 receives it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from backup_pipeline.defs.alerts import backup_run_failed

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("BACKUP_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_address[1]}/hook")
    defs, _src, _repo, tmp = setup
    instance = dg.DagsterInstance.ephemeral()
    failed = defs.resolve_job_def("restore_job").execute_in_process(instance=instance, raise_on_error=False,
                                                                     run_config={"ops": {"restore_backup": {"config": {
                                                                         "backup_id": "full-2026-01-01T000000Z-0000",
                                                                         "target": f"file://{tmp / 'x'}"}}}})
    assert not failed.success
    run = instance.get_run_by_id(failed.run_id)
    event = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
    context = dg.build_run_status_sensor_context(sensor_name="backup_run_failed", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=event).for_run_failure()
    backup_run_failed(context)
    server.shutdown()
    assert len(received) == 1 and failed.run_id in received[0]["text"] and "restore_job" in received[0]["text"]


def test_defaults_are_consistent_and_a_missed_night_shows(setup):
    """The schedule and the retention sensor start in the same state (off: a deployment turns both
    on); alerting is on; the committed backup carries a freshness policy."""
    defs, _src, _repo, _tmp = setup
    schedule = defs.resolve_schedule_def("s3db_backup_daily")
    sensors = {s.name: s for s in defs.sensors}
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert sensors["retention_after_backup"].default_status == dg.DefaultSensorStatus.STOPPED
    assert sensors["backup_run_failed"].default_status == dg.DefaultSensorStatus.RUNNING
    spec = defs.resolve_assets_def(MANIFEST_KEY).specs_by_key[MANIFEST_KEY]
    assert spec.freshness_policy is not None and spec.freshness_policy.deadline_cron == "0 6 * * *"


def test_dg_check_defs_loads_the_project_without_warnings(tmp_path):
    """[tool.dg] in pyproject: `dg check defs` (and so `dg dev`) finds the code location."""
    import os
    import subprocess
    import sys

    src = copy_fs_db(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "S3DB_", "BACKUP_"))}
    env.update(S3DB_SOURCE=f"file://{src}", BACKUP_REPO=str(tmp_path / "repo"), DAGSTER_HOME=str(tmp_path))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([str(Path(sys.executable).with_name("dg")), "check", "defs"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr


def test_copy_of_a_dagster_backup_leaves_its_staging_files_behind(setup, tmp_path):
    """A staged backup's plan.json and RESOURCE.stage.json are how it was built, not part of it:
    `copy` takes the files the manifest records and the manifest, and the copy verifies."""
    from backup_pipeline import Backups

    defs, _src, repo, _tmp = setup
    bid = _materializations(_job(defs).execute_in_process(partition_key=SUNDAY, instance=dg.DagsterInstance.ephemeral()))[
        "backup_manifest"]["backup_id"].value
    assert "plan.json" in repo.file_names(bid) and any(n.endswith(".stage.json") for n in repo.file_names(bid))
    copied = Backups(None, repo).copy(bid, FilesystemRepository(tmp_path / "other"))
    assert copied[-1] == "s3db.json" and not [n for n in copied if n == "plan.json" or n.endswith(".stage.json")]
    other = Backups(None, str(tmp_path / "other"))
    assert sorted(FilesystemRepository(tmp_path / "other").file_names(bid)) == sorted(copied)
    assert other.verify(bid).files == len(copied) - 1
