"""The options of an S3 repository (endpoint, credentials, storage class, server-side
encryption), apart from the S3 client so that settings can be built without loading it."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..errors import UsageError

STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
                   "DEEP_ARCHIVE", "REDUCED_REDUNDANCY")
SSE_MODES = ("AES256", "aws:kms", "sse-c")


@dataclass
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    storage_class: str | None = None
    sse: str | None = None  # AES256 | aws:kms | sse-c
    sse_kms_key_id: str | None = None
    sse_customer_key: str | None = None  # base64 of 32 bytes (SSE-C)
    part_size: int = 8 * 1024 * 1024

    def check(self) -> None:
        if self.storage_class and self.storage_class not in STORAGE_CLASSES:
            raise UsageError(f"storage class {self.storage_class!r} unknown; choose one of {', '.join(STORAGE_CLASSES)}")
        if self.sse and self.sse not in SSE_MODES:
            raise UsageError(f"server-side encryption {self.sse!r} unknown; choose AES256, aws:kms or sse-c")
        if self.sse == "sse-c":
            try:
                if len(base64.b64decode(self.sse_customer_key or "", validate=True)) != 32:
                    raise ValueError
            except ValueError:
                raise UsageError("SSE-C needs --sse-customer-key: base64 of exactly 32 bytes") from None
        if self.sse_kms_key_id and self.sse != "aws:kms":
            raise UsageError("--sse-kms-key-id goes with --sse aws:kms")
