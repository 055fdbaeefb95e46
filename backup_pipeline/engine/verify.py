"""Verify a backup: every file's sha256, byte count and line count against the manifest, each
line parses, and the chain of parents exists and is committed."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import orjson

from .. import codecs
from ..errors import IntegrityError, NotFound
from ..repository import Repository
from ..repository.encrypted import can_read_content, unseal
from .progress import Progress


class _HashingReader:
    def __init__(self, raw: BinaryIO):
        self.raw, self.sha256, self.bytes = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _files_of(manifest: dict) -> Iterator[tuple[str, dict]]:
    for resource, entry in manifest.get("resources", {}).items():
        yield resource, {k: entry[k] for k in ("file", "compression", "lines", "bytes", "sha256")}
        if entry.get("index"):
            yield resource, entry["index"]
        if entry.get("parquet"):
            yield resource, {**entry["parquet"], "compression": "parquet"}


def verify_file(repo: Repository, backup_id: str, expected: dict) -> bool:
    """Check one file; True when its content was checked too (False: encrypted, no key)."""
    where = repo.describe(backup_id, expected["file"])
    if expected["compression"] == "parquet":
        return _verify_parquet(repo, backup_id, expected, where)
    lines = 0
    with repo.open_file(backup_id, expected["file"]) as raw:
        reader = _HashingReader(raw)
        if not can_read_content(repo):
            # encrypted and no key: the stored bytes' sha256 is still checked, the content is not
            while reader.read(1 << 20):
                pass
            _check_digest(where, reader, expected)
            return False
        try:
            for lines, line in enumerate(codecs.iter_lines(unseal(repo, reader, where), expected["compression"]), 1):
                try:
                    orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise IntegrityError(f"{where}: line {lines} is not valid JSON ({exc})") from None
        except (EOFError, OSError, ValueError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise IntegrityError(
                f"{where}: cannot be read past line {lines} ({exc}); the file is truncated or corrupt"
            ) from None
        while reader.read(1 << 20):  # trailing bytes after the compressed stream count too
            pass
    _check_digest(where, reader, expected)
    if lines != expected["lines"]:
        raise IntegrityError(f"{where}: {lines} lines, the manifest records {expected['lines']}")
    return True


def _verify_parquet(repo: Repository, backup_id: str, expected: dict, where: str) -> bool:
    """The Parquet mirror: sha256 and bytes of the stored file, and its row count from the footer.
    Parquet is read from its end, so the file goes through a temporary file, never memory."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryFile() as stored:
        with repo.open_file(backup_id, expected["file"]) as raw:
            reader = _HashingReader(raw)
            shutil.copyfileobj(reader, stored, 1 << 20)
        _check_digest(where, reader, expected)
        if not can_read_content(repo):
            return False
        stored.seek(0)
        with tempfile.TemporaryFile() as decrypted:
            plain = unseal(repo, stored, where)
            if plain is not stored:  # an encrypted repository: decrypt into a second file
                shutil.copyfileobj(plain, decrypted, 1 << 20)
                plain = decrypted
            plain.seek(0)
            try:
                rows = pq.ParquetFile(plain).metadata.num_rows
            except Exception as exc:  # noqa: BLE001
                raise IntegrityError(f"{where}: not a readable Parquet file ({exc})") from None
    if rows != expected["rows"]:
        raise IntegrityError(f"{where}: {rows} rows, the manifest records {expected['rows']}")
    return True


def _check_digest(where: str, reader: _HashingReader, expected: dict) -> None:
    if reader.sha256.hexdigest() != expected["sha256"] or reader.bytes != expected["bytes"]:
        raise IntegrityError(
            f"{where}: sha256 {reader.sha256.hexdigest()[:16]}… ({reader.bytes} bytes) does not match the manifest's "
            f"{expected['sha256'][:16]}… ({expected['bytes']} bytes); the file was changed after the backup"
        )


def verify_files(repo: Repository, backup_id: str, manifest: dict, progress: Progress | None = None) -> int:
    progress = progress or Progress()
    count = 0
    for _resource, expected in _files_of(manifest):
        verify_file(repo, backup_id, expected)
        count += 1
    return count


@dataclass
class VerifyReport:
    backup_id: str
    files: int = 0
    bytes: int = 0
    chain: list[str] = field(default_factory=list)
    content_checked: bool = True  # False: encrypted and verified without the key (sha256 only)

    def as_json(self) -> dict:
        return {"id": self.backup_id, "ok": True, "files": self.files, "bytes": self.bytes, "chain": self.chain,
                "contentChecked": self.content_checked}


def verify_backup(repo: Repository, backup_id: str, progress: Progress | None = None) -> VerifyReport:
    manifest = repo.read_manifest(backup_id)
    if manifest is None:
        if backup_id in repo.backup_ids():
            raise IntegrityError(f"backup {backup_id} has no manifest: it is incomplete and cannot be verified or restored")
        raise NotFound(f"backup {backup_id} not found in {repo.url}")
    report = VerifyReport(backup_id)
    for bid in manifest.get("chain", [backup_id]):
        m = manifest if bid == backup_id else repo.read_manifest(bid)
        if m is None:
            raise IntegrityError(f"backup {backup_id}: its chain needs {bid}, which is missing or incomplete in {repo.url}")
        report.chain.append(bid)
    report.files = verify_files(repo, backup_id, manifest, progress)
    report.content_checked = can_read_content(repo)
    report.bytes = sum(e["bytes"] for _r, e in _files_of(manifest))
    return report
