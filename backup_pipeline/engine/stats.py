"""What a repository holds and what it costs (restic's stats): sizes, counts, growth, and the
bytes full backups store again for records unchanged since the backup before them (what an
incremental, or a synthetic full, would not have stored)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..errors import NotFound
from ..repository import Repository
from ..repository.manifest import Manifest
from .catalog import backup_time
from .keyindex import resource_index


@dataclass
class BackupStats:
    id: str
    type: str
    finished_at: str | None
    records: int
    tombstones: int
    stored_bytes: int
    repeated_bytes: int = 0  # full backups: bytes of records unchanged since the previous backup of the source

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RepositoryStats:
    repository: str
    committed: int = 0
    unfinished: int = 0  # incomplete or failed: stored bytes count, restores never read them
    stored_bytes: int = 0  # every file of every backup (manifests too), unfinished ones included
    latest: str | None = None
    latest_records: int = 0  # live records at the latest backup (its key indexes)
    restore_bytes: int = 0  # bytes a restore of the latest backup reads (its chain's data files)
    repeated_bytes: int = 0
    bytes_per_day: float | None = None  # committed bytes over the days between the first and last backup
    backups: list[BackupStats] = field(default_factory=list)

    def as_json(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "backups"},
                "backups": [b.as_json() for b in self.backups]}


def _state(repo: Repository, manifest: Manifest, resource: str) -> set[int]:
    """The (key, content) pairs live at a backup, as 8-byte digests (memory ~ 60 bytes a record)."""
    entry = manifest.resources[resource]
    if entry.index_entries is None:
        return set()
    return {int.from_bytes(hashlib.blake2b(f"{key}\0{digest}".encode(), digest_size=8).digest(), "little")
            for key, _token, digest, _line in resource_index(repo, manifest.id, entry)}


def _repeated_bytes(repo: Repository, full: Manifest, previous: Manifest) -> int:
    out = 0
    for name, entry in full.resources.items():
        if name not in previous.resources or not entry.records:
            continue
        before, now = _state(repo, previous, name), _state(repo, full, name)
        out += entry.data_bytes * len(now & before) // max(len(now), 1)
    return out


def repository_stats(repo: Repository) -> RepositoryStats:
    stats = RepositoryStats(repo.url)
    if not repo.exists():
        raise NotFound(f"repository {repo.url} does not exist (check the path; a first backup creates it)")
    manifests = []  # each read once (on S3, a GET each)
    for bid in repo.backup_ids():
        names = repo.file_names(bid)
        stats.stored_bytes += sum(repo.file_size(bid, name) for name in names)
        manifest = repo.read_manifest(bid)
        if manifest is not None:
            manifests.append(manifest)
        elif names:  # an empty folder is no backup
            stats.unfinished += 1
    manifests.sort(key=lambda m: (m.started_at, m.id))
    previous: dict[str | None, Manifest] = {}  # source -> its latest backup so far
    for m in manifests:
        b = BackupStats(m.id, m.type, m.finished_at, m.totals.records, m.totals.tombstones,
                        sum(e.stored_bytes for e in m.resources.values()))
        if m.type == "full" and m.source_url in previous:
            b.repeated_bytes = _repeated_bytes(repo, m, previous[m.source_url])
        previous[m.source_url] = m
        stats.backups.append(b)
    stats.committed = len(manifests)
    stats.repeated_bytes = sum(b.repeated_bytes for b in stats.backups)
    if manifests:
        latest = manifests[-1]
        stats.latest = latest.id
        stats.latest_records = sum(e.index_entries or 0 for e in latest.resources.values())
        by_id = {m.id: m for m in manifests}
        stats.restore_bytes = sum(e.data_bytes for bid in latest.chain for e in by_id[bid].resources.values())
        if len(manifests) > 1:
            days = (backup_time(latest) - backup_time(manifests[0])).total_seconds() / 86400
            if days > 0:
                stats.bytes_per_day = round(sum(b.stored_bytes for b in stats.backups) / days, 1)
    return stats
