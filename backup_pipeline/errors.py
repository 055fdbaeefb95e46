"""One error class per failure, each with the exit code the CLI returns (borg's pattern).

Every message names what is wrong and where (file, key, resource, record, field) and,
where there is one, what to do about it.
"""

from __future__ import annotations


class BackupPipelineError(Exception):
    """Base class: anything the CLI reports as a clean error instead of a traceback."""

    exit_code = 1


class UsageError(BackupPipelineError):
    """Bad arguments or an unparsable connection string."""

    exit_code = 2


class ConnectionStringError(UsageError):
    """A connection string that cannot be parsed; the message says which part."""


class InvalidResourceName(UsageError):
    """A resource name that could escape its folder (`/`, `..`, empty)."""


class NotFound(BackupPipelineError):
    """A database, resource, object or backup that does not exist."""

    exit_code = 3


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


class ConflictError(BackupPipelineError):
    """A lock held by someone else, or a target that already holds data."""

    exit_code = 5
