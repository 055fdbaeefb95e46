"""What a repository holds: complete, incomplete and failed backups (list / status)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from ..errors import NotFound, UsageError
from ..repository import Repository
from ..repository.files import read_json
from ..repository.manifest import FAILURE, PLAN, Failure, Manifest, Plan
from ..repository.verifications import read_verification
from ..store.filesystem import iso_ms, parse_iso


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
    last_activity: str | None = None  # unfinished backups: when their files last changed
    last_verified_at: str | None = None  # committed backups: when `verify` last checked it (None: never)
    last_verification: str | None = None  # its outcome: ok | failed
    verification_error: str | None = None  # what differed, when failed
    synthetic_from: str | None = None  # a synthetic full: the backup whose chain it was built from

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def describe_backup(repo: Repository, backup_id: str) -> BackupInfo:
    manifest = repo.read_manifest(backup_id)
    if manifest is not None:
        checked = read_verification(repo, backup_id)
        return BackupInfo(
            id=backup_id, state="complete", type=manifest.type, parent=manifest.parent, source=manifest.source_url,
            started_at=manifest.started_at, finished_at=manifest.finished_at, records=manifest.totals.records,
            tombstones=manifest.totals.tombstones, bytes=manifest.totals.bytes, resources=list(manifest.resources),
            selective=manifest.selective, last_verified_at=checked and checked.verified_at,
            last_verification=checked and checked.outcome, verification_error=checked and checked.error,
            synthetic_from=manifest.synthetic_from,
        )
    names = repo.file_names(backup_id)
    if not names and backup_id not in repo.backup_ids():
        raise NotFound(f"backup {backup_id} not found in {repo.url}")
    info = BackupInfo(id=backup_id, state="incomplete", type=backup_id.split("-", 1)[0])
    if PLAN in names:  # a staged (Dagster) backup: its plan says what it is
        plan = Plan.load(read_json(repo, backup_id, PLAN), repo.describe(backup_id, PLAN))
        info.type, info.parent, info.started_at = plan.type, plan.parent, plan.started_at
    last = repo.last_modified(backup_id)
    info.last_activity = last.isoformat() if last else None
    if FAILURE in names:
        failure = Failure.load(read_json(repo, backup_id, FAILURE), repo.describe(backup_id, FAILURE))
        info.state, info.error = "failed", failure.error
    info.bytes = sum(repo.file_size(backup_id, n) for n in names)
    return info


def list_backups(repo: Repository) -> list[BackupInfo]:
    if not repo.exists():
        raise NotFound(f"repository {repo.url} does not exist (check the path; a first backup creates it)")
    infos = []
    for bid in repo.backup_ids():
        try:
            infos.append(describe_backup(repo, bid))
        except NotFound:
            continue  # an empty folder: nothing was ever written
    return sorted(infos, key=lambda i: (i.started_at or "", i.id))


def resolve_backup_id(repo: Repository, ref: str) -> str:
    """A backup named as restic names snapshots: its id, a unique prefix of it, or `latest` (the
    newest committed backup of the repository)."""
    if ref == "latest":
        manifests = complete_manifests(repo)
        if not manifests:
            raise NotFound(f"no committed backup in {repo.url}, so none is the latest")
        return manifests[-1].id
    ids = repo.backup_ids()
    if ref in ids:
        return ref
    matches = [i for i in ids if ref and i.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (f" and {len(matches) - 5} more" if len(matches) > 5 else "")
        raise UsageError(f"backup {ref!r} is ambiguous in {repo.url}: {len(matches)} ids begin with it ({shown}); "
                         "give more of the id")
    if not repo.exists():
        raise NotFound(f"backup {ref!r} not found: repository {repo.url} does not exist")
    raise NotFound(f"backup {ref!r} not found in {repo.url} (give an id, a unique prefix of one, or latest; "
                   "`backup-pipeline list` shows them)")


def parse_point_in_time(text: str) -> datetime:
    """`--at`: ISO 8601 with Z or an offset (2026-11-20T10:00Z, 2026-11-20T11:00+01:00), or a date
    alone, which means the end of that UTC day (the state the day left). A time without a zone is
    refused: local time or UTC would be a guess."""
    example = "e.g. 2026-11-20T10:00Z, 2026-11-20T11:00+01:00 or the date 2026-11-20"
    try:
        return datetime.combine(date.fromisoformat(text), time.max, tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"point in time {text!r} is not an ISO 8601 time ({example})") from None
    if when.tzinfo is None:
        raise UsageError(f"point in time {text!r} has no time zone: add Z (UTC) or an offset such as +01:00")
    return when.astimezone(timezone.utc)


def backup_time(manifest: Manifest) -> datetime:
    """A backup's point in time: when it finished. Its records were read between its start and its
    finish, so only a backup finished by T holds nothing newer than T (one still running at T was
    not restorable then either)."""
    return parse_iso(manifest.finished_at)


@dataclass
class PointInTime:
    """What restore --at chose: the time asked for and the backup finished at or before it."""
    at: str
    id: str
    finished_at: str

    def as_json(self) -> dict:
        return {"at": self.at, "id": self.id, "finished_at": self.finished_at}


def resolve_at(repo: Repository, when: datetime) -> Manifest:
    """The newest committed backup finished at or before `when` (restore --at, list --at)."""
    manifests = sorted((m for m in complete_manifests(repo) if m.finished_at), key=lambda m: (backup_time(m), m.id))
    if not manifests:
        raise NotFound(f"no committed backup in {repo.url}, so none is at or before {iso_ms(when)}")
    before = [m for m in manifests if backup_time(m) <= when]
    if not before:
        first = manifests[0]
        raise NotFound(f"no committed backup in {repo.url} finished at or before {iso_ms(when)}; the earliest, "
                       f"{first.id}, finished at {first.finished_at}")
    return before[-1]


def complete_manifests(repo: Repository, source: str | None = None) -> list[Manifest]:
    """Committed manifests, oldest first, optionally only those of one source."""
    out = []
    for bid in repo.backup_ids():
        m = repo.read_manifest(bid)
        if m is not None and (source is None or m.source_url == source):
            out.append(m)
    return sorted(out, key=lambda m: (m.started_at, m.id))
