"""Where backups live. One small contract (`Repository`); the filesystem implementation today."""

from __future__ import annotations

from .base import MANIFEST_NAME, Repository
from .filesystem import FilesystemRepository


def open_repository(spec: str) -> Repository:
    """A repository from a `--repo` value: a local folder (or file:// URL) for now."""
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    if "://" in spec:
        from ..errors import UsageError

        raise UsageError(f"repository {spec!r}: only local folders are supported so far")
    return FilesystemRepository(spec)


__all__ = ["MANIFEST_NAME", "FilesystemRepository", "Repository", "open_repository"]
