"""The repository contract: folders of files, committed by a manifest written last, create-only.

Invariants every implementation keeps (restic's design.rst style):
- a file becomes visible under its final name only once completely written;
- the manifest (`s3db.json`) of a backup is written once and never overwritten;
- a backup without a manifest is never listed as complete;
- deleting a backup removes its manifest first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

MANIFEST_NAME = "s3db.json"


class Repository(Protocol):
    url: str

    def backup_ids(self) -> list[str]:
        """Every backup folder, complete or not."""

    def create_file(self, backup_id: str, name: str) -> AbstractContextManager[BinaryIO]:
        """Write a file; it appears under `name` only if the block exits without error."""

    def open_file(self, backup_id: str, name: str) -> BinaryIO: ...

    def file_size(self, backup_id: str, name: str) -> int: ...

    def file_names(self, backup_id: str) -> list[str]: ...

    def read_manifest(self, backup_id: str) -> dict | None:
        """The committed manifest, or None when the backup is incomplete."""

    def commit_manifest(self, backup_id: str, manifest: dict) -> None:
        """Create-only write of the manifest: the commit. Raises ConflictError if present."""

    def delete_backup(self, backup_id: str) -> None: ...

    def describe(self, backup_id: str, name: str) -> str:
        """Where a file is, for messages and metadata (path or URL)."""
