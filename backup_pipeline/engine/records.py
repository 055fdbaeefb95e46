"""Records of backups, as restic shows files of snapshots: `ls` (the records of the state at a
backup), `diff` (added, changed, removed between two states), `find` (a record across backups),
`dump` (one record) and the check before `restore --id` (one record back).

The state at a backup is what its restore would write: the chain replayed (restore.chain_lines).
Where only ids and contents matter (diff, find), it is read from the backup's key index instead:
one [key, change token, content hash] line per live object, a smaller file than the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from ..errors import NotFound, UsageError
from ..format.keys import id_from_key
from ..repository import Repository
from ..repository.manifest import Manifest
from .catalog import complete_manifests
from .keyindex import resource_index
from .lines import RAW_KEY, content_hash, raw_from_json, record_fields
from .restore import chain_lines


def _require(manifest: Manifest, resources: list[str]) -> None:
    missing = [r for r in resources if r not in manifest.resources]
    if missing:
        raise NotFound(f"backup {manifest.id} does not hold resource(s) {', '.join(missing)}; "
                       f"it holds {', '.join(manifest.resources)}")


def state_digests(repo: Repository, manifest: Manifest, resource: str) -> Iterator[tuple[str, str]]:
    """(id, content hash) of every record of the resource at this backup, from its key index
    (checked against the manifest at its end); a backup without one replays its chain."""
    entry = manifest.resources[resource]
    if entry.index_entries is None:
        for _m, _n, line in chain_lines(repo, manifest, resource):
            if not line[RAW_KEY].get("deleted"):
                yield line.get("id"), content_hash(raw_from_json(line[RAW_KEY]))
        return
    for key, _token, digest, _line in resource_index(repo, manifest.id, entry, check=True):
        yield id_from_key(key), digest


# -- ls ------------------------------------------------------------------------------------------
@dataclass
class RecordEntry:
    resource: str
    id: str
    size: int  # bytes of the object's body (the record's fields beyond metadata)
    hash: str  # content hash: metadata, content type and body (what diff compares)

    def as_json(self) -> dict:
        return dict(self.__dict__)


def list_records(repo: Repository, manifest: Manifest, resources: list[str] | None = None) -> Iterator[RecordEntry]:
    """The records of the state at a backup, per resource in id order."""
    names = resources or list(manifest.resources)
    _require(manifest, names)
    for name in names:
        entries = []
        for _m, _n, line in chain_lines(repo, manifest, name):
            raw = line[RAW_KEY]
            if not raw.get("deleted"):
                obj = raw_from_json(raw)
                entries.append(RecordEntry(name, line.get("id"), len(obj.body), content_hash(obj)))
        yield from sorted(entries, key=lambda e: e.id)


# -- diff ----------------------------------------------------------------------------------------
@dataclass
class ResourceDiff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # content differs
    removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return dict(self.__dict__)


def diff_states(repo: Repository, old: Manifest, new: Manifest,
                resources: list[str] | None = None) -> dict[str, ResourceDiff]:
    """Per resource, the records added, changed and removed from the state at `old` to the state
    at `new`. Memory: the old state's id -> content hash map. A resource one backup does not
    hold (a new one, or left out of a selective backup) counts as empty there."""
    names = resources or sorted(set(old.resources) | set(new.resources))
    unknown = [r for r in names if r not in old.resources and r not in new.resources]
    if unknown:
        raise NotFound(f"neither backup {old.id} nor {new.id} holds resource(s) {', '.join(unknown)}")
    out = {}
    for name in names:
        before = dict(state_digests(repo, old, name)) if name in old.resources else {}
        d = out[name] = ResourceDiff()
        for rid, digest in state_digests(repo, new, name) if name in new.resources else ():
            was = before.pop(rid, None)
            if was is None:
                d.added.append(rid)
            elif was != digest:
                d.changed.append(rid)
        d.added.sort()
        d.changed.sort()
        d.removed = sorted(before)
    return out


# -- find ----------------------------------------------------------------------------------------
@dataclass
class Sighting:
    backup_id: str
    started_at: str
    resource: str
    status: str  # added | changed | unchanged | deleted, against the previous backup of the same source
    hash: str | None  # None: deleted

    def as_json(self) -> dict:
        return dict(self.__dict__)


def find_record(repo: Repository, record_id: str, resources: list[str] | None = None) -> list[Sighting]:
    """Every committed backup holding the record (or the first one after it was deleted), in
    time order, with how it changed since the previous backup of the same source."""
    if not repo.exists():
        raise NotFound(f"repository {repo.url} does not exist")
    previous: dict[tuple[str | None, str], str | None] = {}  # (source, resource) -> hash at the previous backup
    out = []
    for m in complete_manifests(repo):
        for name in resources or list(m.resources):
            if name not in m.resources:
                continue
            digest = None
            for rid, d in state_digests(repo, m, name):  # read to the end: the index is checked there
                if rid == record_id:
                    digest = d
            was = previous.get((m.source_url, name))
            previous[(m.source_url, name)] = digest
            if digest is None and was is None:
                continue
            status = ("deleted" if digest is None else "added" if was is None
                      else "unchanged" if digest == was else "changed")
            out.append(Sighting(m.id, m.started_at, name, status, digest))
    if not out:
        where = f"resource(s) {', '.join(resources)} of " if resources else ""
        raise NotFound(f"record {record_id!r} is in no committed backup of {where}{repo.url}")
    return out


# -- dump and restore --id -----------------------------------------------------------------------
def dump_record(repo: Repository, manifest: Manifest, resource: str, record_id: str) -> dict:
    """The decoded record as the backup line holds it (without the raw object), at this backup."""
    _require(manifest, [resource])
    found = None
    for m, _n, line in chain_lines(repo, manifest, resource):
        if found is not None and m is not found[0]:
            break  # the file holding it was read to its end, so checked against its manifest
        if found is None and line.get("id") == record_id:
            found = (m, line)
    if found is None or found[1][RAW_KEY].get("deleted"):
        why = f" (deleted in backup {found[0].id})" if found else ""
        raise NotFound(f"record {record_id!r} of resource {resource!r} is not in backup {manifest.id}{why}")
    return record_fields(found[1])


def require_records(repo: Repository, manifest: Manifest, resources: list[str] | None, ids: list[str]) -> str:
    """restore --id: the one resource named, holding every id at this backup (else NotFound,
    before a target is touched). Returns the resource."""
    if not resources or len(resources) != 1:
        raise UsageError("restoring single records needs exactly one resource (--resource R): ids are per resource")
    resource = resources[0]
    _require(manifest, [resource])
    wanted = set(ids)
    held = {rid for rid, _digest in state_digests(repo, manifest, resource) if rid in wanted}
    missing = sorted(wanted - held)
    if missing:
        raise NotFound(f"backup {manifest.id} holds no record {', '.join(map(repr, missing))} of resource "
                       f"{resource!r}; nothing was written")
    return resource
