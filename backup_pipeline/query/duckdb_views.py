"""DuckDB over backups in place: a connection that reads the repository's files (local or S3,
offline: the httpfs extension comes from the `duckdb-ext-httpfs` package, never downloaded),
and views over them.

    con = connect(repo)
    create_views(con, repo)                    # latest complete backup
    con.sql("SELECT status, count(*) FROM users__state GROUP BY 1")

Views (`create_views`):
- `<resource>__backup`: the lines of one backup file (records and tombstones) with typed
  columns, plus `_backup_id`;
- `<resource>__state`: the resource as a restore of that backup id would leave it: the lines of
  its chain from the resource's last full snapshot on, the newest line per id winning,
  tombstoned ids removed; `_backup_id` says which backup the row comes from;
- `backups` (one row per complete backup, read from the manifests in place, with a
  `resources` map of per-resource counts) and `backup_resources` (one row per backup and
  resource).

Columns are those of the Parquet mirror (`backup_pipeline.engine.parquet.arrow_schema`: `id`, the
attributes typed from the s3db schema, `_deleted`, `_lastModified`, `_etag`, `_contentLength`,
`_mimeType`, `_originalVersion`) minus `_extra`. From JSONL every column is read as JSON and
converted with DuckDB's lenient `json_transform` (a value that does not fit its type is NULL,
as Athena's JSON SerDe does; strings are kept as is and other values as their JSON text in
string columns), so one odd line never stops a scan. `source="parquet"` reads the
RESOURCE.parquet mirrors instead (all columns, `_extra` too).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from ..engine.catalog import complete_manifests
from .connection import _q, connect, file_url  # noqa: F401 - connect and file_url re-exported
from ..engine.parquet import DELETED, EXTRA, ID, arrow_schema, mirror_name, resource_attributes
from ..engine.restore import resource_chain
from ..errors import NotFound, UsageError
from ..repository import MANIFEST_NAME
from ..repository.manifest import DUCKDB_COLUMNS, Manifest, ResourceEntry


def local_path(path: str) -> str:
    return str(Path(path).resolve())


# -- views --------------------------------------------------------------------------------
READ_OPTIONS = "format='newline_delimited', compression='auto_detect', maximum_object_size=268435456"


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB type of an Arrow column type of the Parquet mirror schema."""
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{quote_ident(t.field(i).name)} {duckdb_type(t.field(i).type)}"
                                     for i in range(t.num_fields)) + ")"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    return _SCALARS[t]


_SCALARS = {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
            pa.timestamp("ms", tz="UTC"): "TIMESTAMPTZ", pa.date32(): "DATE"}


def json_structure(t: pa.DataType):
    """The `json_transform` structure that turns a JSON value into the column's type."""
    if pa.types.is_struct(t):
        return {t.field(i).name: json_structure(t.field(i).type) for i in range(t.num_fields)}
    if pa.types.is_list(t):
        return [json_structure(t.value_type)]
    return _SCALARS[t]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + _q(text) + "'"


def jsonl_select(urls: str | list[str], schema: pa.Schema) -> str:
    """SELECT of a JSONL backup file (or a sharded resource's parts) with the columns of `schema`
    (minus `_extra`)."""

    fields = [f for f in schema if f.name != EXTRA]
    columns = ", ".join(f"{_lit(f.name)}: {_lit('VARCHAR' if f.name == ID else 'JSON')}" for f in fields)
    exprs = []
    for f in fields:
        col = quote_ident(f.name)
        if f.name == ID:
            exprs.append(col)
            continue
        expr = f"json_transform({col}, {_lit(orjson.dumps(json_structure(f.type)).decode())})"
        if f.name == DELETED:
            expr = f"coalesce({expr}, false)"
        exprs.append(f"{expr} AS {col}")
    files = _lit(urls) if isinstance(urls, str) else "[" + ", ".join(map(_lit, urls)) + "]"
    return f"SELECT {', '.join(exprs)} FROM read_json({files}, {READ_OPTIONS}, columns={{{columns}}})"


def _check_readable(repo, backup_id: str, entry: ResourceEntry) -> None:
    if repo.encryption.enabled:
        raise UsageError(f"repository {repo.url} is encrypted (client-side): DuckDB cannot read its files in place; "
                         "restore or decrypt them first")
    first = entry.data_files()[0]
    if first.compression == "brotli":
        raise UsageError(f"{file_url(repo, backup_id, first.file)}: DuckDB cannot read brotli; "
                         "back up with --compression gzip, zstd or none to query in place")


def _file_select(repo, backup_id: str, resource: str, entry: ResourceEntry, schema: pa.Schema, source: str) -> str:
    if source == "parquet":
        name = entry.parquet.file if entry.parquet else mirror_name(entry)
        return f"SELECT * FROM read_parquet({_lit(file_url(repo, backup_id, name))})"
    _check_readable(repo, backup_id, entry)
    urls = [file_url(repo, backup_id, f.file) for f in entry.data_files()]
    return jsonl_select(urls[0] if len(urls) == 1 else urls, schema)


def state_sql(repo, manifest: Manifest, resource: str, schema: pa.Schema, source: str = "jsonl") -> str:
    """The state of `resource` at the backup `manifest`: the chain's lines from the resource's
    last snapshot on, newest line per id wins, tombstoned ids removed."""

    chain = list(reversed(resource_chain(repo, manifest, resource)))  # oldest (the snapshot) first
    parts = []
    for rank, m in enumerate(chain):
        inner = _file_select(repo, m.id, resource, m.resources[resource], schema, source)
        parts.append(f"SELECT *, {rank} AS _rank, {_lit(m.id)} AS _backup_id FROM ({inner})")
    lines = " UNION ALL BY NAME ".join(parts)
    return (f"SELECT * EXCLUDE (_rank, _rn) FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY _rank DESC) AS _rn "
            f"FROM ({lines})) WHERE _rn = 1 AND NOT coalesce(\"_deleted\", false)")


def create_views(con: duckdb.DuckDBPyConnection, repo, *, backup_id: str | None = None,
                 resource: str | list[str] | None = None, state: bool = True, source: str = "jsonl") -> list[str]:
    """Create `<resource>__backup`, `<resource>__state` (unless state=False), `backups` and
    `backup_resources` views on `con` (made by `connect(repo)`) over the repository's files in
    place. backup_id: which backup (default: the latest complete one); resource: one name or a
    list (default: every resource of that backup); source: "jsonl" (the backup files) or
    "parquet" (the RESOURCE.parquet mirrors). Returns the names of the views created."""
    statements = views_sql(repo, backup_id=backup_id, resource=resource, state=state, source=source)
    for _view, sql in statements:
        con.execute(sql)
    return [view for view, _sql in statements]


def views_sql(repo, *, backup_id: str | None = None, resource: str | list[str] | None = None, state: bool = True,
              source: str = "jsonl") -> list[tuple[str, str]]:
    """(view name, CREATE VIEW statement) of create_views, in order: plain SQL any DuckDB runs
    (`backup-pipeline duckdb-sql` prints it), naming only committed backups' files."""

    if source not in ("jsonl", "parquet"):
        raise UsageError(f"source {source!r}: choose jsonl or parquet")
    manifests = complete_manifests(repo)
    if backup_id is None:
        if not manifests:
            raise NotFound(f"no complete backup in {repo.url}")
        manifest = manifests[-1]
    else:
        manifest = next((m for m in manifests if m.id == backup_id), None)
        if manifest is None:
            raise NotFound(f"backup {backup_id} is not a complete backup of {repo.url}")
    held = list(manifest.resources)
    chosen = held if resource is None else ([resource] if isinstance(resource, str) else list(resource))
    missing = [r for r in chosen if r not in held]
    if missing:
        raise NotFound(f"backup {manifest.id} does not hold resource(s) {', '.join(missing)}; it holds {', '.join(held)}")
    created: list[tuple[str, str]] = []
    for name in chosen:
        schema = arrow_schema(resource_attributes(manifest, name))
        select = _file_select(repo, manifest.id, name, manifest.resources[name], schema, source)
        view = f"{name}__backup"
        created.append((view, f"CREATE OR REPLACE VIEW {quote_ident(view)} AS SELECT *, {_lit(manifest.id)} AS "
                              f"_backup_id FROM ({select})"))
        if state:
            view = f"{name}__state"
            created.append((view, f"CREATE OR REPLACE VIEW {quote_ident(view)} AS "
                                  f"{state_sql(repo, manifest, name, schema, source)}"))
    return created + _backups_views(repo, manifests)


def _backups_views(repo, manifests: list[Manifest]) -> list[tuple[str, str]]:
    if not manifests:
        return [("backups", "CREATE OR REPLACE VIEW backups AS SELECT NULL::VARCHAR AS id WHERE false"),
                ("backup_resources", "CREATE OR REPLACE VIEW backup_resources AS SELECT NULL::VARCHAR AS backup_id "
                                     "WHERE false")]
    urls = "[" + ", ".join(_lit(file_url(repo, m.id, MANIFEST_NAME)) for m in manifests) + "]"
    return [("backups", f"""CREATE OR REPLACE VIEW backups AS
        SELECT id, type, parent, source.url AS source, startedAt AS started_at, finishedAt AS finished_at,
               compression, selective, totals.records AS records, totals.tombstones AS tombstones,
               totals.bytes AS bytes, len(chain) AS chain_length, chain, resources
        FROM read_json({urls}, format='auto', records=true, maximum_object_size=268435456,
                       columns={DUCKDB_COLUMNS})
        ORDER BY started_at, id"""), ("backup_resources", """CREATE OR REPLACE VIEW backup_resources AS
        SELECT b.id AS backup_id, b.type, b.started_at, e.key AS resource, e.value.records AS records,
               e.value.tombstones AS tombstones, e.value.unchanged AS unchanged, e.value.snapshot AS snapshot,
               -- a sharded resource's files are its parts
               coalesce(e.value.lines, list_sum(list_transform(e.value.parts, p -> p.lines))) AS lines,
               coalesce(e.value.bytes, list_sum(list_transform(e.value.parts, p -> p.bytes))) AS bytes,
               coalesce(e.value.compression, e.value.parts[1].compression) AS compression,
               e.value.parquet.bytes AS parquet_bytes
        FROM backups b, unnest(map_entries(b.resources)) AS t(e)
        ORDER BY b.started_at, b.id, resource""")]
