"""A typed Parquet mirror of a backup file: RESOURCE.parquet next to RESOURCE.jsonl.<ext>.

The JSONL file is the source of truth (restore reads only its `_s3db` raw objects); the mirror
is for analysts: the decoded record fields with column types derived from the s3db attribute
schema (SPEC §6.2/§6.3), so DuckDB, Athena, BigQuery or pandas read it without guessing.

Schema mapping (`arrow_schema`), in column order:

    id                                   string (first)
    each attribute, in definition order, typed by format/column_types.py:
      int -> int64, float -> float64, bool -> bool, timestamp -> timestamp[ms, UTC],
      date -> date32, list -> list<…>, struct -> struct<…> (geo:point: latitude, longitude
      doubles), string -> string (email, url, uuid, ip4/ip6, timeonly, secret*, password*,
      object-form scalars, unknown types), json -> string (json, object, any, other arrays:
      the value's JSON text)
    _deleted          bool (true on tombstones, false otherwise)
    _lastModified     timestamp[ms, UTC]  the source object's LastModified
    _etag             string              its ETag (with the double quotes)
    _contentLength    int64               its body size
    _mimeType         string              its content type
    _originalVersion  string              the schema version the object was written under
    _extra            string              JSON object of the decoded fields the schema does not
                                          declare (s3db.js update artefacts such as
                                          `metadata_updatedat`, fields of older versions,
                                          `any` flattening) or null; nothing decoded is lost

Left out: `_s3db` (the raw object, for restore), and the system fields s3db.js derives
from the others (`_v`, `_hasContent`, `_definitionHash`, `_versionMapped`). A line's `_misfit`
and `_extra` (engine/lines.py) are put back in their fields first, so the mirror converts what
s3db.js read (and puts undeclared fields in its own `_extra` column, as JSON text).

String columns keep a string value as is and store any other JSON value as its JSON text
(so a `json` attribute holds `{"theme":"dark"}`, and an s3db.js quirk such as a `string`
field read back as `[1,2,3]` is kept, as `"[1,2,3]"`). Every other column is strict: a value
that does not fit its type (the `""` s3db.js stores for a `number` below 1e-6, a non-ISO
datetime, …) becomes null and is counted in `coerced_nulls` (per column in
`coerced_columns`). Lenient readers (DuckDB's json_transform, Athena's JSON SerDe) may keep
such values differently (e.g. 2.5 read as an integer becomes 2 there, null here).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ..compression import EXTENSIONS
from ..format import column_types
from ..format.column_types import (BAD, BOOL, DATE, FLOAT, INT, JSON, STRING, ColumnType, column_type, to_bool, to_date,
                                   to_float, to_int, to_string, to_timestamp_ms)
from ..repository.files import FileWriter, read_records
from ..repository.manifest import Manifest, ParquetMirror, ResourceEntry
from .lines import EXTRA_KEY as LINE_EXTRA_KEY, MISFIT_KEY

PARQUET_COMPRESSION = "zstd"
ID = "id"
DELETED = "_deleted"
EXTRA = "_extra"
RAW = "_s3db"
# system fields s3db.js adds on read, kept as columns (name -> type)
SYSTEM_COLUMNS: dict[str, pa.DataType] = {
    DELETED: pa.bool_(),
    "_lastModified": pa.timestamp("ms", tz="UTC"),
    "_etag": pa.string(),
    "_contentLength": pa.int64(),
    "_mimeType": pa.string(),
    "_originalVersion": pa.string(),
}
# system fields left out: derived from the ones kept, or the raw object itself
DROPPED_FIELDS = frozenset({RAW, "_v", "_hasContent", "_definitionHash", "_versionMapped"})
TIMESTAMP = pa.timestamp("ms", tz="UTC")
_ARROW_SCALARS = {STRING: pa.string(), JSON: pa.string(), INT: pa.int64(), FLOAT: pa.float64(), BOOL: pa.bool_(),
                  column_types.TIMESTAMP: TIMESTAMP, DATE: pa.date32()}


# -- schema -------------------------------------------------------------------------------
def resource_attributes(source: Manifest | dict, resource: str) -> dict:
    """The s3db attribute schema of `resource` (its current version) in a backup's manifest, or
    in an s3db.json."""
    database = source.database if isinstance(source, Manifest) else source
    res = database["resources"][resource]
    return (res.get("versions", {}).get(res.get("currentVersion")) or {}).get("attributes") or {}


def arrow_type(t: ColumnType) -> pa.DataType:
    """The Arrow type of a column type (format/column_types.py)."""
    if isinstance(t, str):
        return _ARROW_SCALARS[t]
    if t[0] == "list":
        return pa.list_(arrow_type(t[1]))
    return pa.struct([(name, arrow_type(sub)) for name, sub in t[1]])


def attribute_type(definition: Any) -> pa.DataType:
    """Arrow type of one attribute definition (the mapping of format/column_types.py)."""
    return arrow_type(column_type(definition))


def arrow_schema(attributes: dict) -> pa.Schema:
    """`id` first, the attributes in definition order, then the kept system columns and
    `_extra`. An attribute whose name collides (case-insensitively, as SQL engines compare
    names) with `id`, a system column or an earlier attribute is left out of the columns;
    its values land in `_extra`."""
    reserved = {n.lower() for n in (ID, *SYSTEM_COLUMNS, EXTRA)}
    seen: set[str] = set()
    fields = [pa.field(ID, pa.string())]
    for name, definition in attributes.items():
        key = name.lower()
        if key in reserved or key in seen or name.startswith("$$"):
            continue
        seen.add(key)
        fields.append(pa.field(name, attribute_type(definition)))
    fields += [pa.field(n, t) for n, t in SYSTEM_COLUMNS.items()]
    fields.append(pa.field(EXTRA, pa.string()))
    return pa.schema(fields)


# -- value coercion (column_types.py's coercions) -------------------------------------------
Converter = Callable[[Any, Callable[[], None]], Any]


def converter(t: pa.DataType) -> Converter:
    """A function (value, on_bad) -> the value to hand to pyarrow for type `t`; a value that
    does not fit (at any depth) is replaced by None and reported through on_bad()."""
    if pa.types.is_struct(t):
        subs = [(t.field(i).name, converter(t.field(i).type)) for i in range(t.num_fields)]

        def struct(v, bad):
            if v is None:
                return None
            if not isinstance(v, dict):
                bad()
                return None
            return {name: conv(v.get(name), bad) for name, conv in subs}

        return struct
    if pa.types.is_list(t):
        item = converter(t.value_type)

        def list_(v, bad):
            if v is None:
                return None
            if not isinstance(v, list):
                bad()
                return None
            flag = []
            out = [item(x, lambda: flag.append(1)) for x in v]
            if flag:  # one item that does not fit nulls the whole list: no silent holes
                bad()
                return None
            return out

        return list_
    scalar = {pa.string(): to_string, pa.int64(): to_int, pa.float64(): to_float, pa.bool_(): to_bool,
              TIMESTAMP: to_timestamp_ms, pa.date32(): to_date}.get(t)
    if scalar is None:
        raise TypeError(f"no converter for {t}")

    def one(v, bad):
        if v is None:
            return None
        out = scalar(v)
        if out is BAD:
            bad()
            return None
        return out

    return one


# -- writing ------------------------------------------------------------------------------
def mirror_name(entry: ResourceEntry) -> str:
    """RESOURCE.parquet for a manifest entry whose file is RESOURCE.jsonl.<ext>."""
    first = entry.data_files()[0]  # a sharded resource: one mirror of all its parts, named after the resource
    ext = EXTENSIONS[first.compression]
    base = first.file[: -len(ext)] if first.file.endswith(ext) else first.file.split(".", 1)[0]
    if entry.sharded:
        base = base.rsplit(".part-", 1)[0]
    return f"{base}.parquet"


def iter_records(repo, backup_id: str, entry: ResourceEntry) -> Iterator[dict]:
    """The decoded lines of a backup file, one at a time (decrypting when the repository is)."""
    for data in entry.data_files():
        for _n, record in read_records(repo, backup_id, data.file, data.compression):
            for key in (MISFIT_KEY, LINE_EXTRA_KEY):  # values set aside: back where s3db.js read them
                aside = record.pop(key, None)
                if isinstance(aside, dict):
                    record.update(aside)
            yield record


def write_parquet_mirror(repo, backup_id: str, entry: ResourceEntry | dict, attributes: dict,
                         row_group_size: int = 50_000) -> ParquetMirror:
    """Stream a backup file's lines into RESOURCE.parquet (zstd) in row groups of at most
    `row_group_size` rows (memory holds one row group), through the file pipeline (and the
    repository's encryption, if it has one: then the mirror is sealed like every other file
    and readable only after decryption). Returns what the manifest records of it."""
    if row_group_size < 1:
        raise ValueError("row_group_size must be at least 1")
    if isinstance(entry, dict):  # the entry as the manifest's JSON (notebooks, the API's dict view)
        entry = ResourceEntry.load(entry, repo.describe(backup_id, entry.get("file", "?")))
    schema = arrow_schema(attributes)
    names = schema.names
    convs = [converter(f.type) for f in schema]
    known = set(names) | DROPPED_FIELDS
    extra_i = names.index(EXTRA)
    deleted_i = names.index(DELETED)
    name = mirror_name(entry)
    coerced: dict[str, int] = {}
    rows = row_groups = 0

    out = FileWriter(repo, backup_id, name, "parquet")  # stored as written, encrypted when the repository is
    try:
        sink = pa.PythonFile(out.stream, mode="w")
        writer = pq.ParquetWriter(sink, schema, compression=PARQUET_COMPRESSION)
        columns: list[list] = [[] for _ in names]

        def flush() -> None:
            nonlocal row_groups
            if not columns[0]:
                return
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(columns[0]))
            row_groups += 1
            for col in columns:
                col.clear()

        def counter(col_name: str) -> Callable[[], None]:
            def bad() -> None:
                coerced[col_name] = coerced.get(col_name, 0) + 1
            return bad

        plain = [(names[i], convs[i], counter(names[i]), columns[i])
                 for i in range(len(names)) if i not in (extra_i, deleted_i)]
        extra_col, deleted_col = columns[extra_i], columns[deleted_i]
        for rec in iter_records(repo, backup_id, entry):
            for col_name, conv, bad, col in plain:
                col.append(conv(rec.get(col_name), bad))
            deleted_col.append(rec.get(DELETED) is True)
            extra = {k: v for k, v in rec.items() if k not in known}
            extra_col.append(orjson.dumps(extra).decode() if extra else None)
            rows += 1
            if len(columns[0]) >= row_group_size:
                flush()
        flush()
        writer.close()
    except BaseException:
        out.abort()
        raise
    stored = out.close()  # not sink.close(): the file writer finishes the encryption layer itself
    return ParquetMirror(file=name, rows=rows, bytes=stored.bytes, sha256=stored.sha256, row_groups=row_groups,
                         coerced_nulls=sum(coerced.values()), coerced_columns=coerced, compression=PARQUET_COMPRESSION)
