"""The backup-file pipeline, the one place it is assembled (restic's SaveUnpacked/LoadUnpacked).

Writing:  lines -> compression -> the repository's encryption -> sha256 and size of the stored
          bytes -> the repository file (visible only once complete).
Reading:  the repository file -> sha256 and size of the stored bytes -> decryption ->
          decompression -> lines; at the end of the file, what was read is checked against what
          the manifest recorded (bytes, sha256, lines), naming the file.

Used by backups, the Parquet mirror, restore, verify, the key index and the Dagster checks.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

import orjson

from ..compression import iter_lines, open_writer
from ..errors import BackupPipelineError, IntegrityError
from .manifest import FileEntry


def file_context(backup_id: str, name: str) -> bytes:
    """What an encrypted file is bound to: it decrypts only as this file of this backup."""
    return f"{backup_id}/{name}".encode()


class HashingWriter(io.RawIOBase):
    """Counts and hashes the bytes that reach the file (the stored bytes)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.sha256, self.bytes = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.raw.write(data)


class HashingReader(io.RawIOBase):
    """Counts and hashes the bytes read from the file (the stored bytes)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.sha256, self.bytes = raw, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):  # trailing bytes after a compressed stream count too
            pass


class FileWriter:
    """A backup file being written; `close()` returns what the manifest records of it (FileEntry),
    `abort()` leaves nothing."""

    def __init__(self, repo, backup_id: str, name: str, compression: str):
        self.stats = FileEntry(name, compression, 0, 0, "")
        self._cm = repo.create_file(backup_id, name)
        self._hashing = HashingWriter(self._cm.__enter__())
        self._sealed = repo.encryption.seal(self._hashing, file_context(backup_id, name))
        # `stream` takes bytes already in their final format (compression "none" or "parquet")
        self.stream = open_writer(self._sealed, compression) if compression not in ("parquet",) else self._sealed

    def write(self, line: bytes) -> None:
        self.stream.write(line)
        self.stats.lines += 1

    def write_lines(self, lines: list[bytes]) -> None:
        self.stream.write(b"".join(lines))
        self.stats.lines += len(lines)

    def write_block(self, block: bytes, lines: int) -> None:
        """`lines` whole lines already joined (a worker's batch)."""
        self.stream.write(block)
        self.stats.lines += lines

    def close(self) -> FileEntry:
        try:
            if self.stream is not self._sealed:
                self.stream.close()  # finishes the compressed stream, leaves the encryption layer open
            if self._sealed is not self._hashing:
                self._sealed.close()  # writes the final authenticated chunk
        except BaseException:
            self.abort()  # a file that could not be finished (a full disk) is not left behind
            raise
        self.stats.bytes, self.stats.sha256 = self._hashing.bytes, self._hashing.sha256.hexdigest()
        self._cm.__exit__(None, None, None)
        return self.stats

    def abort(self) -> None:
        self._cm.__exit__(BackupPipelineError, BackupPipelineError("aborted"), None)


def write_json(repo, backup_id: str, name: str, data) -> None:
    """A small JSON file of a backup (plan, stage, failure; anything with dump()): stored as is,
    never encrypted."""
    with repo.create_file(backup_id, name) as f:
        f.write(orjson.dumps(data.dump() if hasattr(data, "dump") else data, option=orjson.OPT_INDENT_2))


def read_json(repo, backup_id: str, name: str):
    with repo.open_file(backup_id, name) as f:
        data = f.read()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IntegrityError(f"{repo.describe(backup_id, name)}: not valid JSON ({exc})") from None


def _check_stored(where: str, reader: HashingReader, expected: FileEntry) -> None:
    if reader.sha256.hexdigest() != expected.sha256 or reader.bytes != expected.bytes:
        raise IntegrityError(
            f"{where}: sha256 {reader.sha256.hexdigest()[:16]}… ({reader.bytes} bytes) does not match the manifest's "
            f"{expected.sha256[:16]}… ({expected.bytes} bytes); the file was changed after the backup"
        )


def read_lines(repo, backup_id: str, name: str, compression: str,
               expected: FileEntry | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a backup file. With `expected` (what the manifest records of the
    file), what was read is checked against it at the end of the file: bytes, sha256, lines."""
    where = repo.describe(backup_id, name)
    n = 0
    with repo.open_file(backup_id, name) as raw:
        reader = HashingReader(raw)
        try:
            plain = repo.encryption.unseal(reader, where, file_context(backup_id, name))
            for n, line in enumerate(iter_lines(plain, compression), 1):
                yield n, line
        except BackupPipelineError:
            raise
        except Exception as exc:  # noqa: BLE001 - each decompressor has its own error classes
            raise IntegrityError(f"{where}: cannot be read past line {n} ({type(exc).__name__}: {exc}); the file is "
                                 "truncated or corrupt") from None
        if expected is not None:
            reader.drain()
            _check_stored(where, reader, expected)
            if n != expected.lines:
                raise IntegrityError(f"{where}: {n} lines, the manifest records {expected.lines}")


def read_records(repo, backup_id: str, name: str, compression: str,
                 expected: FileEntry | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, parsed JSON) of a backup file; a line that is not JSON is named."""
    where = repo.describe(backup_id, name)
    for n, line in read_lines(repo, backup_id, name, compression, expected):
        try:
            yield n, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise IntegrityError(f"{where}: line {n} is not valid JSON ({exc})") from None


def check_stored_bytes(repo, backup_id: str, expected: FileEntry) -> None:
    """sha256 and size of the stored bytes only (what can be checked without the key)."""
    with repo.open_file(backup_id, expected.file) as raw:
        reader = HashingReader(raw)
        reader.drain()
    _check_stored(repo.describe(backup_id, expected.file), reader, expected)


@contextmanager
def plain_copy(repo, backup_id: str, name: str, expected: FileEntry | None = None) -> Iterator[BinaryIO]:
    """A seekable temporary file holding a backup file's plain bytes (decrypted when the
    repository is encrypted), checked against `expected`: for formats read from their end
    (Parquet). Never held in memory."""
    where = repo.describe(backup_id, name)
    with tempfile.TemporaryFile() as stored:
        with repo.open_file(backup_id, name) as raw:
            reader = HashingReader(raw)
            shutil.copyfileobj(reader, stored, 1 << 20)
        if expected is not None:
            _check_stored(where, reader, expected)
        stored.seek(0)
        if not repo.encryption.enabled:
            yield stored
            return
        with tempfile.TemporaryFile() as plain:
            shutil.copyfileobj(repo.encryption.unseal(stored, where, file_context(backup_id, name)), plain, 1 << 20)
            plain.seek(0)
            yield plain
