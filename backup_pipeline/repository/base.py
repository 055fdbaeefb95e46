"""The repository contract: folders of files, committed by a manifest written last, create-only.

Invariants every implementation keeps (restic's design.rst style):
- a file becomes visible under its final name only once completely written;
- the manifest (`s3db.json`) of a backup is written once and never overwritten;
- a backup without a manifest is never listed as complete;
- deleting a backup removes its manifest first.

Files are stored bytes: compression and encryption are applied above, by the file pipeline
(files.py) with the repository's `encryption` layer. Small files at the root (`crypto.json`,
`locks/...`, `verifications/...`, `object-lock.json`) are what the encryption config, leases,
verification records, the object lock config and the Athena table files (`tables/...`) live in; those names are never backups
(ROOT_NAMES). A repository with an `object_lock` (S3 only, object_lock.py) writes every backup
file and manifest locked, and deletes a backup's every version.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Protocol

from .manifest import MANIFEST as MANIFEST_NAME, Manifest  # noqa: F401 - MANIFEST_NAME re-exported

if TYPE_CHECKING:
    from .encryption import Encryption
    from .object_lock import ObjectLock
    from .s3 import S3Options


ROOT_NAMES = ("crypto.json", "locks", "verifications", "object-lock.json", "tables")  # at the root, never a backup's folder


class Repository(Protocol):
    url: str
    encryption: "Encryption"  # PLAIN, or the client-side encryption of the repository

    def exists(self) -> bool:
        """Whether the repository is there at all (a folder that was never created is not)."""

    def backup_ids(self) -> list[str]:
        """Every backup folder, complete or not."""

    def create_file(self, backup_id: str, name: str) -> AbstractContextManager[BinaryIO]:
        """Write a file; it appears under `name` only if the block exits without error."""

    def open_file(self, backup_id: str, name: str) -> BinaryIO: ...

    def file_size(self, backup_id: str, name: str) -> int: ...

    def file_names(self, backup_id: str) -> list[str]: ...

    def last_modified(self, backup_id: str) -> "datetime | None":
        """When anything in the backup's folder last changed (files being written included), or
        None if it holds nothing: an unfinished backup's age is its last activity."""

    def read_manifest(self, backup_id: str) -> Manifest | None:
        """The committed manifest, or None when the backup is incomplete."""

    def commit_manifest(self, backup_id: str, manifest: Manifest) -> None:
        """Create-only write of the manifest: the commit. Raises ConflictError if present."""

    def delete_backup(self, backup_id: str) -> None: ...

    # -- object lock (None / no-ops where the storage has none) ---------------------------
    object_lock: "ObjectLock | None"

    def locked_until(self, backup_id: str) -> "datetime | None":
        """The latest retain-until date of any of the backup's objects (None: nothing locked)."""

    def extend_lock(self, backup_id: str, now: datetime) -> "datetime | None":
        """Lock the backup's objects until at least now + the lock's period; the new date, or None
        when nothing was extended."""

    def describe(self, backup_id: str, name: str) -> str:
        """Where a file is, for messages and metadata (path or URL)."""

    def backup_dir(self, backup_id: str) -> str:
        """The backup's folder relative to the repository root (its path template resolved)."""

    def location(self) -> "Location":
        """Where the root is, for readers outside this package (DuckDB, Athena)."""

    def destinations(self) -> "list[Repository]":
        """The repositories that hold copies: this one, or each destination of a multi repository
        (files that name where the data is, like Athena's table files, are written per copy)."""

    # -- small files at the repository root (crypto config, leases) ------------------------
    def read_root(self, name: str) -> bytes | None: ...

    def create_root(self, name: str, data: bytes) -> bool:
        """Create-only; False if it already exists."""

    def replace_root(self, name: str, data: bytes) -> None: ...

    def delete_root(self, name: str) -> None: ...

    def list_root(self, prefix: str) -> list[str]:
        """Names of the root files starting with `prefix` (e.g. "locks/")."""


@dataclass(frozen=True)
class Location:
    """A repository root as outside readers address it: a local folder, or s3://bucket/prefix/
    with the S3 options (endpoint, region, keys) to reach it."""

    root: str  # a local path, or s3://bucket/prefix/ (ends with "/")
    s3: "S3Options | None" = None

    @property
    def is_s3(self) -> bool:
        return self.s3 is not None
