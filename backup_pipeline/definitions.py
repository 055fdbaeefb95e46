"""The Dagster code location: `dagster dev -w dagster_workspace.yaml` serves it.

Configured from the environment, with the embedded default when nothing is set:
  S3DB_SOURCE            s3db.js connection string      (default: the demo database ./demo/db); an
                         EnvVar: its value, credentials included, never reaches run storage
  S3DB_ACCESS_KEY_ID, S3DB_SECRET_ACCESS_KEY, S3DB_SESSION_TOKEN
                         the source's S3 credentials apart (else in S3DB_SOURCE, or the AWS environment)
  S3DB_PASSPHRASE        s3db.js secrets passphrase     (optional)
  BACKUP_REPO            repositories, comma-separated  (default: ./demo/backups)
  BACKUP_REPO_PASSPHRASE client-side encryption         (optional)
  BACKUP_SHARDED         resources backed up in key-range parts, one step per part, comma-separated
                         (optional; parts of about BackupRepository.shard_records, default
                         $BACKUP_SHARD_RECORDS or 1,000,000); the runs then use the multiprocess executor
The s3db.js resources are discovered from the source's s3db.json when the code location
loads: a new resource appears on reload.
"""

from __future__ import annotations

import os

import dagster as dg

from .defs.alerts import backup_run_failed
from .defs.assets import build_backup_assets
from .defs.jobs import (backup_job, backup_schedule, backups_verified, drill_job, drill_schedule, restore_drill,
                        restore_job, retention_job, retention_sensor, verify_job, verify_schedule)
from .defs.embedded import default_repo, default_source
from .defs.resources import BackupRepository, Retention, S3dbSource
from .defs.sharded import build_sharded_asset
from .errors import UsageError
from .settings import SourceSettings
from .store.connection import has_secret


DEFAULT_SHARD_RECORDS = 1_000_000


def _kind(connection: str) -> str:
    return "file" if connection.startswith("file://") or "://" not in connection else "s3"


def _env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_definitions(source: str | None = None, repos: list[str] | None = None, sharded: list[str] | None = None,
                      **repo_options) -> dg.Definitions:
    """`source`: a connection string without a secret (Dagster stores resource config in its run
    storage); by default `$S3DB_SOURCE`, passed as an EnvVar so only its name is stored."""
    if source is None and os.environ.get("S3DB_SOURCE"):
        source, connection = os.environ["S3DB_SOURCE"], dg.EnvVar("S3DB_SOURCE")
    else:
        source = connection = source or default_source()
        if has_secret(source):
            raise UsageError(
                "the source connection string holds a secret key, which Dagster would store in its run storage; "
                "set it in $S3DB_SOURCE (passed as an EnvVar, only the name is stored), or give the key apart: "
                "$S3DB_ACCESS_KEY_ID / $S3DB_SECRET_ACCESS_KEY or the AWS environment")
    credentials = {"access_key_id": _env("S3DB_ACCESS_KEY_ID"), "secret_access_key": _env("S3DB_SECRET_ACCESS_KEY"),
                   "session_token": _env("S3DB_SESSION_TOKEN")}
    repos = repos or [r for r in os.environ.get("BACKUP_REPO", "").split(",") if r] or [default_repo()]
    s3db = S3dbSource(connection=connection, passphrase=_env("S3DB_PASSPHRASE"), **credentials)
    sharded = sharded if sharded is not None else [r for r in os.environ.get("BACKUP_SHARDED", "").split(",") if r]
    if sharded and "shard_records" not in repo_options:
        repo_options["shard_records"] = int(os.environ.get("BACKUP_SHARD_RECORDS") or DEFAULT_SHARD_RECORDS)
    backup_repo = BackupRepository(repos=repos, repo_passphrase=_env("BACKUP_REPO_PASSPHRASE"), **repo_options)
    # the resources are discovered at load, with the values the EnvVars stand for
    resources = SourceSettings(connection=source, **{k: v and os.environ[v] for k, v in credentials.items()}).open() \
        .list_resources()
    unknown = [r for r in sharded if r not in resources]
    if unknown:
        raise UsageError(f"BACKUP_SHARDED names {', '.join(unknown)}, not a resource of the source; "
                         f"its resources: {', '.join(resources)}")
    assets = build_backup_assets(resources, parquet=backup_repo.parquet, source_kind=_kind(source),
                                 repo_kind="s3" if all(r.startswith("s3://") for r in repos) else "file",
                                 sharded=sharded)
    shard_assets = [build_sharded_asset(r, source_kind=_kind(source), parquet=backup_repo.parquet) for r in sharded]
    return dg.Definitions(
        assets=[assets, *(a for a, _check in shard_assets)],
        asset_checks=[restore_drill, backups_verified, *(check for _a, check in shard_assets)],
        # a partition is one step (every resource and the commit): running it in the run's own
        # process saves a process start and a Dagster import; see README "Dagster" for larger setups.
        # Sharded resources are steps that should run side by side: a process each.
        executor=dg.multiprocess_executor if sharded else dg.in_process_executor,
        jobs=[backup_job, retention_job, restore_job, drill_job, verify_job],
        schedules=[backup_schedule, drill_schedule, verify_schedule],
        sensors=[retention_sensor, backup_run_failed],
        resources={"s3db": s3db, "backup_repo": backup_repo, "retention": Retention()},
    )


defs = build_definitions()
