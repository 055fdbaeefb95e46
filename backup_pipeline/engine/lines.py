"""One line of a backup file: the decoded record plus, under one reserved key, the raw object.

    {"id": "u1", "name": "José", ..., "_deleted": false,
     "_s3db": {"key": ..., "metadata": {...}, "contentType": ..., "body": "<utf-8 text>" | "body64": "<base64>",
               "etag": ..., "lastModified": ..., "size": n}}
    tombstone: {"id": "u4", "_deleted": true, "_s3db": {"key": ..., "deleted": true}}

Analysts read the decoded columns; restore reads only `_s3db`, which is byte-exact. `_deleted` is
on every line (false on records, since backups of this version), so a plain DuckDB glob over full
and incremental files sees the same column whichever file it reads first.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import orjson

from ..store import RawObject
from ..store.filesystem import iso_ms, parse_iso

RAW_KEY = "_s3db"
DELETED_KEY = "_deleted"


def raw_to_json(obj: RawObject) -> dict:
    raw: dict = {"key": obj.key, "metadata": obj.metadata, "contentType": obj.content_type}
    if obj.body:
        try:
            raw["body"] = obj.body.decode("utf-8")
        except UnicodeDecodeError:
            raw["body64"] = base64.b64encode(obj.body).decode("ascii")
    raw["etag"] = obj.etag
    raw["lastModified"] = iso_ms(obj.last_modified) if obj.last_modified else None
    raw["size"] = len(obj.body)
    return raw


def raw_from_json(raw: dict) -> RawObject:
    if "body64" in raw:
        body = base64.b64decode(raw["body64"])
    else:
        body = raw.get("body", "").encode("utf-8")
    lm = raw.get("lastModified")
    return RawObject(
        key=raw["key"],
        metadata=dict(raw.get("metadata") or {}),
        content_type=raw.get("contentType"),
        body=body,
        etag=raw.get("etag", ""),
        last_modified=parse_iso(lm) if lm else None,
    )


def record_line(decoded: dict, obj: RawObject) -> bytes:
    return orjson.dumps({**decoded, DELETED_KEY: False, RAW_KEY: raw_to_json(obj)}, option=orjson.OPT_APPEND_NEWLINE)


def tombstone_line(record_id: str, key: str) -> bytes:
    return orjson.dumps(
        {"id": record_id, DELETED_KEY: True, RAW_KEY: {"key": key, "deleted": True}},
        option=orjson.OPT_APPEND_NEWLINE,
    )


def content_hash(obj: RawObject) -> str:
    """What identifies an object's content: metadata, content type and body (not its ETag,
    which does not change on a metadata-only rewrite of an empty body)."""
    h = hashlib.sha256()
    h.update(orjson.dumps(obj.metadata, option=orjson.OPT_SORT_KEYS))
    h.update(b"\0" + (obj.content_type or "").encode() + b"\0")
    h.update(obj.body)
    return h.hexdigest()[:32]


def object_version(obj: RawObject) -> str:
    """The S3-style change token of a fetched object (what its listing entry would say)."""
    return f"{obj.etag}|{ms(obj.last_modified) if obj.last_modified else 0}|{len(obj.body)}"


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)
