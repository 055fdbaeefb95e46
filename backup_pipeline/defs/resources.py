"""Dagster resources: small pydantic classes, one per thing to configure (dagster-open-platform style)."""


from typing import Optional

import dagster as dg
from pydantic import Field

from ..demo import DEFAULT_DEMO_DIR, ensure_demo_database


def default_source() -> str:
    """The embedded default: the demo s3db.js database (created on first use)."""
    return f"file://{ensure_demo_database(DEFAULT_DEMO_DIR)}"


def default_repo() -> str:
    return str((DEFAULT_DEMO_DIR / "backups").resolve())


class S3dbSource(dg.ConfigurableResource):
    """The s3db.js database to back up."""

    connection: str = Field(description="s3db.js connection string: file:///path, s3://KEY:SECRET@bucket/prefix "
                                        "or http(s)://KEY:SECRET@host:port/bucket/prefix")
    passphrase: Optional[str] = Field(default=None, description="s3db.js secrets passphrase (use EnvVar); only "
                                                                "needed to decrypt secrets in the decoded view")
    decrypt_secrets: bool = Field(default=False, description="decrypt secret fields in the decoded view")

    def open(self):
        from ..store import open_store

        return open_store(self.connection)


class BackupRepository(dg.ConfigurableResource):
    """Where backups go: one or several repositories (multi), compression, encryption."""

    repos: list[str] = Field(description="folders (templates {date} {time} {type} {id} allowed), file:// or "
                                         "s3://bucket/prefix; several make a multi-destination repository")
    strategy: str = Field(default="all", description="with several repos: all | any | priority")
    max_uploads: int = Field(default=2, description="with several repos: destinations written at once")
    compression: str = Field(default="gzip", description="gzip | zstd | brotli | none")
    parquet: bool = Field(default=False, description="also write a typed Parquet mirror RESOURCE.parquet")
    endpoint_url: Optional[str] = Field(default=None, description="S3 endpoint (default $AWS_ENDPOINT_URL)")
    region: Optional[str] = Field(default=None, description="S3 region (default $AWS_REGION)")
    access_key_id: Optional[str] = Field(default=None, description="S3 key (default from the AWS environment)")
    secret_access_key: Optional[str] = Field(default=None, description="S3 secret (use EnvVar)")
    storage_class: Optional[str] = Field(default=None, description="S3 storage class, e.g. STANDARD_IA")
    sse: Optional[str] = Field(default=None, description="S3 server-side encryption: AES256 | aws:kms | sse-c")
    repo_passphrase: Optional[str] = Field(default=None, description="client-side encryption passphrase (EnvVar)")
    encrypt: bool = Field(default=False, description="encrypt a new repository client-side")
    full_weekday: str = Field(default="sunday", description="scheduled backups are full on this weekday (or "
                                                            "'daily'), and whenever there is no parent")
    workers: Optional[int] = Field(default=None, description="decoding processes per step (default: cores - 1)")

    def open(self):
        from ..repository import open_repository
        from ..repository.s3 import S3Options

        return open_repository(
            self.repos,
            S3Options(endpoint_url=self.endpoint_url, region=self.region, access_key_id=self.access_key_id,
                      secret_access_key=self.secret_access_key, storage_class=self.storage_class, sse=self.sse),
            strategy=self.strategy, max_uploads=self.max_uploads, passphrase=self.repo_passphrase,
            encrypt=self.encrypt)


class RetentionSettings(dg.ConfigurableResource):
    """The GFS retention policy the retention job applies (calendar periods in `timezone`)."""

    keep_last: int = Field(default=0, description="keep the N newest complete backups")
    keep_daily: int = Field(default=7, description="newest backup of each of the last N days")
    keep_weekly: int = Field(default=4, description="... of the last N ISO weeks")
    keep_monthly: int = Field(default=6, description="... of the last N months")
    keep_yearly: int = Field(default=0, description="... of the last N years")
    keep_within: Optional[str] = Field(default=None, description="keep all within this duration, e.g. 2d")
    timezone: str = Field(default="UTC", description="IANA timezone of the calendar")
    grace: str = Field(default="24h", description="remove incomplete backups once older than this")

    def policy(self):
        from ..engine.retention import RetentionPolicy, parse_duration

        return RetentionPolicy(keep_last=self.keep_last, keep_daily=self.keep_daily, keep_weekly=self.keep_weekly,
                               keep_monthly=self.keep_monthly, keep_yearly=self.keep_yearly,
                               keep_within=parse_duration(self.keep_within) if self.keep_within else None,
                               timezone=self.timezone, incomplete_grace=parse_duration(self.grace))
