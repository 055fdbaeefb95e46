"""A resource too large for one step, backed up in key-range parts (engine/shards.py), one Dagster
step per part: the multiprocess executor (or k8s, celery) runs the parts side by side, each in its
own process or pod, each holding the day's backup lease in the partition's group.

The asset `s3db/RESOURCE` is a graph of three ops:
- `RESOURCE__shard_plan`: plans the day's backup if no step did yet (type and parent, plan.json),
  then the resource's key ranges (RESOURCE.shards.json: the parent's ranges while they serve, else
  cut from a listing); one dynamic output per part (one for the whole resource when it fits one).
- `RESOURCE__part`: backs up its part (RESOURCE.part-NNN.jsonl.gz and its key index).
- `RESOURCE__join`: joins the staged parts into the resource's entry (RESOURCE.stage.json, the
  Parquet mirror), which the manifest asset commits with the other resources.
Its check `backup_file_valid` (blocking) is an asset check of its own, run after the join and
before the manifest asset commits. A committed day is reported again, nothing written.

A backfill of several days is one run (like the other assets): each day's plan is written when the
run's first op reaches it, so days after the first get as parent the newest backup committed
before the run (a valid chain, only a longer incremental); back up day by day for the tightest chain.
"""


import re
from contextlib import contextmanager
from datetime import date

import dagster as dg

from ..engine.staged import StagedBackup, TypePolicy
from .assets import GROUP, BackupRunConfig, daily, entry_metadata, open_backup, resource_asset_key
from .checks import RESOURCE_CHECK, resource_check_names, resource_checks
from .resources import BackupRepository, S3dbSource

WHOLE = -1  # the part number of a resource backed up in one step (it fits one part)


def _days(context) -> list[str]:
    tags = context.run.tags
    if "dagster/asset_partition_range_start" in tags:
        return daily.get_partition_keys_in_range(dg.PartitionKeyRange(tags["dagster/asset_partition_range_start"],
                                                                      tags["dagster/asset_partition_range_end"]))
    return [tags["dagster/partition"]]


@contextmanager
def _staged(day: str, s3db: S3dbSource, backup_repo: BackupRepository, forced: str | None = None):
    """The day's staged backup (planned now if no step did), its store closed afterwards."""
    store, repo, request, lock = open_backup(s3db, backup_repo)
    try:
        policy = TypePolicy(full_weekday=backup_repo.full_weekday, force=forced)
        with StagedBackup.for_day(store, repo, date.fromisoformat(day), policy, request, lock) as staged:
            yield staged
    finally:
        store.close()


def build_sharded_asset(resource: str, *, source_kind: str = "s3", parquet: bool = False):
    """The graph-backed asset of one sharded resource and its blocking check."""
    key = resource_asset_key(resource)
    tag = re.sub(r"[^A-Za-z0-9_]", "_", resource)  # what Dagster allows in an op name

    @dg.op(name=f"{tag}__shard_plan", out=dg.DynamicOut(tuple))
    def shard_plan(context: dg.OpExecutionContext, config: BackupRunConfig, s3db: S3dbSource,
                   backup_repo: BackupRepository):
        forced = (config.type.value if config.type else None) or context.run.tags.get("backup_pipeline/type")
        for day in sorted(_days(context)):  # oldest first
            with _staged(day, s3db, backup_repo, forced) as staged:
                if staged.committed() is not None:
                    context.log.info(f"{day}: backup {staged.backup_id} is already committed; nothing to back up")
                    continue
                plan = staged.shard_plan(resource)
            parts = [r.part for r in plan.ranges] if plan else [WHOLE]
            context.log.info(f"{day}: {resource} of {staged.backup_id} in {len(parts)} part(s)"
                             + (f" of about {plan.shard_records:,} records" if plan else ""))
            for part in parts:
                yield dg.DynamicOutput((day, part), mapping_key=f"d{day.replace('-', '')}_p{max(part, 0):03d}")

    @dg.op(name=f"{tag}__part")
    def backup_part(context: dg.OpExecutionContext, task: tuple, s3db: S3dbSource,
                    backup_repo: BackupRepository) -> tuple:
        day, part = task
        with _staged(day, s3db, backup_repo) as staged:
            entry = staged.stage_resource(resource, whole=True) if part == WHOLE else staged.stage_part(resource, part)
        context.log.info(f"{day}: {resource} part {part if part != WHOLE else '(whole)'}: {entry.records:,} records, "
                         f"{entry.tombstones:,} tombstones, {entry.seconds:.1f} s")
        return task

    @dg.op(name=f"{tag}__join", out=dg.Out(dg.Nothing))
    def join(context: dg.OpExecutionContext, tasks: list, s3db: S3dbSource, backup_repo: BackupRepository):
        parted = {day for day, part in tasks if part != WHOLE}
        for day in sorted(_days(context)):
            with _staged(day, s3db, backup_repo) as staged:
                committed = staged.committed()
                if committed is not None:
                    entry = committed.resources[resource]
                elif day in parted:
                    entry = staged.join_parts(resource)
                else:
                    entry = staged.stage_info(resource)
                plan = staged.plan
        # the last day's figures, as the other assets report a backfill
        return dg.Output(None, metadata=entry_metadata(plan.id, plan.type, plan.parent, plan.database, resource, entry,
                                                       backup_repo.open().describe))

    @dg.graph_asset(key=key, group_name=GROUP, partitions_def=daily, kinds={source_kind, "json"},
                    backfill_policy=dg.BackfillPolicy.single_run(),
                    description=f"Backup of the s3db.js resource `{resource}` for the day in key-range parts, one "
                                "step per part: RESOURCE.part-NNN.jsonl.gz and their key indexes.")
    def sharded():
        return join(shard_plan().map(backup_part).collect())

    @dg.asset_check(asset=key, name=RESOURCE_CHECK, blocking=True,
                    description=resource_check_names(parquet)[RESOURCE_CHECK])
    def file_valid(context: dg.AssetCheckExecutionContext, s3db: S3dbSource, backup_repo: BackupRepository):
        results = []
        for day in sorted(_days(context)):
            with _staged(day, s3db, backup_repo) as staged:
                committed = staged.committed()
                entry = committed.resources.get(resource) if committed else staged.stage_info(resource)
                results += resource_checks(staged.repo, staged.backup_id, resource, entry, key, parquet, context.log)
        failed = [r for r in results if not r.passed]
        return failed[0] if failed else results[-1]

    return sharded, file_valid
