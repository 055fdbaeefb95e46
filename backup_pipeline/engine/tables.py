"""Table files: what Athena reads to find committed backups with no DDL change after each backup.

Athena's partition projection computes a table's partition locations from a template (here the
day a backup started, `dt=YYYY-MM-DD`), so it needs, per resource, a folder per day holding that
resource's files only. A backup's folder holds every resource's files and its manifest, so the
folders Athena reads are made of small files at the repository root instead, under `tables/`:

- `tables/jsonl/RESOURCE/dt=DAY/BACKUP_ID.txt` (and `tables/parquet/...` for the Parquet mirror):
  a symlink list (Hive's SymlinkTextInputFormat): the s3:// URL of each of the resource's data
  files in that backup (its parts in key order when sharded), one per line;
- `tables/backup_resources/dt=DAY/BACKUP_ID.json`: one JSON line per resource the backup holds,
  with the backup's fields and the resource's chain (the backups whose lines a restore of this
  backup reads for it, oldest first), which is what the state views need.

They are written once the manifest is committed, so Athena never reads a backup still being
written, and removed before a backup is deleted. A crash between the commit and these writes
leaves a complete backup that Athena does not see yet: `athena-ddl` writes what is missing (and
removes the files of backups no longer committed); `check` reports both.
Only in S3 copies of a repository that is not encrypted: symlink lists hold s3:// URLs, and
Athena cannot decrypt. Each S3 destination of a multi repository gets its own, naming its own
files, and only for the backups it holds. Brotli files are left out of the lists (Athena has no
brotli reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import orjson

from ..repository import Repository
from ..repository.manifest import Manifest
from .restore import resource_chain

FOLDER = "tables"
ROWS = "backup_resources"
UNREADABLE = ("brotli",)  # compressions Athena cannot read


def athena_copy(repo: Repository) -> Repository | None:
    """The copy Athena's DDL reads: the first S3 copy of an unencrypted repository (None: the
    repository keeps no table files)."""
    copies = _copies(repo)
    return copies[0] if copies else None


def _copies(repo: Repository) -> list[Repository]:
    """The S3 copies that get table files naming their own files (each destination of a multi
    repository holds its own), none when the repository is encrypted."""
    if repo.encryption.enabled:
        return []
    return [d for d in repo.destinations() if d.location().is_s3]


def day(manifest: Manifest) -> str:
    """The dt partition of a backup: the UTC day it started (YYYY-MM-DD), from its manifest, not
    its id (an id given with --backup-id need not carry a date)."""
    return manifest.started_at[:10]


def rows_name(manifest: Manifest) -> str:
    return f"{FOLDER}/{ROWS}/dt={day(manifest)}/{manifest.id}.json"


def list_name(kind: str, resource: str, manifest: Manifest) -> str:
    return f"{FOLDER}/{kind}/{resource}/dt={day(manifest)}/{manifest.id}.txt"


def table_root(repo: Repository, *parts: str) -> str:
    """s3://bucket/prefix/tables/PART/.../ (the LOCATION of a table)."""
    return repo.location().root + "/".join((FOLDER, *parts)) + "/"


def _lists(copy: Repository, manifest: Manifest) -> dict[str, bytes]:
    root = copy.location().root
    folder = copy.backup_dir(manifest.id).strip("/")
    out = {}
    for resource, entry in manifest.resources.items():
        files = [f.file for f in entry.data_files() if f.compression not in UNREADABLE]
        if files:
            out[list_name("jsonl", resource, manifest)] = "".join(f"{root}{folder}/{f}\n" for f in files).encode()
        if entry.parquet is not None:
            out[list_name("parquet", resource, manifest)] = f"{root}{folder}/{entry.parquet.file}\n".encode()
    return out


def _rows(repo: Repository, manifest: Manifest) -> bytes:
    read: dict[str, Manifest] = {}  # the chain's manifests, read once for all resources
    lines = []
    for resource, entry in manifest.resources.items():
        chain = list(reversed(resource_chain(repo, manifest, resource, read)))
        lines.append(orjson.dumps({
            "backup_id": manifest.id, "type": manifest.type, "parent": manifest.parent,
            "source": manifest.source_url, "started_at": manifest.started_at, "finished_at": manifest.finished_at,
            "resource": resource, "chain": [m.id for m in chain], "since": day(chain[0]), "records": entry.records,
            "tombstones": entry.tombstones, "bytes": entry.data_bytes,
        }))
    return b"\n".join(lines) + b"\n"


def write_tables(repo: Repository, manifest: Manifest) -> None:
    """A committed backup's table files, in each S3 copy that holds it."""
    copies = _copies(repo)
    rows = _rows(repo, manifest) if copies else b""
    for copy in copies:
        if len(copies) > 1 and copy.read_manifest(manifest.id) is None:
            continue  # a destination that failed this backup (strategy any or priority)
        _write(copy, manifest, rows)


def delete_tables(repo: Repository, manifest: Manifest | None, backup_id: str) -> None:
    """Before a backup is deleted: its table files in each S3 copy."""
    for copy in _copies(repo):
        _delete(copy, manifest, backup_id)


def _write(copy: Repository, manifest: Manifest, rows: bytes) -> None:
    for name, data in _lists(copy, manifest).items():
        copy.replace_root(name, data)
    copy.replace_root(rows_name(manifest), rows)  # last: the rows are what makes the backup seen


def _delete(copy: Repository, manifest: Manifest | None, backup_id: str) -> None:
    if manifest is not None:
        names = [rows_name(manifest)] + [list_name(kind, r, manifest) for r in manifest.resources
                                         for kind in ("jsonl", "parquet")]
    else:  # a damaged or already deleted backup: its files are found by listing
        names = sorted((n for n in copy.list_root(f"{FOLDER}/") if n.rsplit("/", 1)[-1].rsplit(".", 1)[0] == backup_id),
                       key=lambda n: not n.startswith(f"{FOLDER}/{ROWS}/"))
    for name in names:  # the rows first: the backup is no longer seen
        copy.delete_root(name)


@dataclass
class TablesState:
    """How the table files stand against the committed backups (ids, over every S3 copy)."""

    missing: list[str] = field(default_factory=list)  # committed, no rows (a crash right after
    # the commit, or made before table files existed): Athena does not see them
    stale: list[str] = field(default_factory=list)  # rows of backups no longer committed: Athena
    # would read files that are gone (a backup deleted by hand, not by retention)


def _compare(repo: Repository, manifests: list[Manifest]) -> Iterator[tuple[Repository, list[str], list[str]]]:
    """Per S3 copy: (copy, committed ids without rows, ids with rows not committed). A single
    repository's committed backups are `manifests`; each copy of a multi repository is compared
    with the backups it holds itself."""
    copies = _copies(repo)
    for copy in copies:
        if len(copies) == 1:
            committed = {m.id for m in manifests}
        else:
            committed = {bid for bid in copy.backup_ids() if copy.read_manifest(bid) is not None}
        rows = {n.rsplit("/", 1)[-1].removesuffix(".json") for n in copy.list_root(f"{FOLDER}/{ROWS}/")}
        yield copy, sorted(committed - rows), sorted(rows - committed)


def tables_state(repo: Repository, manifests: list[Manifest]) -> TablesState:
    state = TablesState()
    for _copy, missing, stale in _compare(repo, manifests):
        state.missing += [i for i in missing if i not in state.missing]
        state.stale += [i for i in stale if i not in state.stale]
    return state


def mend_tables(repo: Repository, manifests: list[Manifest]) -> TablesState:
    """Write the missing table files and remove the stale ones, copy by copy; returns what was mended."""
    state = TablesState()
    by_id = {m.id: m for m in manifests}
    for copy, missing, stale in list(_compare(repo, manifests)):
        for bid in missing:
            manifest = by_id.get(bid) or copy.read_manifest(bid)
            _write(copy, manifest, _rows(repo, manifest))
        for bid in stale:
            _delete(copy, None, bid)
        state.missing += [i for i in missing if i not in state.missing]
        state.stale += [i for i in stale if i not in state.stale]
    return state
