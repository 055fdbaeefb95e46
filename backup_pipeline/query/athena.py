"""Athena (Trino) DDL over the backups in place: JSON SerDe tables over RESOURCE.jsonl.gz,
Parquet tables over the RESOURCE.parquet mirrors, and views, in two forms.

Over an S3 repository (`projected_ddl`, the default there): every table is partitioned by day
(`dt`) with partition projection over the repository's `tables/` folder (engine/tables.py: per
backup and resource a symlink list of its data files, and a row with the resource's chain), so
the DDL is run once and later backups need none; `R_state` takes the latest backup's chain from
the rows table. Pinned to a backup (`--backup`), or over a local repository synced to S3
(`--location-prefix`), the form below: a partition per backup, views naming its files.

Per resource R, pinned form (table names lower-cased, other characters than [a-z0-9_] made `_`):

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
from ..engine.tables import ROWS, athena_copy, day, mend_tables, table_root
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
    if backup_id is None and location_prefix is None and athena_copy(_plain(repo)) is not None:
        return projected_ddl(repo, database=database, resources=resources)
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


# -- partition projection over the table files (engine/tables.py) ------------------------
SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
DAY_COLUMN = "dt"
ROW_FIELDS = [pa.field("backup_id", pa.string()), pa.field("type", pa.string()), pa.field("parent", pa.string()),
              pa.field("source", pa.string()), pa.field("started_at", pa.string()),
              pa.field("finished_at", pa.string()), pa.field("resource", pa.string()),
              pa.field("chain", pa.list_(pa.string())), pa.field("since", pa.string()),
              pa.field("records", pa.int64()), pa.field("tombstones", pa.int64()), pa.field("bytes", pa.int64())]


def projected_ddl(repo, *, database: str = DEFAULT_DATABASE, resources: list[str] | None = None) -> str:
    """DDL that stays right as backups come and go: every table partitioned by the day (`dt`)
    with partition projection over the repository's `tables/` folder, so Athena finds new
    backups' files with no new DDL; the state views pick the latest backup from the rows table.
    Only the schema (a new resource or field) calls for running it again. Committed backups
    whose table files are missing (made before they existed, or a crash after the commit) get
    them written first."""
    manifests = complete_manifests(repo)
    if not manifests:
        raise NotFound(f"no complete backup in {repo.url}")
    mended = mend_tables(repo, manifests)
    copy = athena_copy(repo)  # a multi repository: its first S3 destination
    target = manifests[-1]
    chosen = list(target.resources) if not resources else resources
    missing = [r for r in chosen if r not in target.resources]
    if missing:
        raise NotFound(f"backup {target.id} does not hold resource(s) {', '.join(missing)}")
    first_day = min(day(m) for m in manifests)
    path_id = _backup_id_pattern(copy, manifests)
    rows = f"{ROWS}__files"
    out = [
        f"-- Athena DDL for the s3db.js backups in {repo.url} (generated by backup-pipeline athena-ddl)",
        f"-- partition projection over {table_root(copy)}: backups made later are read with no new DDL;",
        "-- run this again only when a resource or a field is added. Query the views (backups, backup_resources,",
        "-- <resource>_jsonl, <resource>_parquet, <resource>_state), not the *__files tables.",
    ]
    if mended.missing or mended.stale:
        out.append(f"-- mended the table files: written for {len(mended.missing)} committed backup(s) that had none, "
                   f"removed for {len(mended.stale)} backup(s) no longer committed")
    out += [
        f"CREATE DATABASE IF NOT EXISTS {_bt(database)};",
        _projected_table(database, rows, ROW_FIELDS, table_root(copy, ROWS), "rows", first_day),
        f"CREATE OR REPLACE VIEW {_dq(database)}.{_dq(ROWS)} AS\n"
        f"SELECT {', '.join(_dq(f.name) for f in ROW_FIELDS)}, {_dq(DAY_COLUMN)}\nFROM {_dq(database)}.{_dq(rows)};",
        f"CREATE OR REPLACE VIEW {_dq(database)}.\"backups\" AS\n"
        "SELECT DISTINCT \"backup_id\" AS \"id\", \"type\", \"parent\", \"source\", \"started_at\", \"finished_at\", "
        f"{_dq(DAY_COLUMN)}\nFROM {_dq(database)}.{_dq(rows)};",
    ]
    if any(f.compression in ("brotli",) for m in manifests for e in m.resources.values() for f in e.data_files()):
        out.append("-- brotli files are not readable by Athena: they are left out of the tables")
    for resource in chosen:
        schema = arrow_schema(resource_attributes(target, resource))
        t = table_name(resource)
        json_fields = [f for f in schema if f.name != "_extra"]
        out.append(f"\n-- resource {resource}: {len(schema)} columns typed from its s3db schema")
        out.append(_projected_table(database, f"{t}__jsonl_files", json_fields,
                                    table_root(copy, "jsonl", resource), "json", first_day))
        out.append(_projected_view(database, f"{t}_jsonl", f"{t}__jsonl_files", json_fields, path_id))
        out.append(_projected_table(database, f"{t}__parquet_files", list(schema),
                                    table_root(copy, "parquet", resource), "parquet", first_day))
        out.append(_projected_view(database, f"{t}_parquet", f"{t}__parquet_files", list(schema), path_id))
        out.append(_latest_state_view(database, t, resource, json_fields, rows))
    return "\n".join(out) + "\n"


def _backup_id_pattern(repo, manifests) -> str:
    """A regular expression (Java and RE2 alike) taking the backup id out of a data file's
    "$path": the folder's last segment is the template's, e.g. `{id}` or `backup_id={id}`."""
    shapes = set()
    for m in manifests:
        segment = repo.backup_dir(m.id).strip("/").rsplit("/", 1)[-1]
        before, _, after = segment.partition(m.id)
        shapes.add((before, after))
    if len(shapes) != 1:
        raise UsageError(f"repository {repo.url}: the last segment of its path template must be {{id}} with fixed "
                         "text around it for Athena to read the backup id from a file's path")
    before, after = shapes.pop()
    return f"/{re.escape(before)}([^/]+){re.escape(after)}/[^/]+$"


def _projected_table(database: str, name: str, fields: list[pa.Field], location: str, kind: str,
                     first_day: str) -> str:
    cols = ",\n".join(f"  {_bt(f.name)} {hive_type(f.type)}" for f in fields)
    if kind == "parquet":  # a symlink list of mirrors
        storage = (f"ROW FORMAT SERDE '{PARQUET_SERDE}'\n"
                   f"STORED AS INPUTFORMAT '{SYMLINK_INPUT}'\nOUTPUTFORMAT '{TEXT_OUTPUT}'")
    else:  # JSON lines: the rows table's own files, or a symlink list of the data files
        storage = (f"ROW FORMAT SERDE '{JSON_SERDE}'\n"
                   "WITH SERDEPROPERTIES ('case.insensitive' = 'true')\n"
                   f"STORED AS INPUTFORMAT '{TEXT_INPUT if kind == 'rows' else SYMLINK_INPUT}'\n"
                   f"OUTPUTFORMAT '{TEXT_OUTPUT}'")
    props = {"projection.enabled": "true", f"projection.{DAY_COLUMN}.type": "date",
             f"projection.{DAY_COLUMN}.format": "yyyy-MM-dd", f"projection.{DAY_COLUMN}.range": f"{first_day},NOW",
             f"projection.{DAY_COLUMN}.interval": "1", f"projection.{DAY_COLUMN}.interval.unit": "DAYS",
             "storage.location.template": f"{location}{DAY_COLUMN}=${{{DAY_COLUMN}}}/"}
    tblprops = ",\n".join(f"  {_lit(k)} = {_lit(v)}" for k, v in props.items())
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS {_bt(database)}.{_bt(name)} (\n{cols}\n)\n"
            f"PARTITIONED BY ({_bt(DAY_COLUMN)} string)\n{storage}\nLOCATION {_lit(location)}\n"
            f"TBLPROPERTIES (\n{tblprops}\n);")


def _projected_view(database: str, view: str, table: str, fields: list[pa.Field], path_id: str) -> str:
    cols = [f"coalesce({_dq(f.name)}, false) AS {_dq(f.name)}" if f.name == "_deleted" else _dq(f.name)
            for f in fields]
    return (f"CREATE OR REPLACE VIEW {_dq(database)}.{_dq(view)} AS\n"
            f"SELECT {', '.join(cols)}, regexp_extract(\"$path\", {_lit(path_id)}, 1) AS {_dq(PARTITION_COLUMN)}, "
            f"{_dq(DAY_COLUMN)}\nFROM {_dq(database)}.{_dq(table)};")


def _latest_state_view(database: str, t: str, resource: str, fields: list[pa.Field], rows: str) -> str:
    """The state at the latest backup holding the resource: its chain's lines (from the rows
    table), the newest line per id winning, tombstoned ids removed."""
    cols = ", ".join([_dq(f.name) for f in fields] + [_dq(PARTITION_COLUMN)])
    line_cols = ", ".join(f"l.{_dq(f.name)}" for f in fields) + f", l.{_dq(PARTITION_COLUMN)}"
    return (f"CREATE OR REPLACE VIEW {_dq(database)}.{_dq(t + '_state')} AS\n"
            f"SELECT {cols}\nFROM (\n"
            f"  SELECT {line_cols}, row_number() OVER (PARTITION BY l.\"id\" "
            f"ORDER BY array_position(c.\"chain\", l.{_dq(PARTITION_COLUMN)}) DESC) AS \"_rn\"\n"
            f"  FROM {_dq(database)}.{_dq(t + '_jsonl')} l\n"
            f"  JOIN (SELECT \"chain\", \"since\" FROM {_dq(database)}.{_dq(rows)} WHERE \"resource\" = {_lit(resource)}\n"
            f"        ORDER BY \"started_at\" DESC, \"backup_id\" DESC LIMIT 1) c\n"
            f"    ON contains(c.\"chain\", l.{_dq(PARTITION_COLUMN)}) AND l.{_dq(DAY_COLUMN)} >= c.\"since\"\n"
            f") WHERE \"_rn\" = 1 AND NOT \"_deleted\";")
