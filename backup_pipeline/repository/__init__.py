"""Where backups live. One small contract (`Repository`); the filesystem implementation today."""

from __future__ import annotations

from .base import MANIFEST_NAME, Repository
from .filesystem import FilesystemRepository


def open_repository(spec: str, s3_options=None) -> Repository:
    """A repository from a `--repo` value: a local folder (file:// or a path, templates
    allowed) or s3://bucket/prefix."""
    if spec.startswith("s3://"):
        from .s3 import S3Repository

        return S3Repository(spec, s3_options)
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    if "://" in spec:
        from ..errors import UsageError

        raise UsageError(f"repository {spec!r}: use a local folder, file:///path or s3://bucket/prefix")
    return FilesystemRepository(spec)


__all__ = ["MANIFEST_NAME", "FilesystemRepository", "Repository", "open_repository"]
