"""Every error the project raises, each with the exit code the CLI returns (borg's pattern).

Every message names what is wrong and where (file, key, resource, record, field) and, where
there is one, what to do about it. Exit codes (README "Exit codes"):

    1 other   2 usage   3 not found   4 integrity   5 conflict   6 destinations failed   7 lock held

Storage clients (obstore, botocore) raise their own exceptions: `storage_error` turns one into
a StorageError where the store or repository calls the client, so nothing above sees them.
"""

from __future__ import annotations

import errno
import functools
import io
from collections.abc import Iterator


class BackupPipelineError(Exception):
    """Base class: anything the CLI reports as a clean error instead of a traceback."""

    exit_code = 1


# -- 1: other ---------------------------------------------------------------------------
class StorageError(BackupPipelineError):
    """An S3 or network failure that retries did not cure: credentials, permissions, endpoint."""


class DiskFull(BackupPipelineError):
    """No space left (ENOSPC) or quota exceeded (EDQUOT) while writing a file; names the path."""


# -- 2: usage ---------------------------------------------------------------------------
class UsageError(BackupPipelineError):
    """Bad arguments or an unparsable connection string."""

    exit_code = 2


class ConnectionStringError(UsageError):
    """A connection string that cannot be parsed; the message says which part."""


class InvalidResourceName(UsageError):
    """A resource name that could escape its folder (`/`, `..`, empty)."""


class WrongKey(UsageError):
    """The passphrase / raw key does not match the repository (or the file's header)."""


class KeyArgumentError(UsageError):
    """Bad key arguments: no or both of passphrase/raw_key, wrong raw key length, bad chunk size."""


class MetadataLossRefused(UsageError):
    """A restore target that drops empty metadata values would lose fields of the backup; names
    them, and the flag that accepts the loss."""


class EncryptionKeyNeeded(UsageError):
    """An encrypted repository's content was asked for without its passphrase or key."""


# -- 3: not found -----------------------------------------------------------------------
class NotFound(BackupPipelineError):
    """A database, resource, object or backup that does not exist."""

    exit_code = 3


class DatabaseNotFound(NotFound):
    """A source or target without `s3db.json`: not an s3db.js database (or the wrong prefix)."""


# -- 4: integrity -----------------------------------------------------------------------
class IntegrityError(BackupPipelineError):
    """Stored data that is corrupt, truncated or does not match what was recorded."""

    exit_code = 4


class MetadataFileError(IntegrityError):
    """`s3db.json` missing or unparsable."""


class CorruptObject(IntegrityError):
    """A stored object that cannot be read (bad sidecar, missing sidecar, ...)."""


class DecodeError(IntegrityError):
    """A record value that does not decode; names resource, id and field."""

    def __init__(self, resource: str, record_id: str, field: str, reason: str):
        self.resource, self.record_id, self.field, self.reason = resource, record_id, field, reason
        super().__init__(
            f"resource {resource!r}, record {record_id!r}, field {field!r}: {reason}"
        )


class IncompleteBackup(IntegrityError):
    """A backup without its manifest: never verified, listed as complete nor restored."""


class CheckFailed(IntegrityError):
    """A backup file whose records fail a check (duplicate or null ids, tombstones in a full
    backup, a count that differs from the manifest); names file and line."""


class DrillFailed(IntegrityError):
    """A restore drill whose records, read back from the scratch target, differ from the backup's
    lines; names resource and id of the first ones, and carries the drill's report."""

    def __init__(self, message: str, report=None):
        self.report = report
        super().__init__(message)


class InvalidCryptoConfig(IntegrityError):
    """A repository crypto config that is incomplete or unparsable."""


class BadHeader(IntegrityError):
    """An encrypted file whose header cannot be used."""


class NotEncrypted(BadHeader):
    """A file that does not start with the magic bytes of an encrypted file."""


class UnsupportedFormat(BadHeader):
    """An encrypted file of an unknown version, algorithm or flag set."""


class TamperedHeader(BadHeader):
    """A header whose tag does not verify."""


class TamperedChunk(IntegrityError):
    """A chunk that fails authentication (tampered, reordered, or from another file)."""

    def __init__(self, message: str, *, name: str = "", chunk: int = -1):
        self.name, self.chunk = name, chunk
        super().__init__(message)


class TruncatedFile(IntegrityError):
    """A file that ends before its final chunk."""


class TruncatedOrTamperedFinalChunk(TruncatedFile, TamperedChunk):
    """A short last chunk that fails authentication: cut inside a chunk, tampered, or with
    bytes appended. Cryptographically these cannot be told apart; it is both kinds."""


class TrailingData(IntegrityError):
    """Bytes after the authenticated final chunk."""


# -- 5: conflict ------------------------------------------------------------------------
class ConflictError(BackupPipelineError):
    """A target that already holds data, a backup already committed, a conflicting definition."""

    exit_code = 5


# -- 6: destinations failed -------------------------------------------------------------
class DestinationsFailed(BackupPipelineError):
    """A multi-repository strategy (all, any, priority) not satisfied."""

    exit_code = 6


# -- 7: lock held -----------------------------------------------------------------------
class LockHeld(ConflictError):
    """Another writer holds a conflicting lease (repository/lock.py)."""

    exit_code = 7


# -- translating storage clients' exceptions --------------------------------------------
def os_error(exc: OSError, path) -> BackupPipelineError:
    """A named error for a local file operation that failed (full disk, name too long, ...)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{path}: {reason}; free space on that filesystem (or write elsewhere) and run again: "
                        "nothing was committed")
    if exc.errno == errno.ENAMETOOLONG:
        return UsageError(f"{path}: name too long for this filesystem ({reason}); use shorter resource names "
                          "or another repository")
    return StorageError(f"{path}: {reason}")


def is_storage_exception(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("obstore", "botocore", "boto3")) or isinstance(exc, (ConnectionError, TimeoutError))


def storage_error(exc: BaseException, where: str = "") -> StorageError:
    """A one-line StorageError for an S3 client or network exception, with a hint for the
    usual causes (credentials, endpoint)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = str(exc).lower()
    hint = ""
    if "signaturedoesnotmatch" in low or "invalidaccesskeyid" in low or "403" in low or "forbidden" in low:
        hint = " (check the access key and secret: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the connection string)"
    elif "connect" in low or "dns" in low:
        hint = " (check the endpoint: AWS_ENDPOINT_URL or --endpoint-url)"
    return StorageError(f"storage error{' on ' + where if where else ''}: {text[:400]}{hint}")


def translates_storage_errors(method):
    """For the methods of a store or repository that call a storage client: its exceptions leave
    as StorageError naming `self.url`, also while a returned iterator (a listing) is consumed."""

    def translated(self, exc: Exception) -> Exception:
        if isinstance(exc, (BackupPipelineError, FileNotFoundError)):
            return exc  # a missing object is the caller's to name (NotFound, or None)
        # obstore raises builtin OSErrors (PermissionError, ...) for HTTP answers: inside a method
        # that calls the storage client, every OSError comes from it
        if isinstance(exc, OSError) or is_storage_exception(exc):
            return storage_error(exc, getattr(self, "url", ""))
        return exc

    def iterate(self, it):
        try:
            yield from it
        except Exception as exc:
            error = translated(self, exc)
            if error is exc:
                raise
            raise error from exc

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            error = translated(self, exc)
            if error is exc:
                raise
            raise error from exc
        # a listing is consumed later; a file object (also an iterator) is returned as it is
        return iterate(self, result) if isinstance(result, Iterator) and not isinstance(result, io.IOBase) else result

    return wrapper
