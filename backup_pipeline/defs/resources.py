"""Dagster resources: one per thing to configure (dagster-open-platform style), each a thin
config over the settings classes that the CLI and the API use too (settings.py), so Dagster
can set everything the command line can."""


from typing import Optional

import dagster as dg
from pydantic import Field

from ..repository import Repository
from ..settings import RepositorySettings, RetentionSettings, SourceSettings, settings_from
from ..store import Store


class S3dbSource(dg.ConfigurableResource):
    """The s3db.js database to back up."""

    connection: str = Field(description="s3db.js connection string: file:///path, s3://bucket/prefix or "
                                        "http(s)://host:port/bucket/prefix; credentials go in the fields below (or the "
                                        "AWS environment), or the whole string in an EnvVar: a literal string holding "
                                        "a secret is refused, since Dagster stores config in its run storage")
    access_key_id: Optional[str] = Field(default=None, description="S3 key of the source (default: the AWS "
                                                                    "environment)")
    secret_access_key: Optional[str] = Field(default=None, description="S3 secret of the source (use EnvVar)")
    session_token: Optional[str] = Field(default=None, description="S3 session token of the source (use EnvVar)")
    passphrase: Optional[str] = Field(default=None, description="s3db.js secrets passphrase (use EnvVar; default "
                                                                "$S3DB_PASSPHRASE); only needed to decrypt secrets")
    decrypt_secrets: bool = Field(default=False, description="decrypt secret fields in the decoded view")

    def settings(self) -> SourceSettings:
        return settings_from(SourceSettings, self)

    def open(self) -> Store:
        return self.settings().open()


class BackupRepository(dg.ConfigurableResource):
    """Where backups go and how they are written: every repository setting of the CLI, plus the
    backup options of a scheduled run."""

    repos: list[str] = Field(description="folders (templates {date} {time} {type} {id} allowed), file:// or "
                                         "s3://bucket/prefix; several make a multi-destination repository")
    strategy: str = Field(default="all", description="with several repos: all | any | priority")
    max_uploads: int = Field(default=2, description="with several repos: destinations written at once")
    endpoint_url: Optional[str] = Field(default=None, description="S3 endpoint (default $AWS_ENDPOINT_URL)")
    region: Optional[str] = Field(default=None, description="S3 region (default $AWS_REGION)")
    profile: Optional[str] = Field(default=None, description="AWS profile (default $AWS_PROFILE)")
    access_key_id: Optional[str] = Field(default=None, description="S3 key (default from the AWS environment)")
    secret_access_key: Optional[str] = Field(default=None, description="S3 secret (use EnvVar)")
    session_token: Optional[str] = Field(default=None, description="S3 session token (use EnvVar)")
    storage_class: Optional[str] = Field(default=None, description="S3 storage class, e.g. STANDARD_IA")
    sse: Optional[str] = Field(default=None, description="S3 server-side encryption: AES256 | aws:kms | sse-c")
    sse_kms_key_id: Optional[str] = Field(default=None, description="KMS key id for sse aws:kms")
    sse_customer_key: Optional[str] = Field(default=None, description="base64 32-byte key for sse sse-c (use "
                                                                      "EnvVar; default $BACKUP_SSE_CUSTOMER_KEY)")
    repo_passphrase: Optional[str] = Field(default=None, description="client-side encryption passphrase (use "
                                                                     "EnvVar; default $BACKUP_REPO_PASSPHRASE)")
    repo_key_file: Optional[str] = Field(default=None, description="file holding the raw 32-byte key instead")
    encrypt: bool = Field(default=False, description="encrypt a new repository client-side")
    lock_wait: float = Field(default=0.0, description="seconds a step waits for another writer's lease (then "
                                                      "fails, exit code 7 on the command line)")
    lock_ttl: float = Field(default=60.0, description="a lease whose heartbeat is older than this is stale")
    object_lock: Optional[str] = Field(default=None, description="S3 Object Lock mode: governance | compliance (the "
                                                                 "bucket must have object lock enabled); kept in the "
                                                                 "repository's object-lock.json for later runs")
    object_lock_days: Optional[int] = Field(default=None, description="with object_lock: each file locked this many "
                                                                      "days past its write, kept backups extended to "
                                                                      "as many days past each retention run")
    # how scheduled backups are written
    compression: str = Field(default="gzip", description="gzip | zstd | brotli | none")
    parquet: bool = Field(default=False, description="also write a typed Parquet mirror RESOURCE.parquet")
    skip_corrupt: bool = Field(default=False, description="record unreadable source objects in the manifest and go "
                                                          "on, instead of failing")
    verify: bool = Field(default=True, description="re-read the files before committing")
    full_weekday: str = Field(default="sunday", description="scheduled backups are full on this weekday (or "
                                                            "'daily'), and whenever there is no parent")
    workers: Optional[int] = Field(default=None, description="decoding processes per step (default: cores - 1)")
    shard_records: Optional[int] = Field(default=None, description="a resource listing more objects is backed up in "
                                                                   "key-range parts of about this many (one step "
                                                                   "per part for the resources built sharded)")

    def settings(self) -> RepositorySettings:
        return settings_from(RepositorySettings, self)

    def open(self) -> Repository:
        return self.settings().open()


class Retention(dg.ConfigurableResource):
    """The GFS retention policy the retention job applies (calendar periods in `timezone`)."""

    keep_last: int = Field(default=0, description="keep the N newest complete backups")
    keep_hourly: int = Field(default=0, description="newest backup of each of the last N hours")
    keep_daily: int = Field(default=7, description="newest backup of each of the last N days")
    keep_weekly: int = Field(default=4, description="... of the last N ISO weeks")
    keep_monthly: int = Field(default=6, description="... of the last N months")
    keep_yearly: int = Field(default=0, description="... of the last N years")
    keep_within: Optional[str] = Field(default=None, description="keep all within this duration, e.g. 2d")
    timezone: str = Field(default="UTC", description="IANA timezone of the calendar")
    grace: str = Field(default="24h", description="remove incomplete backups once older than this")

    def settings(self) -> RetentionSettings:
        return settings_from(RetentionSettings, self)

    def policy(self):
        return self.settings().policy()
