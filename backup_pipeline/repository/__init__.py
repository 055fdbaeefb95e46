"""Where backups live: one small contract (`Repository`, base.py), a local folder, S3, several
of them as one (multi), client-side encryption as a layer (encryption.py), the backup-file
pipeline (files.py) and leases (lock.py)."""

from __future__ import annotations

from ..errors import UsageError
from .base import MANIFEST_NAME, Repository
from .encryption import open_encryption
from .filesystem import FilesystemRepository
from .multi import MultiRepository
from .object_lock import ObjectLock, open_object_lock


def open_repository(spec: str | list[str], s3_options=None, *, strategy: str = "all", max_uploads: int = 2,
                    passphrase: str | None = None, raw_key: bytes | None = None, encrypt: bool = False,
                    object_lock: ObjectLock | None = None) -> Repository:
    """A repository from `--repo` values: a local folder (file:// or a path, templates
    allowed) or s3://bucket/prefix; several make a multi-destination repository. Encrypted
    when it has a crypto config (or `encrypt` asks for one on a new repository). Each S3
    repository is object-locked when its object-lock.json says so, or `object_lock` asks for it
    (object_lock.py); a folder cannot be, so asking for it with no S3 destination is refused."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    ones = [_open_one(s, s3_options) for s in specs]
    if object_lock is not None and not any(s.startswith("s3://") for s in specs):
        raise UsageError("--object-lock needs an S3 repository (s3://bucket/prefix): a folder cannot be locked")
    if object_lock is not None:  # else each S3 repository reads its object-lock.json when first needed
        for one, s in zip(ones, specs):
            if s.startswith("s3://"):
                one.object_lock = open_object_lock(one, object_lock)
    repo = ones[0] if len(ones) == 1 else MultiRepository(ones, strategy, max_uploads)
    repo.encryption = open_encryption(repo, passphrase=passphrase, raw_key=raw_key, create=encrypt)
    return repo


def _open_one(spec: str, s3_options=None) -> Repository:
    if spec.startswith("s3://"):
        from .s3 import S3Repository  # obstore (~8 MB, 0.1 s) loads only for S3 repositories

        return S3Repository(spec, s3_options)
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    if "://" in spec:
        raise UsageError(f"repository {spec!r}: use a local folder, file:///path or s3://bucket/prefix")
    return FilesystemRepository(spec)


__all__ = ["MANIFEST_NAME", "FilesystemRepository", "MultiRepository", "Repository", "open_repository"]
