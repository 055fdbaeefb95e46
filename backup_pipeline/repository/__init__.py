"""Where backups live: one small contract (`Repository`, base.py), a local folder, S3, several
of them as one (multi), client-side encryption as a layer (encryption.py), the backup-file
pipeline (files.py) and leases (lock.py)."""

from __future__ import annotations

from ..errors import UsageError
from .base import MANIFEST_NAME, Repository
from .encryption import open_encryption
from .filesystem import FilesystemRepository
from .multi import MultiRepository


def open_repository(spec: str | list[str], s3_options=None, *, strategy: str = "all", max_uploads: int = 2,
                    passphrase: str | None = None, raw_key: bytes | None = None, encrypt: bool = False) -> Repository:
    """A repository from `--repo` values: a local folder (file:// or a path, templates
    allowed) or s3://bucket/prefix; several make a multi-destination repository. Encrypted
    when it has a crypto config (or `encrypt` asks for one on a new repository)."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) == 1:
        repo = _open_one(specs[0], s3_options)
    else:
        repo = MultiRepository([_open_one(s, s3_options) for s in specs], strategy, max_uploads)
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
