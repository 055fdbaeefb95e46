"""Athena DDL with partition projection (`athena-ddl` over an S3 repository): tables whose
locations Athena computes from a template over the repository's `tables/` folder
(engine/tables.py), so backups made after the DDL are read with no new DDL.

Athena itself is emulated the way it reads these tables, over a real S3 server (moto): for each
day the projection range yields, the location template gives a folder; every object in it is a
symlink list (each line the s3:// URL of a data file, read with the DDL's column types and its
"$path") or, for the rows table, JSON lines. The generated views then run verbatim in DuckDB
and must give what the analytics views (duckdb_views) give over the same repository."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.engine.copy import copy_backup
from backup_pipeline.engine.retention import RetentionPolicy
from backup_pipeline.engine.tables import rows_name
from backup_pipeline.query.athena import athena_ddl, table_name
from backup_pipeline.query.connection import connect
from backup_pipeline.query.duckdb_views import create_views
from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.repository.multi import MultiRepository
from backup_pipeline.repository.s3 import S3Options, S3Repository
from backup_pipeline.store import retry as retry_module
from faultproxy import FaultProxy
from s3db_fixtures import copy_fs_db
from test_athena import DB, parse_columns, statements, table_rows
from test_duckdb_views import change

SYMLINK = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"


def parse_projected(ddl: str) -> tuple[dict, list[str]]:
    tables, views = {}, []
    for stmt in statements(ddl):
        if stmt.startswith("CREATE DATABASE"):
            continue
        if stmt.startswith("CREATE OR REPLACE VIEW"):
            views.append(stmt)
            continue
        m = re.match(r"CREATE EXTERNAL TABLE IF NOT EXISTS `(\w+)`\.`(\w+)` \((.*)\)\nPARTITIONED BY \(`dt` string\)\n"
                     r"(.*)\nLOCATION '([^']*)'\nTBLPROPERTIES \((.*)\)$", stmt, re.S)
        assert m, f"unexpected statement {stmt[:120]!r}"
        database, name, cols, storage, location, props = m.groups()
        columns = parse_columns(cols)
        props = dict(re.findall(r"'([^']*)' = '([^']*)'", props))
        assert props["projection.enabled"] == "true" and props["projection.dt.type"] == "date"
        assert props["storage.location.template"] == location + "dt=${dt}/"
        assert "ALTER TABLE" not in ddl  # no partition is ever added by hand
        tables[name] = {"columns": columns, "template": props["storage.location.template"],
                        "range": props["projection.dt.range"].split(","), "symlink": SYMLINK in storage,
                        "parquet": "ParquetHiveSerDe" in storage}
    return tables, views


def emulate_athena(con, tables: dict, views: list[str], client, bucket: str) -> None:
    """Each table -> a DuckDB view over what Athena would read for it today."""
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{DB}"')
    today = datetime.now(timezone.utc).date()
    for name, t in tables.items():
        start, end = t["range"]
        assert end == "NOW"
        d, parts = date.fromisoformat(start), []
        while d <= today:
            folder = t["template"].replace("${dt}", d.isoformat())
            prefix = folder[len(f"s3://{bucket}/"):]
            keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
            for key in keys:
                assert "/" not in key[len(prefix):]  # one folder per day, nothing below it
                if t["symlink"]:
                    body = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
                    urls = body.splitlines()
                else:
                    urls = [f"s3://{bucket}/{key}"]
                for url in urls:
                    parts.append(_read(t, url, d.isoformat()))
            d += timedelta(days=1)
        if not parts:  # an empty table: the columns, no row
            parts = [_read(t, None, "") + " LIMIT 0"]
        con.execute(f'CREATE OR REPLACE VIEW "{DB}"."{name}" AS {" UNION ALL ".join(parts)}')
    for v in views:
        con.execute(v)


def _read(t: dict, url: str | None, day: str) -> str:
    if url is None:
        exprs = ", ".join(f'NULL::{d} AS "{c}"' for c, d, _ in t["columns"])
        return f"SELECT {exprs}, NULL::VARCHAR AS \"dt\", NULL::VARCHAR AS \"$path\""
    if t["parquet"]:
        exprs = ", ".join(f'CAST("{c}" AS {d}) AS "{c}"' for c, d, _ in t["columns"])
        src = f"read_parquet('{url}')"
    else:  # Athena's OpenX SerDe: a scalar that does not parse is NULL
        cols = ", ".join(f"'{c}': 'JSON'" for c, _, _ in t["columns"])
        exprs = ", ".join(f"json_transform(\"{c}\", '{orjson.dumps(s).decode()}') AS \"{c}\"" for c, _, s in t["columns"])
        src = f"read_json('{url}', format='newline_delimited', compression='auto_detect', columns={{{cols}}})"
    return f"SELECT {exprs}, '{day}' AS \"dt\", '{url}' AS \"$path\" FROM {src}"


@pytest.fixture
def s3_repo(moto_server, bucket_name, request):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    return S3Repository(f"s3://{bucket_name}/backups/{request.param}", S3Options(
        endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
        secret_access_key=moto_server.secret_key))


def same_as_analytics(repo, ddl, client, bucket, resources) -> None:
    con = connect(repo)
    con.execute("SET TimeZone = 'UTC'")
    tables, views = parse_projected(ddl)
    emulate_athena(con, tables, views, client, bucket)
    ana = connect(repo)
    create_views(ana, repo)
    for name in resources:
        cols = [c for c, _, _ in tables[f"{table_name(name)}__jsonl_files"]["columns"]] + ["_backup_id"]
        quoted = ", ".join(f'"{c}"' for c in cols)
        assert table_rows(con, f'SELECT {quoted} FROM "{DB}"."{table_name(name)}_state"', cols) == \
            table_rows(ana, f'SELECT {quoted} FROM "{name}__state"', cols), name
    return con


@pytest.mark.parametrize("s3_repo", ["", "dt={date}/backup_id={id}"], indirect=True, ids=["plain", "hive"])
def test_backups_made_after_the_ddl_are_read_with_the_same_ddl(tmp_path, s3_repo, moto_server, bucket_name):
    repo, client = s3_repo, moto_server.boto_client()
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo)
    full = b.backup("full", parquet=True)
    ddl = athena_ddl(repo)
    resources = list(full["resources"])
    con = same_as_analytics(repo, ddl, client, bucket_name, resources)
    assert con.execute(f'SELECT id, type FROM "{DB}"."backups"').fetchall() == [(full["id"], "full")]
    assert con.execute(f'SELECT count(*) FROM "{DB}"."users_parquet"').fetchone()[0] == full["resources"]["users"]["lines"]

    change(b.store, 1)
    inc1 = b.backup("incremental")
    change(b.store, 2)
    inc2 = b.backup("incremental")
    assert athena_ddl(repo) == ddl  # nothing to add for new backups, nothing to mend
    con = same_as_analytics(repo, ddl, client, bucket_name, resources)
    for m in (full, inc1, inc2):
        for name, entry in m["resources"].items():
            n = con.execute(f'SELECT count(*), count(*) FILTER (WHERE "_deleted") FROM "{DB}"."{table_name(name)}_jsonl" '
                            f'WHERE "_backup_id" = ?', [m["id"]]).fetchone()
            assert n == (entry["lines"], entry["tombstones"]), f"{m['id']}/{name}"
    assert [r[0] for r in con.execute(f'SELECT id FROM "{DB}"."backups" ORDER BY started_at').fetchall()] == \
        [full["id"], inc1["id"], inc2["id"]]
    chain = con.execute(f'SELECT chain FROM "{DB}"."backup_resources" WHERE backup_id = ? AND resource = ?',
                        [inc2["id"], "users"]).fetchone()[0]
    assert chain == [full["id"], inc1["id"], inc2["id"]]

    # a crash between a commit and its table files: the backup is not seen until athena-ddl mends it
    client.delete_object(Bucket=bucket_name, Key=f"backups/{rows_name(inc2)}")
    con = connect(repo)
    emulate_athena(con, *parse_projected(ddl), client, bucket_name)
    assert inc2["id"] not in [r[0] for r in con.execute(f'SELECT id FROM "{DB}"."backups"').fetchall()]
    # and a backup deleted by hand (not by retention) leaves table files naming files that are gone
    gone = Backups(f"file://{tmp_path / 'src'}", repo).backup("incremental")
    repo.delete_backup(gone["id"])
    report = b.check()
    assert (report.without_tables, report.stale_tables, report.problems) == ([inc2["id"]], [gone["id"]], [])
    mended = athena_ddl(repo)
    assert statements(mended) == statements(ddl)  # the same DDL, after a comment saying what was mended
    assert "written for 1 committed backup(s) that had none, removed for 1 backup(s) no longer committed" in mended
    assert (b.check().without_tables, b.check().stale_tables) == ([], [])
    same_as_analytics(repo, ddl, client, bucket_name, resources)

    # retention removes a whole chain: its table files go before its files, the state follows the new full
    newer = b.backup("full")
    b.cleanup(RetentionPolicy(keep_last=1), apply=True)
    con = same_as_analytics(repo, ddl, client, bucket_name, resources)
    assert con.execute(f'SELECT id FROM "{DB}"."backups"').fetchall() == [(newer["id"],)]
    left = [o["Key"] for o in client.list_objects_v2(Bucket=bucket_name, Prefix="backups/tables/")["Contents"]]
    assert left and all(newer["id"] in key for key in left)


def test_a_local_or_encrypted_repository_keeps_no_table_files(tmp_path, moto_server, bucket_name):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    b.backup("full", resources=["users"])
    assert not (tmp_path / "repo" / "tables").exists()
    ddl = athena_ddl(b.repo, location_prefix="s3://x/y/")  # a local repository: partitions per backup
    assert "ALTER TABLE" in ddl and "projection.enabled" not in ddl


def test_a_backup_copied_into_an_s3_repository_gets_table_files_naming_its_copy(tmp_path, moto_server, bucket_name):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    dst = S3Repository(f"s3://{bucket_name}/copies", S3Options(
        endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
        secret_access_key=moto_server.secret_key))
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    m = b.backup("full", resources=["users", "events"])
    copy_backup(b.repo, dst, m["id"])
    listed = dst.read_root(f"tables/jsonl/users/dt={m['id'].split('-', 1)[1][:10]}/{m['id']}.txt").decode()
    assert listed == f"s3://{bucket_name}/copies/{m['id']}/users.jsonl.gz\n"
    rows = [orjson.loads(line) for line in dst.read_root(rows_name(m)).splitlines()]
    assert [(r["resource"], r["chain"], r["records"]) for r in rows] == [
        ("users", [m["id"]], m["resources"]["users"]["records"]), ("events", [m["id"]], m["resources"]["events"]["records"])]


def test_table_files_that_cannot_be_written_leave_a_committed_backup_and_a_warning(tmp_path, moto_server, bucket_name,
                                                                                  monkeypatch, caplog):
    """Every PUT under tables/ answered 500 (a fault proxy in front of moto): the backup still
    commits (it is whole without them), says why on the log, `check` names it, and athena-ddl
    through a working endpoint writes them."""
    monkeypatch.setattr(retry_module, "DEFAULT", retry_module.RetryPolicy(attempts=2, first_pause=0.01, max_pause=0.01))
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    upstream = int(moto_server.endpoint.rsplit(":", 1)[1])

    def repository(endpoint: str) -> S3Repository:
        return S3Repository(f"s3://{bucket_name}/backups", S3Options(
            endpoint_url=endpoint, access_key_id=moto_server.access_key, secret_access_key=moto_server.secret_key))

    with FaultProxy(upstream, rate=1.0, faults=("500",), methods=("PUT",), paths="/tables/") as proxy:
        b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repository(proxy.endpoint))
        with caplog.at_level("WARNING"):
            m = b.backup("full", resources=["users"])
        assert proxy.counts["PUT 500"] >= 2
    assert f"backup {m['id']} is committed, but its Athena table files were not written" in caplog.text
    repo = repository(moto_server.endpoint)
    assert [i.id for i in Backups(None, repo).list()] == [m["id"]]
    assert Backups(None, repo).check().without_tables == [m["id"]]
    assert "written for 1 committed backup(s) that had none" in athena_ddl(repo)
    assert Backups(None, repo).check().without_tables == []


def test_each_s3_destination_of_a_multi_repository_gets_table_files_naming_its_own_copy(tmp_path, moto_server,
                                                                                      bucket_name):
    client = moto_server.boto_client()
    client.create_bucket(Bucket=bucket_name)
    opts = S3Options(endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
                     secret_access_key=moto_server.secret_key)
    a, b = (S3Repository(f"s3://{bucket_name}/{name}", opts) for name in ("a", "b"))
    multi = MultiRepository([FilesystemRepository(tmp_path / "local"), a, b], "all")
    backups = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", multi)
    m = backups.backup("full", resources=["users"])
    day = m["id"].split("-", 1)[1][:10]
    for copy, prefix in ((a, "a"), (b, "b")):
        listed = copy.read_root(f"tables/jsonl/users/dt={day}/{m['id']}.txt").decode()
        assert listed == f"s3://{bucket_name}/{prefix}/{m['id']}/users.jsonl.gz\n"
    assert not (tmp_path / "local" / "tables").exists()
    ddl = athena_ddl(multi)  # over the first S3 destination
    assert f"s3://{bucket_name}/a/tables/jsonl/users/dt=${{dt}}/" in ddl and "/b/" not in ddl
    # deleted by hand from one destination only: its table files go there, the other's stay
    b.delete_backup(m["id"])
    assert backups.check().stale_tables == [m["id"]]
    athena_ddl(multi)
    assert b.read_root(rows_name(m)) is None and a.read_root(rows_name(m)) is not None
    assert backups.check().stale_tables == []


def test_a_backup_id_without_a_date_is_placed_by_the_day_it_started(tmp_path, moto_server, bucket_name):
    """--backup-id may name a backup anything (no date in it): its table files go under the day
    its manifest says it started, and the DDL reads it."""
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    repo = S3Repository(f"s3://{bucket_name}/backups", S3Options(
        endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
        secret_access_key=moto_server.secret_key))
    m = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo).backup("full", resources=["users"], backup_id="nightly")
    assert repo.read_root(f"tables/backup_resources/dt={m.started_at[:10]}/nightly.json") is not None
    con = same_as_analytics(repo, athena_ddl(repo), moto_server.boto_client(), bucket_name, ["users"])
    assert con.execute(f'SELECT DISTINCT "_backup_id" FROM "{DB}"."users_jsonl"').fetchall() == [("nightly",)]
