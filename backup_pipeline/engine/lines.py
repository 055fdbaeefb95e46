"""One line of a backup file: the decoded record plus, under one reserved key, the raw object.

    {"id": "u1", "name": "José", ..., "_deleted": false,
     "_s3db": {"key": ..., "metadata": {...}, "contentType": ..., "body": "<utf-8 text>" | "body64": "<base64>",
               "etag": ..., "lastModified": ..., "size": n}}
    tombstone: {"id": "u4", "_deleted": true, "_s3db": {"key": ..., "deleted": true}}

Analysts read the decoded columns; restore reads only `_s3db`, which is byte-exact. `_deleted` is
on every line (false on records, since backups of this version), so a plain DuckDB glob over full
and incremental files sees the same column whichever file it reads first. A value that does not
fit its field's declared type (format/column_types.py: the `""` s3db.js stores for a tiny
`number`, a datetime that is not ISO 8601, a `string` read back as [1,2,3], ...) is kept under
`_misfit` ({"score": ""}) and the field is null (a string field: the value's JSON text, as the
Parquet mirror has it), so one odd record never retypes a column; a field the schema does not declare
(an s3db.js artefact such as "1", a field of an older version) goes under `_extra`, so the
columns are the schema's; `record_fields` puts both back.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any, Callable

import orjson

from ..store import RawObject
from ..store.filesystem import iso_ms, parse_iso

RAW_KEY = "_s3db"
DELETED_KEY = "_deleted"
MISFIT_KEY = "_misfit"
EXTRA_KEY = "_extra"
LINE_KEYS = frozenset({RAW_KEY, DELETED_KEY, MISFIT_KEY, EXTRA_KEY})  # what a line adds to the decoded record
# columns whatever the schema: the id and the system fields s3db.js adds on read (any other `_…`
# field stays a column too; naming these saves the per-record test)
ALWAYS_COLUMNS = frozenset({"id", "_contentLength", "_lastModified", "_hasContent", "_mimeType", "_etag", "_v",
                            "_definitionHash", "_originalVersion", "_versionMapped"})


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


def record_line(decoded: dict, obj: RawObject, typed: list[tuple[str, Callable, Callable]] = (),
                declared: frozenset | None = None) -> bytes:
    """A record's line. `typed` (the schema's typed_fields: name, checker, stand-in) says which
    fields' values must fit a type, and what the field shows when one does not; `declared` (the
    schema's declared_fields), when given, which fields are columns: the others go under
    `_extra`. System fields (`_…`) and `id` always stay. Every record pays the checks, so the
    line is copied only when something is set aside."""
    misfit = shown = None  # the values set aside, and what their fields show instead
    for name, fits, stand_in in typed:
        value = decoded.get(name)
        if not fits(value):
            misfit, shown = misfit or {}, shown or {}
            misfit[name], shown[name] = value, stand_in(value)
    undeclared = [k for k in decoded.keys() - declared - ALWAYS_COLUMNS if k[:1] != "_"] if declared is not None else ()
    if misfit is None and not undeclared:
        return orjson.dumps({**decoded, DELETED_KEY: False, RAW_KEY: raw_to_json(obj)}, option=orjson.OPT_APPEND_NEWLINE)
    line = {**decoded, **shown} if shown else dict(decoded)
    extra = {k: line.pop(k) for k in decoded if k in undeclared} if undeclared else None  # in decoded order
    line[DELETED_KEY] = False
    if misfit:
        line[MISFIT_KEY] = misfit
    if extra:
        line[EXTRA_KEY] = extra
    line[RAW_KEY] = raw_to_json(obj)
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


def record_fields(line: dict) -> dict:
    """The decoded record a line holds, as s3db.js read it: set-aside values back in their
    fields, without what the line adds (the raw object, _deleted, _misfit, _extra)."""
    fields = {k: v for k, v in line.items() if k not in LINE_KEYS}
    for aside in (line.get(MISFIT_KEY), line.get(EXTRA_KEY)):
        if isinstance(aside, dict):
            fields.update(aside)
    return fields


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
