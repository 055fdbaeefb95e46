"""Apply a retention policy to a repository: plan (read the catalog, decide) and apply (delete).

`plan_cleanup` never writes. `apply_cleanup` deletes the "remove" decisions, children before
parents (longest chain first), so a committed incremental is never left without its parent even
if the run stops half way; `repo.delete_backup` removes the manifest first, so a half-deleted
backup is only ever seen as incomplete. In an object-locked repository (repository/
object_lock.py) the plan keeps what is still locked, saying until when, and `--apply` first
extends the lock of every backup the policy keeps.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from ..errors import ConflictError, IntegrityError
from ..repository import Repository
from ..repository.lock import LockOptions, acquire
from ..repository.verifications import delete_verification
from .catalog import list_backups
from .progress import Progress
from .tables import delete_tables
from .retention import COMPLETE, BackupEntry, Decision, RetentionPolicy, decide

_ID_TIME = re.compile(r"^[a-z]+-(\d{4}-\d{2}-\d{2}T\d{6}Z)-")


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _time_from_id(backup_id: str) -> datetime | None:
    """Backup ids made by the engine carry their start: full-2026-01-31T120000Z-ab12."""
    m = _ID_TIME.match(backup_id)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y-%m-%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(timezone.utc)


def catalog_entries(repo: Repository, now: datetime | None = None) -> list[BackupEntry]:
    """Every backup of the repository as a retention entry.

    Complete backups take startedAt and chain from their manifest. Incomplete and failed ones
    have no manifest: their age is their last activity (the newest change to their files); with
    no file to date them, `now`, so such a backup is never removed on a guess. A staged one's
    parent comes from its plan, so its chain is kept with it.
    """
    now = _now(now)
    entries = []
    for info in list_backups(repo):
        chain: list[str] = []
        started = _parse_iso(info.started_at)
        if info.state == "complete":
            manifest = repo.read_manifest(info.id)
            chain = list(manifest.chain) if manifest else ([info.parent, info.id] if info.parent else [info.id])
            started = started or _time_from_id(info.id)
            if started is None:
                raise IntegrityError(f"backup {info.id}: its manifest has no readable startedAt ({info.started_at!r})")
        else:
            started = started or _time_from_id(info.id) or now
        activity = _parse_iso(info.last_activity) if info.state != "complete" else None
        if info.state != "complete" and activity is None:
            activity = now
        entries.append(BackupEntry(id=info.id, state=info.state, type=info.type, parent=info.parent,
                                   chain=chain, started_at=started, last_activity=activity))
    return entries


def plan_cleanup(repo: Repository, policy: RetentionPolicy, now: datetime | None = None) -> list[Decision]:
    """What the policy keeps and removes in this repository, and why; writes nothing. In an
    object-locked repository each backup the policy would remove is looked at (every version of
    its objects): one still locked at `now` is kept, "locked until DATE", never tried."""
    now = _now(now)
    entries = catalog_entries(repo, now)
    decisions = decide(entries, policy, now)
    if repo.object_lock is None:
        return decisions
    locked = {d.id: until for d in decisions if d.action == "remove" and (until := repo.locked_until(d.id)) is not None}
    return decide(entries, policy, now, locked) if locked else decisions


def extend_locks(repo: Repository, decisions: list[Decision], now: datetime | None = None,
                 progress: Progress | None = None) -> dict[str, datetime]:
    """Object lock: every complete backup the policy keeps (not one kept only by its lock) gets
    its objects locked until at least now + the lock's days; returns the backups extended and
    their new date (also set as the decision's locked_until)."""
    if repo.object_lock is None:
        return {}
    now, progress = _now(now), progress or Progress()
    extended = {}
    for d in decisions:
        if d.action == "keep" and d.state == COMPLETE and not d.held_by_lock:
            until = repo.extend_lock(d.id, now)
            if until is not None:
                progress.message(f"locked {d.id} until {until:%Y-%m-%dT%H:%M:%SZ}")
                extended[d.id] = d.locked_until = until
    return extended


def apply_cleanup(repo: Repository, decisions: list[Decision], progress: Progress | None = None) -> list[str]:
    """Delete the backups decided "remove"; returns their ids in deletion order.

    Before deleting anything it re-reads the committed manifests: if a backup to remove is in the
    chain of a backup that stays (one committed after the plan was made, say), nothing is deleted
    and ConflictError asks for a new plan.
    """
    progress = progress or Progress()
    remove = {d.id for d in decisions if d.action == "remove"}
    if not remove:
        return []
    present = set(repo.backup_ids())
    chains: dict[str, list[str]] = {}
    manifests_read = {}
    for bid in present:
        m = repo.read_manifest(bid)
        if m is not None:
            chains[bid], manifests_read[bid] = list(m.chain), m
    for bid, chain in sorted(chains.items()):
        if bid in remove:
            continue
        needed = sorted(set(chain) & remove)
        if needed:
            raise ConflictError(
                f"backup {bid} needs {', '.join(needed)} (its chain), which the plan removes; the repository "
                "changed since the plan was made: plan the cleanup again"
            )
    # children (longer chains) before their parents; within one chain length, by id descending
    order = sorted(remove & present, key=lambda b: (len(chains.get(b, [])), b), reverse=True)
    progress.start("cleanup", total=len(order))
    done = []
    for bid in order:
        progress.message(f"removing {bid}")
        delete_tables(repo, manifests_read.get(bid), bid)  # Athena stops seeing it first
        repo.delete_backup(bid)
        delete_verification(repo, bid)  # its verification record goes with it
        done.append(bid)
        progress.advance("cleanup")
    progress.finish("cleanup")
    return done


def run_cleanup(repo: Repository, policy: RetentionPolicy, *, apply: bool = False, now: datetime | None = None,
                progress: Progress | None = None, lock: LockOptions | None = None) -> list[Decision]:
    """Plan, and with `apply` delete, under the repository's cleanup lease: exclusive, so no
    backup, staged step or copy writes while backups are being removed. A dry run takes no lease."""
    if not apply:
        return plan_cleanup(repo, policy, now)
    with acquire(repo, "cleanup", repo.url, lock):
        decisions = plan_cleanup(repo, policy, now)
        extend_locks(repo, decisions, now, progress)  # first: what stays is protected before anything goes
        apply_cleanup(repo, decisions, progress)
    return decisions
