"""An s3db.js object as stored (SPEC §1): what stores read and write, and what the decoder decodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class RawObject:
    """An object exactly as stored: user metadata still transport-encoded, body raw."""

    key: str
    metadata: dict[str, str]
    content_type: str | None
    body: bytes
    etag: str = ""  # with the double quotes
    last_modified: datetime | None = None
    extra: dict = field(default_factory=dict)  # store-specific details (e.g. fs sidecar fields)
