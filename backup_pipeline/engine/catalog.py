"""What a repository holds: complete, incomplete and failed backups (list / status)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..errors import NotFound
from ..repository import Repository


@dataclass
class BackupInfo:
    id: str
    state: str  # complete | incomplete | failed
    type: str | None = None
    parent: str | None = None
    source: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    records: int | None = None
    tombstones: int | None = None
    bytes: int | None = None
    resources: list[str] | None = None
    selective: bool | None = None
    error: str | None = None

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def describe_backup(repo: Repository, backup_id: str) -> BackupInfo:
    manifest = repo.read_manifest(backup_id)
    if manifest is not None:
        totals = manifest.get("totals", {})
        return BackupInfo(
            id=backup_id, state="complete", type=manifest.get("type"), parent=manifest.get("parent"),
            source=manifest.get("source", {}).get("url"), started_at=manifest.get("startedAt"),
            finished_at=manifest.get("finishedAt"), records=totals.get("records"),
            tombstones=totals.get("tombstones"), bytes=totals.get("bytes"),
            resources=list(manifest.get("resources", {})), selective=manifest.get("selective"),
        )
    names = repo.file_names(backup_id)
    if not names and backup_id not in repo.backup_ids():
        raise NotFound(f"backup {backup_id} not found in {repo.url}")
    info = BackupInfo(id=backup_id, state="incomplete", type=backup_id.split("-", 1)[0])
    if "failure.json" in names:
        with repo.open_file(backup_id, "failure.json") as f:
            failure = orjson.loads(f.read())
        info.state, info.error = "failed", failure.get("error")
    info.bytes = sum(repo.file_size(backup_id, n) for n in names)
    return info


def list_backups(repo: Repository) -> list[BackupInfo]:
    infos = []
    for bid in repo.backup_ids():
        try:
            infos.append(describe_backup(repo, bid))
        except NotFound:
            continue  # an empty folder: nothing was ever written
    return sorted(infos, key=lambda i: (i.started_at or "", i.id))


def complete_manifests(repo: Repository, source: str | None = None) -> list[dict]:
    """Committed manifests, oldest first, optionally only those of one source."""
    out = []
    for bid in repo.backup_ids():
        m = repo.read_manifest(bid)
        if m is not None and (source is None or m.get("source", {}).get("url") == source):
            out.append(m)
    return sorted(out, key=lambda m: (m.get("startedAt", ""), m["id"]))
