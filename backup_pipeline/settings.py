"""One settings path: what a user configures, turned into engine objects here and nowhere else.

The CLI fills these classes from its flags, the Python API from its arguments, the Dagster
resources from their config (dlt's one spec for every entry point). So every entry point can set
everything, and an environment variable means the same wherever it is read.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field, fields
from datetime import timedelta

from .engine.retention import RetentionPolicy, parse_duration
from .errors import UsageError
from .repository import Repository, open_repository
from .repository.lock import LockOptions
from .repository.object_lock import object_lock_from
from .repository.s3_options import S3Options
from .store import Store, open_store, store_url

SOURCE_PASSPHRASE_ENV = "S3DB_PASSPHRASE"
REPO_PASSPHRASE_ENV = "BACKUP_REPO_PASSPHRASE"
SSE_C_KEY_ENV = "BACKUP_SSE_CUSTOMER_KEY"


@dataclass
class SourceSettings:
    """The s3db.js database a backup reads (or a restore writes)."""

    connection: str | None = None  # s3db.js connection string
    passphrase: str | None = None  # s3db.js secrets passphrase (default $S3DB_PASSPHRASE)
    decrypt_secrets: bool = False  # decrypt secret fields in the decoded view
    # S3 credentials apart from the connection string (default: in it, or the AWS environment)
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def resolved_passphrase(self) -> str | None:
        return self.passphrase if self.passphrase is not None else os.environ.get(SOURCE_PASSPHRASE_ENV)

    def check(self) -> None:
        if self.decrypt_secrets and not self.resolved_passphrase():
            raise UsageError(f"--decrypt-secrets needs --passphrase (or ${SOURCE_PASSPHRASE_ENV})")

    def url(self) -> str:
        """The source's identity (what manifests record as its url), without opening it."""
        if not self.connection:
            raise UsageError("no source database given (--source CONN)")
        return store_url(self.connection, access_key_id=self.access_key_id, secret_access_key=self.secret_access_key,
                         session_token=self.session_token)

    def open(self, *, create: bool = False) -> Store:
        if not self.connection:
            raise UsageError("no source database given (--source CONN)")
        return open_store(self.connection, create=create, access_key_id=self.access_key_id,
                          secret_access_key=self.secret_access_key, session_token=self.session_token)


@dataclass
class RepositorySettings:
    """Where backups live: one or several repositories, S3 options, encryption, lock wait."""

    repos: list[str] = field(default_factory=list)  # folders (templates allowed), file:// or s3://
    strategy: str = "all"  # with several repos: all | any | priority
    max_uploads: int = 2  # with several repos: destinations written at once
    endpoint_url: str | None = None  # S3 endpoint (default $AWS_ENDPOINT_URL)
    region: str | None = None  # S3 region (default $AWS_REGION)
    profile: str | None = None  # AWS profile (default $AWS_PROFILE)
    access_key_id: str | None = None  # default: the AWS environment
    secret_access_key: str | None = None
    session_token: str | None = None
    storage_class: str | None = None  # S3 storage class, e.g. STANDARD_IA
    sse: str | None = None  # S3 server-side encryption: AES256 | aws:kms | sse-c
    sse_kms_key_id: str | None = None  # with sse aws:kms
    sse_customer_key: str | None = None  # with sse sse-c: base64 of 32 bytes (default $BACKUP_SSE_CUSTOMER_KEY)
    repo_passphrase: str | None = None  # client-side encryption passphrase (default $BACKUP_REPO_PASSPHRASE)
    repo_key_file: str | None = None  # or a file holding the raw 32-byte key (or its base64)
    encrypt: bool = False  # encrypt a new repository client-side
    lock_wait: float = 0.0  # seconds to wait for another writer's lease before failing (exit 7)
    lock_ttl: float = 60.0  # a lease whose heartbeat is older than this is stale
    # S3 Object Lock (repository/object_lock.py): kept in the repository's object-lock.json once given
    object_lock: str | None = None  # governance | compliance
    object_lock_days: int | None = None  # each file locked this long past its write and past each cleanup

    def s3_options(self) -> S3Options:
        sse_c = self.sse_customer_key or (os.environ.get(SSE_C_KEY_ENV) if self.sse == "sse-c" else None)
        return S3Options(endpoint_url=self.endpoint_url, region=self.region, profile=self.profile,
                         access_key_id=self.access_key_id, secret_access_key=self.secret_access_key,
                         session_token=self.session_token, storage_class=self.storage_class, sse=self.sse,
                         sse_kms_key_id=self.sse_kms_key_id, sse_customer_key=sse_c)

    def raw_key(self) -> bytes | None:
        if not self.repo_key_file:
            return None
        try:
            with open(self.repo_key_file, "rb") as f:
                key = f.read().strip()
        except OSError as exc:
            raise UsageError(f"--repo-key-file {self.repo_key_file}: cannot be read ({exc.strerror})") from None
        if len(key) != 32:
            try:
                key = base64.b64decode(key, validate=True)
            except ValueError:
                key = b""
        if len(key) != 32:
            raise UsageError(f"--repo-key-file {self.repo_key_file}: holds neither 32 raw bytes nor their base64")
        return key

    @property
    def lock(self) -> LockOptions:
        return LockOptions(wait=self.lock_wait, ttl=self.lock_ttl)

    def open(self) -> Repository:
        if not self.repos:
            raise UsageError("no repository given (--repo REPO)")
        passphrase = self.repo_passphrase or os.environ.get(REPO_PASSPHRASE_ENV)
        return open_repository(self.repos, self.s3_options(), strategy=self.strategy, max_uploads=self.max_uploads,
                               passphrase=passphrase, raw_key=self.raw_key(), encrypt=self.encrypt,
                               object_lock=object_lock_from(self.object_lock, self.object_lock_days))


@dataclass
class RetentionSettings:
    """A GFS retention policy on calendar periods in `timezone` (engine/retention.py)."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: str | None = None  # a duration: 36h, 7d, 1y2m3d
    timezone: str = "UTC"
    grace: str = "24h"  # incomplete or failed backups are removed once older than this

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(
            keep_last=self.keep_last, keep_hourly=self.keep_hourly, keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly, keep_monthly=self.keep_monthly, keep_yearly=self.keep_yearly,
            keep_within=parse_duration(self.keep_within) if self.keep_within is not None else None,
            timezone=self.timezone,
            incomplete_grace=parse_duration(self.grace) if self.grace is not None else timedelta(hours=24),
        )


def field_names(settings_class) -> list[str]:
    return [f.name for f in fields(settings_class)]


def settings_from(settings_class, values, **overrides):
    """An instance of settings_class from any object or mapping holding some of its field names
    (argparse namespaces, Dagster resources); what it lacks keeps its default."""
    get = values.get if isinstance(values, dict) else (lambda name, default=None: getattr(values, name, default))
    missing = object()
    kwargs = {}
    for name in field_names(settings_class):
        value = get(name, missing)
        if value is not missing:
            kwargs[name] = value
    return settings_class(**{**kwargs, **overrides})
