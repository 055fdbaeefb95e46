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
Only for an S3 repository that is not encrypted: symlink lists hold s3:// URLs, and Athena
cannot decrypt. Brotli files are left out of the lists (Athena has no brotli reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from ..repository import Repository
from ..repository.manifest import Manifest
from .restore import resource_chain

FOLDER = "tables"
ROWS = "backup_resources"
UNREADABLE = ("brotli",)  # compressions Athena cannot read


def kept(repo: Repository) -> bool:
    """Whether the repository keeps table files: an unencrypted S3 repository."""
    return repo.location().is_s3 and not repo.encryption.enabled


def day(manifest_or_id) -> str:
    """The dt partition of a backup: the UTC day its id says it started (YYYY-MM-DD)."""
    backup_id = manifest_or_id if isinstance(manifest_or_id, str) else manifest_or_id.id
    return backup_id.split("-", 1)[1][:10]


def rows_name(backup_id: str) -> str:
    return f"{FOLDER}/{ROWS}/dt={day(backup_id)}/{backup_id}.json"


def list_name(kind: str, resource: str, backup_id: str) -> str:
    return f"{FOLDER}/{kind}/{resource}/dt={day(backup_id)}/{backup_id}.txt"


def table_root(repo: Repository, *parts: str) -> str:
    """s3://bucket/prefix/tables/PART/.../ (the LOCATION of a table)."""
    return repo.location().root + "/".join((FOLDER, *parts)) + "/"


def _lists(repo: Repository, manifest: Manifest) -> dict[str, bytes]:
    root = repo.location().root
    folder = repo.backup_dir(manifest.id).strip("/")
    out = {}
    for resource, entry in manifest.resources.items():
        files = [f.file for f in entry.data_files() if f.compression not in UNREADABLE]
        if files:
            out[list_name("jsonl", resource, manifest.id)] = "".join(f"{root}{folder}/{f}\n" for f in files).encode()
        if entry.parquet is not None:
            out[list_name("parquet", resource, manifest.id)] = f"{root}{folder}/{entry.parquet.file}\n".encode()
    return out


def _rows(repo: Repository, manifest: Manifest) -> bytes:
    lines = []
    for resource, entry in manifest.resources.items():
        chain = [m.id for m in reversed(resource_chain(repo, manifest, resource))]
        lines.append(orjson.dumps({
            "backup_id": manifest.id, "type": manifest.type, "parent": manifest.parent,
            "source": manifest.source_url, "started_at": manifest.started_at, "finished_at": manifest.finished_at,
            "resource": resource, "chain": chain, "since": day(chain[0]), "records": entry.records,
            "tombstones": entry.tombstones, "bytes": entry.data_bytes,
        }))
    return b"\n".join(lines) + b"\n"


def write_tables(repo: Repository, manifest: Manifest) -> None:
    """A committed backup's table files (the rows last: they are what makes the backup seen)."""
    if not kept(repo):
        return
    for name, data in _lists(repo, manifest).items():
        repo.replace_root(name, data)
    repo.replace_root(rows_name(manifest.id), _rows(repo, manifest))


def delete_tables(repo: Repository, manifest: Manifest | None, backup_id: str) -> None:
    """Before a backup is deleted: its rows first (the backup is no longer seen), then its lists.
    Without a manifest (a damaged backup) the lists are found by listing."""
    if not kept(repo):
        return
    repo.delete_root(rows_name(backup_id))
    if manifest is not None:
        names = [list_name(kind, r, backup_id) for r in manifest.resources for kind in ("jsonl", "parquet")]
    else:
        names = [n for n in repo.list_root(f"{FOLDER}/") if n.endswith(f"/{backup_id}.txt")]
    for name in names:
        repo.delete_root(name)


@dataclass
class TablesState:
    """How the table files stand against the committed backups."""

    missing: list[Manifest] = field(default_factory=list)  # committed, no rows (a crash right after
    # the commit, or made before table files existed): Athena does not see them
    stale: list[str] = field(default_factory=list)  # rows of backups no longer committed: Athena
    # would read files that are gone (a backup deleted by hand, not by retention)


def tables_state(repo: Repository, manifests: list[Manifest]) -> TablesState:
    if not kept(repo):
        return TablesState()
    rows = {n.rsplit("/", 1)[-1].removesuffix(".json"): n for n in repo.list_root(f"{FOLDER}/{ROWS}/")}
    committed = {m.id for m in manifests}
    return TablesState(missing=[m for m in manifests if m.id not in rows],
                       stale=sorted(bid for bid in rows if bid not in committed))


def mend_tables(repo: Repository, manifests: list[Manifest]) -> TablesState:
    """Write the missing table files and remove the stale ones; returns what was mended."""
    state = tables_state(repo, manifests)
    for m in state.missing:
        write_tables(repo, m)
    for bid in state.stale:
        delete_tables(repo, None, bid)
    return state
