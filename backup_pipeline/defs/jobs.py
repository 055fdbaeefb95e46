"""Jobs around the backups: the daily backup job and its schedule, GFS retention started by a
sensor on each committed manifest, restore with config, the weekly restore drill, whose
result is the `restore_drill` check on the manifest asset, and the daily verification within a
time budget, whose result is the `backups_verified` check on it."""


import os
from enum import Enum
from typing import Optional

import dagster as dg

from .assets import GROUP, MANIFEST_KEY
from ..api import Backups
from .checks import DRILL_CHECK, VERIFY_CHECK, drill_check_result, verify_check_result
from .resources import BackupRepository, Retention, S3dbSource
from ..errors import BackupPipelineError, DrillFailed, UsageError
from ..store.connection import has_secret

class DrillConfig(dg.Config):
    backup_id: str = "latest"  # an id, a unique prefix or latest
    scratch_env: Optional[str] = None  # an environment variable holding an empty scratch target; default a temp folder


# Multi-asset checks that may yield nothing (restore_drill, backups_verified): Dagster runs the
# checks of every asset a run materializes, so "Materialize all" (UI or `dagster asset
# materialize`) would otherwise drill (restore the whole chain), or verify for an hour, beside each
# day's backup. There (a run for a day: partitioned, which their own jobs' runs never are) they say
# so and yield no result.
def _beside_a_backup(context, job: str) -> bool:
    tags = context.run.tags
    if "dagster/partition" in tags or "dagster/asset_partition_range_start" in tags:
        context.log.info(f"this check runs in {job}, not beside a backup: not evaluated in this run")
        return True
    return False


@dg.multi_asset_check(specs=[dg.AssetCheckSpec(
    DRILL_CHECK, asset=MANIFEST_KEY, blocking=False,
    description="restore drill: the backup's chain restored into a scratch target, every record read back "
                "through the decoder equals the backup (engine/drill.py); run by drill_job")], can_subset=True)
def restore_drill(context: dg.AssetCheckExecutionContext, config: DrillConfig, backup_repo: BackupRepository,
                  s3db: S3dbSource):
    if _beside_a_backup(context, "drill_job (weekly schedule restore_drill_weekly)"):
        return
    scratch = None
    if config.scratch_env:
        if not os.environ.get(config.scratch_env):
            raise UsageError(f"drill_job: scratch_env {config.scratch_env!r} is not set in the run's environment")
        scratch = os.environ[config.scratch_env]
    report = error = None
    with Backups(None, backup_repo.settings(), passphrase=s3db.settings().resolved_passphrase()) as b:
        try:
            report = b.drill(config.backup_id, scratch=scratch)
        except DrillFailed as exc:
            report, error = exc.report, str(exc)
        except BackupPipelineError as exc:  # it did not restore (a damaged chain, no backup yet): red too
            error = f"{type(exc).__name__}: {exc}"
    context.log.info(error or f"drill of {report.backup_id}: {report.records:,} records equal the backup")
    yield drill_check_result(report, error, MANIFEST_KEY)


drill_job = dg.define_asset_job("drill_job", selection=dg.AssetSelection.checks(restore_drill),
                                description="Restore drill of the latest backup: the `restore_drill` check on "
                                            "the manifest asset.")
# Saturday, after the nightly backup: the week's longest chain (the Sunday full and six incrementals)
drill_schedule = dg.ScheduleDefinition(name="restore_drill_weekly", job=drill_job, cron_schedule="0 4 * * 6",
                                       execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)


class VerifyConfig(dg.Config):
    budget_seconds: float = 3600.0  # start no backup's verification after this; 0 verifies exactly one


@dg.multi_asset_check(specs=[dg.AssetCheckSpec(
    VERIFY_CHECK, asset=MANIFEST_KEY, blocking=False,
    description="the committed backups least recently verified (never verified first), verified within a time "
                "budget, each outcome remembered in the repository (verify --budget); red when one fails; run by "
                "verify_job")], can_subset=True)
def backups_verified(context: dg.AssetCheckExecutionContext, config: VerifyConfig, backup_repo: BackupRepository):
    if _beside_a_backup(context, "verify_job (daily schedule backups_verified_daily)"):
        return
    with Backups(None, backup_repo.settings()) as b:
        report = b.verify_budget(config.budget_seconds)
    for r in report.results:
        context.log.info(f"{r.backup_id}: {r.outcome}" + (f" ({r.error})" if r.error else ""))
    context.log.info(f"{len(report.left)} backup(s) left for the next run")
    yield verify_check_result(report, MANIFEST_KEY)


verify_job = dg.define_asset_job("verify_job", selection=dg.AssetSelection.checks(backups_verified),
                                 description="Verify the least recently verified backups within a time budget: the "
                                             "`backups_verified` check on the manifest asset.")
# after the nightly backup (02:00) and before the Saturday drill (04:00)
verify_schedule = dg.ScheduleDefinition(name="backups_verified_daily", job=verify_job, cron_schedule="0 3 * * *",
                                        execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED)

backup_job = dg.define_asset_job(
    "s3db_backup_job",  # the drill (weekly) and the budgeted verification (daily) have their own jobs
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.checks(restore_drill, backups_verified),
    description="Back up every s3db.js resource for a day and commit the backup (manifest last).",
)
backup_schedule = dg.build_schedule_from_partitioned_job(backup_job, hour_of_day=2, name="s3db_backup_daily")


class RetentionConfig(dg.Config):
    dry_run: bool = True  # decide and report only; set false to delete


@dg.op(description="Apply the GFS retention policy: every backup kept or removed, with its reasons.")
def apply_retention(context: dg.OpExecutionContext, config: RetentionConfig, backup_repo: BackupRepository,
                    retention: Retention) -> dg.Output:
    with Backups(None, backup_repo.settings()) as b:
        decisions = b.cleanup(retention.policy(), apply=not config.dry_run)
    rows = [f"| {d.id} | {d.action} | {', '.join(d.reasons)} |" for d in decisions]
    for d in decisions:
        context.log.info(f"{d.action:<6} {d.id}: {', '.join(d.reasons)}")
    removed = [d.id for d in decisions if d.action == "remove"]
    return dg.Output(None, metadata={
        "dry_run": config.dry_run,
        "kept_by_object_lock": dg.MetadataValue.int(sum(1 for d in decisions if d.held_by_lock and d.locked_until)),
        "kept": dg.MetadataValue.int(len(decisions) - len(removed)),
        "removed" if not config.dry_run else "would_remove": dg.MetadataValue.int(len(removed)),
        "decisions": dg.MetadataValue.md("| backup | action | why |\n|---|---|---|\n" + "\n".join(rows)),
    })


@dg.job(description="GFS retention over the backup repository (dry run unless configured otherwise).")
def retention_job():
    apply_retention()


# Off by default like the schedule it follows: a new deployment starts backing up and deleting
# when its user turns both on (README "Dagster"), never by surprise.
@dg.asset_sensor(asset_key=MANIFEST_KEY, job=retention_job, name="retention_after_backup",
                 default_status=dg.DefaultSensorStatus.STOPPED,
                 description="Starts the retention job once per newly committed backup manifest.")
def retention_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    # asset_sensor keeps the cursor (the last materialization seen): each manifest triggers one
    # run, and run_key makes a repeated evaluation of the same event a no-op.
    yield dg.RunRequest(run_key=f"retention-{asset_event.run_id}-{asset_event.timestamp}",
                        tags={"backup_pipeline/manifest_partition": asset_event.dagster_event.partition or ""})


class RestoreMode(str, Enum):
    safe = "safe"  # refuse a resource that already holds records
    replace = "replace"  # delete them first
    merge = "merge"  # overwrite same ids, keep others
    skip = "skip"  # keep existing ids


class RestoreConfig(dg.Config):
    backup_id: str = ""  # an id, a unique prefix or latest; or:
    at: Optional[str] = None  # a point in time: the newest backup finished by then (ISO 8601 with Z or offset)
    target: str = ""  # s3db.js connection string of the target database, without a secret (run config is stored)
    target_env: Optional[str] = None  # or: the environment variable holding it (credentials included)
    resources: Optional[list[str]] = None
    ids: Optional[list[str]] = None  # only these records of the one resource named, merged into the target
    # a dropdown in the launchpad (anything else is refused at launch); unset: safe, or merge with ids
    mode: Optional[RestoreMode] = None
    dry_run: bool = False
    verify: bool = False  # read every restored object back and compare it with the backup
    accept_empty_metadata_loss: bool = False  # restore into a target that drops "" and [] values


def restore_target(config: RestoreConfig) -> str:
    if bool(config.target) == bool(config.target_env):
        raise UsageError("restore_job: give the target as `target` (a connection string without a secret) or as "
                         "`target_env` (the name of an environment variable holding it), one of the two")
    if config.target_env:
        if not os.environ.get(config.target_env):
            raise UsageError(f"restore_job: target_env {config.target_env!r} is not set in the run's environment")
        return os.environ[config.target_env]
    if has_secret(config.target):
        raise UsageError("restore_job: the target connection string holds a secret key, and run config is stored "
                         "in Dagster's run storage; put the string in an environment variable and name it in "
                         "`target_env`, or leave the key to the AWS environment")
    return config.target


@dg.op(description="Restore the state at a backup into a target database (chain replayed, partitions, "
                   "sequences, s3db.json merged).")
def restore_backup(context: dg.OpExecutionContext, config: RestoreConfig, backup_repo: BackupRepository) -> dg.Output:
    target = restore_target(config)
    with Backups(None, backup_repo.settings()) as b:
        # the backup (an id, a unique prefix, latest, or the point in time) is checked before the target is touched
        report = b.restore(config.backup_id or None, target, at=config.at, resources=config.resources,
                           mode=config.mode.value if config.mode else None, dry_run=config.dry_run,
                           verify=config.verify, accept_empty_metadata_loss=config.accept_empty_metadata_loss,
                           ids=config.ids)
    backup_id = report.backup_id
    if report.point_in_time:
        context.log.info(f"point in time {config.at}: backup {backup_id} (finished {report.point_in_time.finished_at})")
    for name, r in report.resources.items():
        context.log.info(f"{name}: wrote {r.written}, deleted {r.deleted}, partition refs {r.partition_refs}")
    return dg.Output(None, metadata={
        "backup_id": backup_id, "target": report.target, "mode": report.mode, "dry_run": config.dry_run,
        "chain": " -> ".join(report.chain),
        "written": dg.MetadataValue.int(sum(r.written for r in report.resources.values())),
        "deleted": dg.MetadataValue.int(sum(r.deleted for r in report.resources.values())),
        "per_resource": dg.MetadataValue.json({name: r.as_json() for name, r in report.resources.items()}),
    })


@dg.job(description="Restore a backup into a target s3db.js database (config: backup_id or at, target, resources, "
                    "mode).")
def restore_job():
    restore_backup()
