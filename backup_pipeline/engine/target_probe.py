"""Does a restore target keep what s3db.js writes? s3db.js stores "" and [] as empty user
metadata values, and some S3 servers (SeaweedFS) drop an `x-amz-meta-*` header whose value is
empty: restoring there would lose those fields with nothing said. One probe object, written
with an empty and a set value and read back, tells before the restore writes anything. It lives
under plugin=, where s3db.js keeps plugin state and never looks for records, and is removed.
"""

from __future__ import annotations

import secrets

from ..store import RawObject, Store

PROBE_PREFIX = "plugin=backup-pipeline/metadata-probe-"


def drops_empty_metadata(store: Store) -> bool:
    key = f"{PROBE_PREFIX}{secrets.token_hex(6)}.json"
    store.put(RawObject(key=key, metadata={"probe-empty": "", "probe-set": "1"},
                        content_type="application/json", body=b"{}"))
    try:
        read = {k.lower(): v for k, v in store.get(key).metadata.items()}
    finally:
        store.delete(key)
    return read.get("probe-set") == "1" and read.get("probe-empty") != ""


def empty_values(obj: RawObject) -> list[str]:
    """The metadata keys of an object whose value is empty (what such a target drops)."""
    return sorted(k for k, v in obj.metadata.items() if v == "")
