"""Copy a committed backup to another repository: every file its manifest records, then the
manifest last, under the destination's lease (so a cleanup there never removes a backup being
copied in)."""

from __future__ import annotations

import shutil

from ..errors import NotFound
from ..repository import MANIFEST_NAME, Repository
from ..repository.lock import LockOptions, acquire
from .backup import publish_tables


def copy_backup(src: Repository, dst: Repository, backup_id: str, lock: LockOptions | None = None) -> list[str]:
    """Complete a destination that missed a backup; returns the names copied (none when it
    already holds the backup). Stored bytes are copied as they are."""
    manifest = src.read_manifest(backup_id)
    if manifest is None:
        raise NotFound(f"backup {backup_id} is not committed in {src.url}; only complete backups are copied")
    with acquire(dst, "copy", backup_id, lock):
        if dst.read_manifest(backup_id) is not None:
            return []
        copied = []
        # the files the manifest records, nothing else: a staged (Dagster) backup's plan and
        # stage files are how it was built, not part of it
        for name in [f.file for _resource, f in manifest.files()]:
            with src.open_file(backup_id, name) as f, dst.create_file(backup_id, name) as out:
                shutil.copyfileobj(f, out, 1 << 20)
            copied.append(name)
        dst.commit_manifest(backup_id, manifest)
        publish_tables(dst, manifest)  # the copy's own, naming its files where they now are
    return copied + [MANIFEST_NAME]
