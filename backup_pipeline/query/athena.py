"""Athena (Trino) DDL over the backups in place: JSON SerDe tables over RESOURCE.jsonl.gz,
Parquet tables over the RESOURCE.parquet mirrors, and views.

Per resource R (table names lower-cased, other characters than [a-z0-9_] made `_`):

- `r__jsonl_files` (OpenX JSON SerDe) and, when mirrors exist, `r__parquet_files` (Parquet):
  external tables partitioned by `_backup_id`, one partition per backup, whose LOCATION is
  the backup's folder. A backup folder holds every resource's files (and the manifest), so
  these raw tables are never queried directly:
- `r_jsonl` / `r_parquet`: views selecting the partitions' R files by `"$path" IN (...)`
  (Trino prunes the other files of the folder from that list before opening them), with
  `_deleted` made false on records;
- `r_state`: the state at the backup asked for (default: the latest), as a restore of it
  would leave the resource: the lines of its chain from the resource's last snapshot on,
  the newest line per id winning, tombstoned ids removed (over the Parquet mirrors when every
  backup of the chain has one, else over the JSONL files).

Column types come from the s3db schema through the Parquet mapping
(`backup_pipeline.parquet.arrow_schema`): string, bigint, double, boolean, timestamp, date,
array<…>, struct<…>. Athena's OpenX JSON SerDe parses the ISO timestamps s3db.js writes and
makes a scalar that does not parse NULL (e.g. the `""` s3db.js stores for tiny `number`s);
strings stay strings, and a JSON object or array in a string column is kept as its JSON text.
brotli files (not readable by Athena) and encrypted repositories are refused.
"""

from __future__ import annotations

import re

import pyarrow as pa

from ..engine.catalog import complete_manifests
from ..engine.parquet import arrow_schema, mirror_name, resource_attributes
from ..engine.restore import resource_chain
from ..errors import NotFound, UsageError

DEFAULT_DATABASE = "s3db_backups"
PARTITION_COLUMN = "_backup_id"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
_HIVE_SCALARS = {pa.string(): "string", pa.int64(): "bigint", pa.float64(): "double", pa.bool_(): "boolean",
                 pa.timestamp("ms", tz="UTC"): "timestamp", pa.date32(): "date"}


def hive_type(t: pa.DataType) -> str:
    """Athena/Hive DDL type of an Arrow column type of the Parquet mirror schema."""
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{_field_name(t.field(i).name)}:{hive_type(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    if pa.types.is_list(t):
        return f"array<{hive_type(t.value_type)}>"
    return _HIVE_SCALARS[t]


def table_name(resource: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", resource.lower())
    return name if name[:1].isalpha() else f"r_{name}"


# DDL keywords that must be escaped (Athena's list, the ones a field name could plausibly be)
_DDL_RESERVED = frozenset("""all alter and array as between bigint binary boolean both by case cast char column constraint
create cross cube current current_date current_timestamp cursor database date decimal delete describe distinct
double drop else end exchange exists extended external extract false fetch float floor following for foreign from
full function grant group grouping having if import in inner insert int integer intersect interval into is join
lateral left less like local macro map more none not null numeric of on only or order out outer over partition
percent preceding precision primary procedure range reads reduce references regexp revoke right rlike rollback
rollup row rows select set smallint start table tablesample then time timestamp to transform trigger true
truncate unbounded union uniquejoin update user using utc_timestamp values varchar views when where window
with""".split())


def _field_name(name: str) -> str:
    """A struct field name: plain when it can be (Athena allows only [A-Za-z0-9_.] in complex
    types' field names), escaped when it is a reserved word or starts with _ or a digit."""
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) and name.lower() not in _DDL_RESERVED:
        return name
    return _bt(name)


def _bt(name: str) -> str:  # DDL (Hive) identifier
    return "`" + name.replace("`", "``") + "`"


def _dq(name: str) -> str:  # DML (Trino) identifier
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_database(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]{1,255}", name):
        raise UsageError(f"--database {name!r}: Athena database names are lower-case letters, digits and _")
    return name


# -- where the files are ----------------------------------------------------------------
def _plain(repo):
    if repo.encryption.enabled:
        raise UsageError(f"repository {repo.url} is encrypted (client-side): Athena cannot read its files")
    return repo


def default_location_prefix(repo) -> str | None:
    """s3://bucket/prefix/ of an S3 repository; None for a local one."""
    location = _plain(repo).location()
    return location.root if location.is_s3 else None


def backup_dir(repo, backup_id: str) -> str:
    """The backup's folder relative to the repository root (the layout template resolved)."""
    return _plain(repo).backup_dir(backup_id)


# -- the DDL ----------------------------------------------------------------------------
def athena_ddl(repo, *, backup_id: str | None = None, database: str = DEFAULT_DATABASE,
               location_prefix: str | None = None, resources: list[str] | None = None) -> str:
    """The statements (`;`-terminated, in order) that make the tables and views.

    Without backup_id: partitions for every complete backup of the latest backup's source,
    state views at the latest backup. With backup_id: partitions for that backup's chain only,
    state views at it. location_prefix: the s3:// URL of the repository root (default: the
    S3 repository's own; required for a local repository, e.g. where it is synced to)."""
    database = _check_database(database)
    prefix = location_prefix or default_location_prefix(repo)
    if not prefix:
        raise UsageError(f"repository {repo.url} is local: give --location-prefix s3://bucket/prefix/ "
                         "(where Athena finds this repository's folders)")
    if not prefix.startswith("s3://"):
        raise UsageError(f"--location-prefix {prefix!r}: Athena reads s3://bucket/prefix/ locations")
    prefix = prefix.rstrip("/") + "/"
    manifests = complete_manifests(repo)
    if not manifests:
        raise NotFound(f"no complete backup in {repo.url}")
    by_id = {m.id: m for m in manifests}
    if backup_id is None:
        target = manifests[-1]
        scope = [m for m in manifests if m.source_url == target.source_url]
    else:
        if backup_id not in by_id:
            raise NotFound(f"backup {backup_id} is not a complete backup of {repo.url}")
        target = by_id[backup_id]
        scope = [by_id[i] for i in target.chain if i in by_id]
    chosen = list(target.resources) if not resources else resources
    missing = [r for r in chosen if r not in target.resources]
    if missing:
        raise NotFound(f"backup {target.id} does not hold resource(s) {', '.join(missing)}")

    def location(bid: str) -> str:
        return prefix + backup_dir(repo, bid).strip("/") + "/"

    names_cache: dict[str, list[str]] = {}

    def has_mirror(m: dict, resource: str) -> str | None:
        entry = m.resources[resource]
        name = entry.parquet.file if entry.parquet else mirror_name(entry)
        if m.id not in names_cache:
            names_cache[m.id] = repo.file_names(m.id)
        return name if name in names_cache[m.id] else None

    out = [
        f"-- Athena DDL for the s3db.js backups in {repo.url} (generated by backup-pipeline athena-ddl)",
        f"-- backups: {len(scope)} ({scope[0].id} .. {scope[-1].id}); state views at {target.id}",
        "-- query the views (<resource>_jsonl, <resource>_parquet, <resource>_state), not the *__files tables:",
        "-- a backup folder holds every resource's files, the views pick this resource's by \"$path\".",
        f"CREATE DATABASE IF NOT EXISTS {_bt(database)};",
    ]
    for resource in chosen:
        schema = arrow_schema(resource_attributes(target, resource))
        t = table_name(resource)
        holding = [m for m in scope if resource in m.resources]
        jsonl = [(m.id, f.file) for m in holding for f in m.resources[resource].data_files()  # every part
                 if f.compression != "brotli"]
        skipped = sorted({m.id for m in holding for f in m.resources[resource].data_files() if f.compression == "brotli"})
        parquet = [(m.id, name) for m in holding if (name := has_mirror(m, resource))]
        out.append(f"\n-- resource {resource}: {len(schema)} columns typed from its s3db schema")
        if skipped:
            out.append(f"-- brotli is not readable by Athena: skipped {resource} in {', '.join(skipped)}")
        json_fields = [f for f in schema if f.name != "_extra"]
        if jsonl:
            out += _table(database, f"{t}__jsonl_files", json_fields, prefix, jsonl, location, "json")
            out.append(_files_view(database, f"{t}_jsonl", f"{t}__jsonl_files", json_fields, jsonl, location))
        if parquet:
            out += _table(database, f"{t}__parquet_files", list(schema), prefix, parquet, location, "parquet")
            out.append(_files_view(database, f"{t}_parquet", f"{t}__parquet_files", list(schema), parquet, location))
        chain = [m.id for m in reversed(resource_chain(repo, target, resource))]  # oldest first
        if all(b in dict(parquet) for b in chain):
            out.append(_state_view(database, t, f"{t}_parquet", list(schema), chain))
        elif all(b in dict(jsonl) for b in chain):
            out.append(_state_view(database, t, f"{t}_jsonl", json_fields, chain))
        else:
            out.append(f"-- no {t}_state view: part of the chain of {target.id} is brotli")
    return "\n".join(out) + "\n"


def _table(database: str, name: str, fields: list[pa.Field], prefix: str, files: list[tuple[str, str]],
           location, kind: str) -> list[str]:
    cols = ",\n".join(f"  {_bt(f.name)} {hive_type(f.type)}" for f in fields)
    if kind == "json":
        storage = (f"ROW FORMAT SERDE '{JSON_SERDE}'\n"
                   "WITH SERDEPROPERTIES ('case.insensitive' = 'true')\n"
                   "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
                   "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'")
    else:
        storage = "STORED AS PARQUET"
    stmts = [f"CREATE EXTERNAL TABLE IF NOT EXISTS {_bt(database)}.{_bt(name)} (\n{cols}\n)\n"
             f"PARTITIONED BY ({_bt(PARTITION_COLUMN)} string)\n{storage}\nLOCATION {_lit(prefix)};"]
    parts = "\n".join(f"  PARTITION ({_bt(PARTITION_COLUMN)} = {_lit(bid)}) LOCATION {_lit(location(bid))}"
                      for bid in dict.fromkeys(bid for bid, _ in files))  # a sharded resource: a backup's parts share it
    stmts.append(f"ALTER TABLE {_bt(database)}.{_bt(name)} ADD IF NOT EXISTS\n{parts};")
    return stmts


def _select_list(fields: list[pa.Field]) -> str:
    out = []
    for f in fields:
        if f.name == "_deleted":
            out.append(f"coalesce({_dq(f.name)}, false) AS {_dq(f.name)}")
        else:
            out.append(_dq(f.name))
    return ", ".join(out + [_dq(PARTITION_COLUMN)])


def _files_view(database: str, view: str, table: str, fields: list[pa.Field], files: list[tuple[str, str]],
                location) -> str:
    paths = ",\n    ".join(_lit(location(bid) + name) for bid, name in files)
    return (f"CREATE OR REPLACE VIEW {_dq(database)}.{_dq(view)} AS\n"
            f"SELECT {_select_list(fields)}\nFROM {_dq(database)}.{_dq(table)}\n"
            f"WHERE \"$path\" IN (\n    {paths});")


def _state_view(database: str, t: str, lines_view: str, fields: list[pa.Field], chain: list[str]) -> str:
    cols = ", ".join([_dq(f.name) for f in fields] + [_dq(PARTITION_COLUMN)])
    rank = " ".join(f"WHEN {_lit(b)} THEN {i}" for i, b in enumerate(chain))
    ids = ", ".join(_lit(b) for b in chain)
    return (f"CREATE OR REPLACE VIEW {_dq(database)}.{_dq(t + '_state')} AS\n"
            f"SELECT {cols}\nFROM (\n"
            f"  SELECT *, row_number() OVER (PARTITION BY \"id\" ORDER BY CASE {_dq(PARTITION_COLUMN)} {rank} END DESC) AS \"_rn\"\n"
            f"  FROM {_dq(database)}.{_dq(lines_view)}\n"
            f"  WHERE {_dq(PARTITION_COLUMN)} IN ({ids})\n"
            f") WHERE \"_rn\" = 1 AND NOT \"_deleted\";")
