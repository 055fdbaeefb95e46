"""Verify a backup: every file's sha256, byte count and line count against the manifest, each
line parses, the records pass the record checks (checks.py: ids unique and not null, no
tombstones in a snapshot, counts as recorded), and the chain of parents exists and is committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from ..errors import CheckFailed, IncompleteBackup, IntegrityError, NotFound
from ..repository import Repository
from ..repository.files import check_stored_bytes, plain_copy, read_lines, read_records
from ..repository.manifest import FileEntry, Manifest, ResourceEntry, is_index_file
from .checks import CheckOutcome, record_checks, scan_records
from .progress import Progress


def verify_file(repo: Repository, backup_id: str, expected: FileEntry) -> bool:
    """Check one file's stored bytes and, with the key (or unencrypted), its content: lines
    that parse and as many as recorded (rows, for a Parquet mirror). True when the content was
    checked too."""
    if not repo.encryption.can_read:
        check_stored_bytes(repo, backup_id, expected)  # sha256 still; the content needs the key
        return False
    if expected.compression == "parquet":
        return _verify_parquet(repo, backup_id, expected)
    if is_index_file(expected.file):
        for _n in read_lines(repo, backup_id, expected.file, expected.compression, expected):
            pass
    else:
        for _n in read_records(repo, backup_id, expected.file, expected.compression, expected):
            pass
    return True


def _verify_parquet(repo: Repository, backup_id: str, expected: FileEntry) -> bool:
    """The Parquet mirror: sha256 and bytes of the stored file, and its row count from the footer."""
    import pyarrow.parquet as pq  # ~0.3 s to import: only backups with a mirror pay it

    where = repo.describe(backup_id, expected.file)
    with plain_copy(repo, backup_id, expected.file, expected) as plain:
        try:
            rows = pq.ParquetFile(plain).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
            raise IntegrityError(f"{where}: not a readable Parquet file ({exc})") from None
    if rows != expected.lines:
        raise IntegrityError(f"{where}: {rows} rows, the manifest records {expected.lines}")
    return True


def check_resource_file(repo: Repository, backup_id: str, entry: ResourceEntry) -> list[CheckOutcome]:
    """Read a resource's backup file once (stored bytes, lines and records checked against the
    manifest entry) and run the record checks on it."""
    return record_checks(describe_files(repo, backup_id, entry), entry, scan_records(resource_records(repo, backup_id,
                                                                                                       entry)))


def resource_records(repo: Repository, backup_id: str, entry: ResourceEntry) -> Iterator[tuple[int, dict]]:
    """(line number, record) of a resource's data, each file checked against the manifest at its
    end; a sharded resource's parts in key order, numbered on from one part to the next."""
    offset = 0
    for data in entry.data_files():
        n = 0
        for n, record in read_records(repo, backup_id, data.file, data.compression, data):
            yield offset + n, record
        offset += n


def describe_files(repo: Repository, backup_id: str, entry: ResourceEntry) -> str:
    """Where a resource's data is, for messages: its file, or its parts' first file and count."""
    files = entry.data_files()
    where = repo.describe(backup_id, files[0].file)
    return where if len(files) == 1 else f"{where} (and its {len(files) - 1} other part(s))"


def verify_files(repo: Repository, manifest: Manifest, progress: Progress | None = None) -> int:
    """The files' integrity (what a backup checks before it commits)."""
    count = 0
    for _resource, expected in manifest.files():
        verify_file(repo, manifest.id, expected)
        count += 1
    return count


@dataclass
class VerifyReport:
    backup_id: str
    files: int = 0
    bytes: int = 0
    chain: list[str] = field(default_factory=list)
    content_checked: bool = True  # False: encrypted and verified without the key (sha256 only)
    checks: dict[str, list[CheckOutcome]] = field(default_factory=dict)  # per resource

    def as_json(self) -> dict:
        return {"id": self.backup_id, "ok": True, "files": self.files, "bytes": self.bytes, "chain": self.chain,
                "content_checked": self.content_checked,
                "checks": {r: {c.name: c.passed for c in cs} for r, cs in self.checks.items()}}


def committed_manifest(repo: Repository, backup_id: str) -> Manifest:
    manifest = repo.read_manifest(backup_id)
    if manifest is None:
        if backup_id in repo.backup_ids():
            raise IncompleteBackup(f"backup {backup_id} has no manifest: it is incomplete and is never restored "
                                   "nor verified")
        raise NotFound(f"backup {backup_id} not found in {repo.url}")
    return manifest


def verify_backup(repo: Repository, backup_id: str, progress: Progress | None = None) -> VerifyReport:
    manifest = committed_manifest(repo, backup_id)
    report = VerifyReport(backup_id)
    for bid in manifest.chain:
        m = manifest if bid == backup_id else repo.read_manifest(bid)
        if m is None:
            raise IntegrityError(f"backup {backup_id}: its chain needs {bid}, which is missing or incomplete in {repo.url}")
        report.chain.append(bid)
    report.content_checked = repo.encryption.can_read
    failed: list[str] = []
    for resource, expected in manifest.files():
        entry = manifest.resources[resource]
        data_files = entry.data_files()
        if report.content_checked and any(expected is f for f in data_files):
            if expected is data_files[0]:  # the record checks read every part of the resource at once
                outcomes = check_resource_file(repo, backup_id, entry)
                report.checks[resource] = outcomes
                failed += [o.detail for o in outcomes if not o.passed]
        else:
            verify_file(repo, backup_id, expected)
        report.files += 1
    if failed:
        raise CheckFailed(f"backup {backup_id} fails its record checks: " + "; ".join(failed))
    report.bytes = sum(e.bytes for _r, e in manifest.files())
    return report
