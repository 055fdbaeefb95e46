"""Synthetic full backups (Bacula's VirtualFull, Veeam's synthetic full): a new full backup built
in the repository from the newest committed chain of a source, reading nothing from the source.

Per resource of the newest backup N of the source:

- RESOURCE.jsonl.<ext>: the state at N (restore.state_lines: its chain replayed, the newest line
  of each key, tombstones left out, every file checked against its manifest as it is read). The
  lines are those the chain's backups wrote (decoded record + raw object), so they are what a real
  full taken when N listed would have written; only their order differs (a real full writes in
  listing order, here the newest backup's lines come first).
- RESOURCE.index.jsonl.gz: N's key index, line for line. An index already is the whole state of
  the live keys: a full indexes every object it lists, an incremental every object it lists too
  (unchanged entries carried over byte for byte, the others as fetched; keyindex.py), in listing
  order, which keeps the next incremental's diff cheap. So the next incremental diffs against
  exactly what it would diff against chained to N.
- listed_at: N's, not the time of the synthetic full. The next incremental re-fetches an object
  whose change token matches the index but whose LastModified is not CHANGE_SAFETY older than
  the parent's listed_at (S3 gives LastModified to the second): an object rewritten in the same
  second N listed it, with the same size and ETag, would otherwise pass as unchanged. The index
  describes the source as N listed it, so the cutoff must be N's; a later time would widen the
  blind window to everything written between N's listing and the synthetic full.

The manifest says type "full" (restore, verify, retention and incrementals treat it as any full:
chain = [itself], no parent), `syntheticFrom` = N's id; database (s3db.json) and sequences are
N's. Nothing is fetched: `fetched` is 0 for every resource. The synthetic full holds the
repository's backup lease for the source, as a backup of it does.

Where it may differ from a real full taken at the same moment: the order of the lines (see above),
and a record an incremental of the chain could not read (--skip-corrupt: neither written nor
indexed), whose previous version stays in the state at N (a restore of N writes it) and so in the
synthetic full, while a real full skips it again. Its started_at is when it ran, so retention counts
it in that period, and `restore --at` picks it from its finished_at on: it restores N's state.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from itertools import islice

import orjson

from ..compression import check_compression, file_name
from ..errors import IntegrityError, NotFound, UsageError
from ..repository import Repository
from ..repository.files import FileWriter
from ..repository.lock import LockOptions, acquire
from ..repository.manifest import (INDEX_COMPRESSION, IndexFile, Manifest, ResourceEntry, Totals, index_name,
                                   part_tag)
from ..store.filesystem import iso_ms
from .backup import BackupRequest, add_parquet_mirror, commit_backup, new_backup_id, now_utc, record_failure
from .catalog import complete_manifests
from .keyindex import read_index
from .lines import RAW_KEY
from .progress import Progress
from .restore import state_lines
from .verify import committed_manifest

BATCH = 2048  # lines written (and progress advanced) at once

# Options of a backup that read the source: a synthetic full has no use for them.
_SOURCE_OPTIONS = (("resources", "--resource"), ("exclude", "--exclude"), ("decrypt_secrets", "--decrypt-secrets"),
                   ("skip_corrupt", "--skip-corrupt"), ("full_if_no_parent", "--full-if-no-parent"),
                   ("skip_if_unchanged", "--skip-if-unchanged"))


def run_synthetic_full(repo: Repository, source: str, request: BackupRequest, progress: Progress | None = None,
                       lock: LockOptions | None = None) -> Manifest:
    """A synthetic full of `source` (its url as manifests record it) from its newest committed
    backup, under the repository's backup lease for that source (so no backup of it commits
    meanwhile). Raises NotFound when the repository holds no committed backup of the source."""
    refused = [flag for attr, flag in _SOURCE_OPTIONS if getattr(request, attr)]
    if refused:
        raise UsageError(f"a synthetic full reads nothing from the source and takes every resource of the newest "
                         f"backup: {', '.join(refused)} do(es) not apply")
    check_compression(request.compression)
    with acquire(repo, "backup", source, lock):
        manifests = complete_manifests(repo, source)
        if not manifests:
            raise NotFound(f"no committed backup of {source} in {repo.url} to build a synthetic full from; "
                           "run a full backup first")
        return SyntheticFull(repo, manifests[-1], request, progress).run()


class SyntheticFull:
    def __init__(self, repo: Repository, newest: Manifest, request: BackupRequest, progress: Progress | None = None):
        self.repo, self.newest, self.req = repo, newest, request
        self.progress = progress or Progress()

    def run(self) -> Manifest:
        started = now_utc()
        backup_id = self.req.backup_id or new_backup_id("synth", started)
        try:
            chain = [committed_manifest(self.repo, bid) for bid in self.newest.chain]  # all there, before writing
            entries = {name: self.resource(backup_id, name) for name in self.newest.resources}
            manifest = self.build_manifest(backup_id, started, entries, chain)
            return commit_backup(self.repo, manifest, self.req.verify, self.progress)
        except BaseException as exc:
            record_failure(self.repo, backup_id, exc)
            raise

    def build_manifest(self, backup_id: str, started, entries: dict[str, ResourceEntry],
                       chain: list[Manifest]) -> Manifest:
        n = self.newest
        return Manifest(
            id=backup_id, type="full", started_at=iso_ms(started), database=n.database, resources=entries,
            parent=None, chain=[backup_id], selective=n.selective, selection=n.selection, source_url=n.source_url,
            compression=self.req.compression,
            # the decoded view is the chain's: secrets are decrypted in it only if every backup did
            secrets_decrypted=all(m.secrets_decrypted for m in chain),
            sequences={name: objs for name, objs in n.sequences.items() if name in entries},
            encryption=self.repo.encryption.config if self.repo.encryption.enabled else None,
            totals=Totals(records=sum(e.records for e in entries.values()), tombstones=0,
                          bytes=sum(e.stored_bytes for e in entries.values())),
            synthetic_from=n.id,
        )

    def resource(self, backup_id: str, name: str) -> ResourceEntry:
        """The state at the newest backup of one resource; a sharded one in the same key-range
        parts (its ranges kept, so the next incremental diffs part by part)."""
        t0 = time.perf_counter()
        source = self.newest.resources[name]
        if source.index_entries is None:
            raise IntegrityError(f"backup {self.newest.id}: resource {name!r} has no key index (written by an older "
                                 "version), so no synthetic full can stand in for a full of it; take a full backup")
        compression = self.req.compression
        pieces = source.pieces()
        data, index = [], []
        for piece in pieces:
            part = piece.key_range.part if piece.key_range else None
            stem = name if part is None else f"{name}.{part_tag(part)}"
            data.append(FileWriter(self.repo, backup_id, file_name(stem, compression), compression))
            index.append(FileWriter(self.repo, backup_id, index_name(name, part), INDEX_COMPRESSION))
        self.progress.start(name, source.index_entries)
        ok = False
        try:
            records = self._write_state(name, data, [p.key_range.upto for p in pieces[:-1]])
            for piece, writer in zip(pieces, index):
                for batch in _batches(line for _k, _t, _d, line in read_index(self.repo, self.newest.id, piece.index,
                                                                               check=True)):
                    writer.write_lines(batch)
            ok = True
        finally:
            if not ok:
                for writer in data + index:
                    writer.abort()
        self.progress.finish(name)
        entries = []
        for piece, n, data_writer, index_writer in zip(pieces, records, data, index):
            data_file, index_file = data_writer.close(), index_writer.close()
            entries.append(ResourceEntry(
                data=data_file, index=IndexFile(**index_file.__dict__, entries=index_file.lines), records=n,
                tombstones=0, snapshot=True, unchanged=0, fetched=0, listed_at=piece.listed_at,
                seconds=time.perf_counter() - t0, key_range=piece.key_range))
        entry = ResourceEntry.joined(entries, source.shard_records) if source.sharded else entries[0]
        if self.req.parquet:
            add_parquet_mirror(self.repo, backup_id, name, entry, self.newest.database)
        return entry

    def _write_state(self, name: str, data: list[FileWriter], uppers: list[str]) -> list[int]:
        """The state's lines, each into the part whose range holds its key (`uppers`: the parts'
        last keys but the last's); lines written per part in batches."""
        records = [0] * len(data)
        pending: list[list[bytes]] = [[] for _ in data]
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        for line in state_lines(self.repo, self.newest, name):
            part = bisect_left(uppers, line[RAW_KEY]["key"]) if uppers else 0
            pending[part].append(dumps(line, option=option))
            if len(pending[part]) >= BATCH:
                self._flush(name, data[part], pending[part])
                records[part] += BATCH
                pending[part] = []
        for part, lines in enumerate(pending):
            self._flush(name, data[part], lines)
            records[part] += len(lines)
        return records

    def _flush(self, name: str, writer: FileWriter, lines: list[bytes]) -> None:
        if lines:
            writer.write_lines(lines)
            self.progress.advance(name, len(lines))


def _batches(lines):
    lines = iter(lines)
    while batch := list(islice(lines, BATCH)):
        yield batch
