"""Athena DDL (backup_pipeline.query.athena, `athena-ddl`): the statements are parsed structurally, then
translated to DuckDB — every table becomes a DuckDB view reading the same files with the DDL's
column types (JSON lines converted the way Athena's OpenX SerDe does: a scalar that does not
parse is NULL) — and the generated Athena views run verbatim on top: they must read every line
and give the same state as backup_pipeline.query.duckdb_views."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timezone

import duckdb
import orjson
import pyarrow as pa
import pytest

from backup_pipeline import Backups
from backup_pipeline.query.duckdb_views import connect, create_views
from backup_pipeline.query.athena import athena_ddl, hive_type, table_name
from backup_pipeline.cli.athena import add_parser as add_athena_parser
from backup_pipeline.errors import UsageError
from backup_pipeline.engine.parquet import resource_attributes, write_parquet_mirror
from backup_pipeline.repository import open_repository
from backup_pipeline.repository.s3 import S3Options, S3Repository
from s3db_fixtures import copy_fs_db
from test_duckdb_views import full_and_two_incrementals

PREFIX = "s3://athena-bucket/backups/"
DB = "s3db_backups"


# -- a small parser of the DDL ------------------------------------------------------------------
def statements(ddl: str) -> list[str]:
    body = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    assert body.rstrip().endswith(";")
    return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";")]


_TOKEN = re.compile(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*|[<>,:()])")
PRIMITIVES = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN",
              "timestamp": "TIMESTAMP", "date": "DATE"}


def tokens(text: str) -> list[str]:
    out, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        assert m, f"unexpected DDL text at {text[i:i + 40]!r}"
        out.append(m.group(1))
        i = m.end()
    return out


def _name(tok: str) -> str:
    return tok[1:-1].replace("``", "`") if tok.startswith("`") else tok


def parse_type(toks: list[str], i: int):
    """(DuckDB type, json_transform structure, next index) of a Hive type at toks[i]."""
    t = toks[i].lower()
    if t in PRIMITIVES:
        return PRIMITIVES[t], PRIMITIVES[t], i + 1
    if t == "array":
        assert toks[i + 1] == "<"
        duck, struct, j = parse_type(toks, i + 2)
        assert toks[j] == ">"
        return f"{duck}[]", [struct], j + 1
    if t == "struct":
        assert toks[i + 1] == "<"
        j, fields = i + 2, []
        while True:
            name = _name(toks[j])
            assert toks[j + 1] == ":"
            duck, struct, j = parse_type(toks, j + 2)
            fields.append((name, duck, struct))
            if toks[j] == ">":
                break
            assert toks[j] == ","
            j += 1
        duck = "STRUCT(" + ", ".join(f'"{n}" {d}' for n, d, _ in fields) + ")"
        return duck, {n: s for n, _, s in fields}, j + 1
    raise AssertionError(f"unknown Hive type {toks[i]!r}")


def parse_columns(cols: str) -> list[tuple]:
    """(name, DuckDB type, json_transform structure) of each column of a CREATE TABLE."""
    toks, i, columns = tokens(cols), 0, []
    while i < len(toks):
        col = _name(toks[i])
        duck, struct, i = parse_type(toks, i + 1)
        columns.append((col, duck, struct))
        if i < len(toks):
            assert toks[i] == ",", toks[i:i + 3]
            i += 1
    return columns


def parse_table(stmt: str) -> dict:
    m = re.match(r"CREATE EXTERNAL TABLE IF NOT EXISTS `(\w+)`\.`(\w+)` \((.*)\)\nPARTITIONED BY \((.*?)\)\n(.*)"
                 r"\nLOCATION '([^']*)'$", stmt, re.S)
    assert m, stmt[:200]
    database, name, cols, part, storage, location = m.groups()
    columns = parse_columns(cols)
    ptoks = tokens(part)
    assert len(ptoks) == 2 and ptoks[1] == "string"
    kind = "json" if "org.openx.data.jsonserde.JsonSerDe" in storage else "parquet"
    assert kind == "json" or storage == "STORED AS PARQUET"
    return {"database": database, "name": name, "columns": columns, "partition": _name(ptoks[0]),
            "kind": kind, "location": location, "partitions": {}}


def parse(ddl: str) -> tuple[dict, list[str]]:
    tables, views = {}, []
    for stmt in statements(ddl):
        if stmt.startswith("CREATE DATABASE"):
            assert stmt == f"CREATE DATABASE IF NOT EXISTS `{DB}`"
        elif stmt.startswith("CREATE EXTERNAL TABLE"):
            t = parse_table(stmt)
            tables[t["name"]] = t
        elif stmt.startswith("ALTER TABLE"):
            m = re.match(r"ALTER TABLE `(\w+)`\.`(\w+)` ADD IF NOT EXISTS\n(.*)$", stmt, re.S)
            parts = re.findall(r"PARTITION \(`(\w+)` = '([^']*)'\) LOCATION '([^']*)'", m.group(3))
            assert len(parts) == m.group(3).count("PARTITION (")
            for col, value, loc in parts:
                assert col == tables[m.group(2)]["partition"] and loc.startswith(tables[m.group(2)]["location"])
                tables[m.group(2)]["partitions"][value] = loc
        elif stmt.startswith("CREATE OR REPLACE VIEW"):
            views.append(stmt)
        else:
            raise AssertionError(f"unexpected statement {stmt[:80]!r}")
    return tables, views


# -- the DuckDB translation ---------------------------------------------------------------------
def translate(con, tables: dict, views: list[str], repo_root: str) -> None:
    """Each table -> a DuckDB view over the partitions' files that the views select by $path
    (what Athena reads), with the DDL's types; then the Athena views, verbatim."""
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{DB}"')
    for t in tables.values():
        picking = [v for v in views if f'FROM "{DB}"."{t["name"]}"\n' in v]
        assert len(picking) == 1, t["name"]
        listed = set(re.findall(r"'(s3://[^']*)'", picking[0].split('"$path" IN', 1)[1]))
        parts = []
        for value, loc in t["partitions"].items():
            for url in sorted(u for u in listed if u.startswith(loc) and "/" not in u[len(loc):]):
                local = repo_root + "/" + url[len(PREFIX):]
                if t["kind"] == "json":
                    cols = ", ".join(f"'{c}': 'JSON'" for c, _, _ in t["columns"])
                    exprs = ", ".join(f"json_transform(\"{c}\", '{orjson.dumps(s).decode()}') AS \"{c}\""
                                      for c, _, s in t["columns"])
                    src = f"read_json('{local}', format='newline_delimited', compression='auto_detect', columns={{{cols}}})"
                else:
                    exprs = ", ".join(f'CAST("{c}" AS {d}) AS "{c}"' for c, d, _ in t["columns"])
                    src = f"read_parquet('{local}')"
                parts.append(f"SELECT {exprs}, '{value}' AS \"{t['partition']}\", '{url}' AS \"$path\" FROM {src}")
        assert parts, f"{t['name']}: no file"
        con.execute(f'CREATE OR REPLACE VIEW "{DB}"."{t["name"]}" AS {" UNION ALL ".join(parts)}')
    for v in views:
        con.execute(v)


def _naive_utc(v):
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, dict):
        return {k: _naive_utc(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_naive_utc(x) for x in v]
    return v


def table_rows(con, sql: str, columns: list[str]) -> list[str]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(names, row))
        out.append(repr({c: _naive_utc(d[c]) for c in columns}))
    return sorted(out)


# -- tests --------------------------------------------------------------------------------------
@pytest.fixture
def chain(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    manifests = full_and_two_incrementals(b)
    for m in manifests[:2]:  # mirrors for the full and the first incremental only
        for name, entry in m["resources"].items():
            write_parquet_mirror(b.repo, m["id"], entry, resource_attributes(m, name))
    return b, manifests


def test_ddl_parses_and_its_duckdb_translation_reads_every_line(chain):
    b, manifests = chain
    ddl = athena_ddl(b.repo, location_prefix=PREFIX)
    tables, views = parse(ddl)
    names = [table_name(r) for r in manifests[-1]["resources"]]
    assert set(tables) == {f"{n}__jsonl_files" for n in names} | {f"{n}__parquet_files" for n in names}
    users = tables["users__jsonl_files"]
    types = dict((c, d) for c, d, _ in users["columns"])
    assert users["columns"][0][0] == "id" and users["kind"] == "json" and users["location"] == PREFIX
    assert (types["age"], types["score"], types["active"], types["createdAt"], types["tags"], types["lucky"]) == (
        "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP", "VARCHAR[]", "BIGINT[]")
    assert types["profile"] == 'STRUCT("city" VARCHAR, "bio" VARCHAR, "links" STRUCT("site" VARCHAR))'
    assert "_extra" not in types and "_extra" in dict((c, d) for c, d, _ in tables["users__parquet_files"]["columns"])
    assert list(users["partitions"]) == [m["id"] for m in manifests]
    assert list(tables["users__parquet_files"]["partitions"]) == [m["id"] for m in manifests[:2]]
    assert users["partitions"][manifests[0]["id"]] == f"{PREFIX}{manifests[0]['id']}/"
    assert f'"$path" IN (\n    \'{PREFIX}{manifests[0]["id"]}/users.jsonl.gz\'' in ddl

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    translate(con, tables, views, str(b.repo.root))
    for m in manifests:
        for name, entry in m["resources"].items():
            t = table_name(name)
            n = con.execute(f'SELECT count(*), count(*) FILTER (WHERE "_deleted") FROM "{DB}"."{t}_jsonl" '
                            f'WHERE "_backup_id" = ?', [m["id"]]).fetchone()
            assert n == (entry["lines"], entry["tombstones"]), f"{m['id']}/{name}"
            if m is not manifests[-1]:
                assert con.execute(f'SELECT count(*) FROM "{DB}"."{t}_parquet" WHERE "_backup_id" = ?',
                                   [m["id"]]).fetchone()[0] == entry["lines"]
    # the state view (over JSONL: the latest backup has no mirror) is the analytics state
    ana = connect(b.repo)
    create_views(ana, b.repo)
    for name in manifests[-1]["resources"]:
        cols = [c for c, _, _ in tables[f"{table_name(name)}__jsonl_files"]["columns"]] + ["_backup_id"]
        quoted = ", ".join(f'"{c}"' for c in cols)
        assert table_rows(con, f'SELECT {quoted} FROM "{DB}"."{table_name(name)}_state"', cols) == \
            table_rows(ana, f'SELECT {quoted} FROM "{name}__state"', cols), name
    assert 'FROM "s3db_backups"."users_jsonl"' in next(v for v in views if '"users_state"' in v)


def test_pointing_at_one_backup_uses_its_chain_and_the_parquet_mirrors(chain):
    b, manifests = chain
    target = manifests[1]
    ddl = athena_ddl(b.repo, backup_id=target["id"], location_prefix=PREFIX.rstrip("/"), database="analytics")
    ddl_db = ddl.replace("`analytics`", f"`{DB}`").replace('"analytics"', f'"{DB}"')
    tables, views = parse(ddl_db)
    assert list(tables["events__jsonl_files"]["partitions"]) == [m["id"] for m in manifests[:2]]
    state = next(v for v in views if '"events_state"' in v)
    assert 'FROM "s3db_backups"."events_parquet"' in state  # every chain backup has a mirror
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    translate(con, tables, views, str(b.repo.root))
    ana = connect(b.repo)
    create_views(ana, b.repo, backup_id=target["id"])
    for name in target["resources"]:
        cols = [c for c, _, _ in tables[f"{table_name(name)}__jsonl_files"]["columns"]] + ["_backup_id"]
        quoted = ", ".join(f'"{c}"' for c in cols)
        assert table_rows(con, f'SELECT {quoted} FROM "{DB}"."{table_name(name)}_state"', cols) == \
            table_rows(ana, f'SELECT {quoted} FROM "{name}__state"', cols), name
    assert con.execute(f'SELECT list(id ORDER BY id) FROM "{DB}"."events_state"').fetchone()[0] == ["e1", "e2", "e3"]


def test_cli_prints_the_ddl(chain, capsys):
    b, manifests = chain
    parser = argparse.ArgumentParser(prog="backup-pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    add_athena_parser(sub)
    args = parser.parse_args(["athena-ddl", "--repo", str(b.repo.root), "--location-prefix", PREFIX,
                              "--database", "mydb", "--resource", "users"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- Athena DDL") and "CREATE DATABASE IF NOT EXISTS `mydb`;" in out
    assert "`mydb`.`users__jsonl_files`" in out and "events" not in out.split("-- resource users")[1]
    assert hive_type(pa.list_(pa.int64())) == "array<bigint>"


def test_refusals_and_brotli(tmp_path, chain):
    b, _ = chain
    with pytest.raises(UsageError, match="location-prefix"):
        athena_ddl(b.repo)
    with pytest.raises(UsageError, match="s3://"):
        athena_ddl(b.repo, location_prefix="/somewhere")
    with pytest.raises(UsageError, match="database"):
        athena_ddl(b.repo, location_prefix=PREFIX, database="Bad-Name")
    src = f"file://{copy_fs_db(tmp_path / 'src2')}"
    enc = open_repository(str(tmp_path / "enc"), passphrase="pw", encrypt=True)
    Backups(src, enc).backup("full", resources=["notes"])
    with pytest.raises(UsageError, match="encrypted"):
        athena_ddl(enc, location_prefix=PREFIX)
    br = Backups(src, str(tmp_path / "br"))
    br.backup("full", resources=["notes"], compression="brotli")
    ddl = athena_ddl(br.repo, location_prefix=PREFIX)
    assert "brotli is not readable by Athena" in ddl and "notes__jsonl_files" not in ddl
    assert "no notes_state view" in ddl


def test_s3_repository_locations_default_to_the_bucket(tmp_path, moto_server, bucket_name):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    repo = S3Repository(f"s3://{bucket_name}/team/backups/{{type}}/{{id}}", S3Options(
        endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
        secret_access_key=moto_server.secret_key))
    m = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo).backup("full", resources=["events"])
    tables, _ = parse(athena_ddl(repo, backup_id=m["id"]))  # pinned to a backup (default: projection)
    t = tables["events__jsonl_files"]
    assert t["location"] == f"s3://{bucket_name}/team/backups/"
    assert t["partitions"] == {m["id"]: f"s3://{bucket_name}/team/backups/full/{m['id']}/"}
