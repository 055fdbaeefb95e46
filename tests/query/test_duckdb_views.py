"""DuckDB over the backups in place (backup_pipeline.query.duckdb_views): per-backup, state and catalog
views, locally and on S3 (moto), judged against what the REAL s3db.js reads after a restore
of the same backup id (tests/oracle.py; these tests fail, never skip, without the oracle)."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import orjson
import pyarrow as pa
import pytest

import oracle
from backup_pipeline import Backups
from backup_pipeline.query.duckdb_views import connect, create_views
from backup_pipeline.errors import UsageError
from backup_pipeline.format.encode import encode_record
from backup_pipeline.engine.parquet import arrow_schema, converter, resource_attributes, write_parquet_mirror
from backup_pipeline.repository import open_repository
from backup_pipeline.repository.s3 import S3Options, S3Repository
from backup_pipeline.store import RawObject
from s3db_fixtures import copy_fs_db


@pytest.fixture(autouse=True)
def _require_oracle():
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")


# -- a source that changes between backups (plain store puts and deletes) ------------------------
def put_record(store, resource: str, rid: str, record: dict) -> None:
    """Write a record as s3db.js would (metadata only) with the resource's current schema."""
    res = store.read_database_json()["resources"][resource]
    version = res["currentVersion"]
    meta = encode_record(res["versions"][version]["attributes"], res["schemaRegistry"]["mapping"], version, record)
    store.put(RawObject(key=f"resource={resource}/data/id={rid}", metadata=meta,
                        content_type="application/octet-stream", body=b""))


def change(store, round_: int) -> None:
    """Round 1: insert e3, update n2, delete q4, change u2's status in place (raw metadata).
    Round 2: delete e3 again, insert e4, update n1."""
    if round_ == 1:
        put_record(store, "events", "e3", {"level": "info", "message": "added", "code": 201,
                                           "at": "2026-01-02T03:04:05.006Z"})
        put_record(store, "notes", "n2", {"title": "Short note v2", "priority": 5, "text": "changed"})
        store.delete("resource=quirks/data/id=q4")
        u2 = store.get("resource=users/data/id=u2")
        store.put(RawObject(key=u2.key, metadata={**u2.metadata, "5": "archived"}, content_type=u2.content_type,
                            body=u2.body))
    else:
        store.delete("resource=events/data/id=e3")
        put_record(store, "events", "e4", {"level": "debug", "message": "later", "code": 7})
        put_record(store, "notes", "n1", {"title": "Long note", "priority": 9, "text": "now short"})


def full_and_two_incrementals(b: Backups) -> list[dict]:
    full = b.backup("full")
    change(b.store, 1)
    inc1 = b.backup("incremental")
    change(b.store, 2)
    inc2 = b.backup("incremental")
    return [full, inc1, inc2]


# -- comparing a view with what s3db.js reads ----------------------------------------------------
def _norm(value, t: pa.DataType):
    """A view value as JSON would hold it (timestamps as ISO with ms and Z, structs without nulls)."""
    if value is None:
        return None
    if pa.types.is_struct(t):
        return {k: _norm(v, t.field(k).type) for k, v in value.items() if v is not None}
    if pa.types.is_list(t):
        return [_norm(v, t.value_type) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _same(view_value, truth, t: pa.DataType) -> bool:
    if view_value is None:
        # a value s3db.js reads that does not fit the column is null in the view (e.g. score "")
        return truth is None or converter(t)(truth, lambda: None) is None
    if pa.types.is_string(t) and not isinstance(truth, str):
        return orjson.loads(view_value) == truth  # JSON values are kept as JSON text
    if pa.types.is_struct(t):
        if not isinstance(truth, dict):
            return False
        return all(_same(view_value.get(f.name), truth.get(f.name), f.type) for f in t)
    got = _norm(view_value, t)
    if isinstance(got, float) and isinstance(truth, (int, float)):
        return math.isclose(got, truth, rel_tol=0, abs_tol=0) or got == truth
    return got == truth


# The backup decodes with the "clean" reader of SPEC §11, which returns the intended values
# where s3db.js's second decoding pass corrupts them (quirks q1: wake "NaN:NaN:NaN.NaN", ip).
CLEAN_READER_FIXES = {("quirks", "q1", "wake"), ("quirks", "q1", "ip")}


def assert_state_matches(rows: list[dict], truth: list[dict], attributes: dict, where: str, resource: str = "") -> None:
    """Same ids; every user field s3db.js returns equals the view's (secret fields excepted: the
    backup keeps them encrypted, s3db.js decrypts them)."""
    schema = arrow_schema(attributes)
    got = {r["id"]: r for r in rows}
    want = {r["id"]: r for r in truth}
    assert sorted(got) == sorted(want), f"{where}: ids differ"
    fields = [f for f in schema if not f.name.startswith("_") and f.name != "id"
              and "secret" not in str(attributes.get(f.name))]
    for rid, rec in want.items():
        for f in fields:
            if (resource, rid, f.name) in CLEAN_READER_FIXES:
                continue
            assert _same(got[rid].get(f.name), rec.get(f.name), f.type), \
                f"{where}: id {rid} field {f.name}: view {got[rid].get(f.name)!r}, s3db.js {rec.get(f.name)!r}"


def rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def check_state_against_oracle(con, repo, b: Backups, manifest: dict, tmp_path, tag: str) -> None:
    target = tmp_path / f"restored-{tag}"
    b.restore(manifest["id"], f"file://{target}")
    truth, _ = oracle.read_back(f"file://{target}", tmp_path / f"out-{tag}")
    create_views(con, repo, backup_id=manifest["id"])
    assert sorted(truth) == sorted(manifest["resources"])
    for name in manifest["resources"]:
        assert_state_matches(rows(con, f'SELECT * FROM "{name}__state"'), truth[name],
                             resource_attributes(manifest, name), f"{tag}/{name}", name)


# -- tests ---------------------------------------------------------------------------------------
@pytest.fixture
def chain(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    return b, full_and_two_incrementals(b)


def test_backup_views_read_every_line_of_each_backup(chain):
    b, manifests = chain
    con = connect(b.repo)
    for m in manifests:
        created = create_views(con, b.repo, backup_id=m["id"], state=False)
        assert "backups" in created and not any(v.endswith("__state") for v in created)
        for name, entry in m["resources"].items():
            n, tomb, bid = con.execute(f'SELECT count(*), count(*) FILTER (WHERE _deleted), any_value(_backup_id) '
                                       f'FROM "{name}__backup"').fetchone()
            assert (n, tomb) == (entry["lines"], entry["tombstones"]), f"{m['id']}/{name}"
            assert n == 0 or bid == m["id"]
    inc1 = manifests[1]["resources"]
    assert (inc1["events"]["records"], inc1["quirks"]["tombstones"], inc1["notes"]["records"]) == (1, 1, 1)
    create_views(con, b.repo, backup_id=manifests[0]["id"], resource="users", state=False)
    typed = con.execute("SELECT typeof(age), typeof(createdAt), typeof(profile), typeof(lucky) FROM users__backup LIMIT 1")
    assert typed.fetchone() == ("BIGINT", "TIMESTAMP WITH TIME ZONE",
                                'STRUCT(city VARCHAR, bio VARCHAR, links STRUCT(site VARCHAR))', "BIGINT[]")


def test_backups_view_has_one_row_per_complete_backup_with_counts(chain):
    b, manifests = chain
    con = connect(b.repo)
    create_views(con, b.repo, resource="users")
    got = rows(con, "SELECT id, type, parent, records, tombstones, bytes, chain_length, started_at FROM backups")
    assert [r["id"] for r in got] == [m["id"] for m in manifests]
    for r, m in zip(got, manifests):
        assert (r["type"], r["parent"], r["records"], r["tombstones"], r["bytes"], r["chain_length"]) == (
            m["type"], m["parent"], m["totals"]["records"], m["totals"]["tombstones"], m["totals"]["bytes"], len(m["chain"]))
        assert r["started_at"].isoformat(timespec="milliseconds").replace("+00:00", "Z") == m["startedAt"]
    per = rows(con, "SELECT backup_id, resource, records, tombstones, lines FROM backup_resources")
    assert len(per) == sum(len(m["resources"]) for m in manifests)
    q = {(r["backup_id"], r["resource"]): r for r in per}[(manifests[1]["id"], "quirks")]
    assert (q["records"], q["tombstones"], q["lines"]) == (0, 1, 1)
    # an incomplete backup is not listed
    (b.repo.root / "full-2099-01-01T000000Z-dead").mkdir()
    create_views(con, b.repo, resource="users")
    assert con.execute("SELECT count(*) FROM backups").fetchone()[0] == 3


def test_state_at_each_backup_id_is_what_s3db_reads_after_restoring_it(chain, tmp_path):
    b, manifests = chain
    con = connect(b.repo)
    for tag, m in zip(("full", "inc1", "inc2"), manifests):
        check_state_against_oracle(con, b.repo, b, m, tmp_path, tag)
    # and the changes are really there
    create_views(con, b.repo)  # latest by default
    assert con.execute("SELECT list(id ORDER BY id) FROM events__state").fetchone()[0] == ["e1", "e2", "e4"]
    assert con.execute("SELECT priority, _backup_id FROM notes__state WHERE id = 'n2'").fetchone() == (5, manifests[1]["id"])
    assert con.execute("SELECT status FROM users__state WHERE id = 'u2'").fetchone() == ("archived",)
    assert con.execute("SELECT count(*) FROM quirks__state WHERE id = 'q4'").fetchone() == (0,)


def test_parquet_source_gives_the_same_views(chain):
    b, manifests = chain
    for m in manifests:
        for name, entry in m["resources"].items():
            write_parquet_mirror(b.repo, m["id"], entry, resource_attributes(m, name))
    con = connect(b.repo)
    create_views(con, b.repo)
    pq_con = connect(b.repo)
    create_views(pq_con, b.repo, source="parquet")
    for name in manifests[-1]["resources"]:
        for kind in ("backup", "state"):
            cols = ", ".join(f'"{d[0]}"' for d in con.execute(f'SELECT * FROM "{name}__{kind}" LIMIT 0').description)
            a = sorted(map(repr, con.execute(f'SELECT {cols} FROM "{name}__{kind}"').fetchall()))
            p = sorted(map(repr, pq_con.execute(f'SELECT {cols} FROM "{name}__{kind}"').fetchall()))
            assert a == p, f"{name}__{kind}"


def test_s3_repository_read_in_place_state_matches_s3db(tmp_path, moto_server, bucket_name):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    repo = S3Repository(f"s3://{bucket_name}/backups", S3Options(
        endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
        secret_access_key=moto_server.secret_key))
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo)
    manifests = full_and_two_incrementals(b)
    con = connect(repo)
    created = create_views(con, repo)
    assert "users__state" in created
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'users__state'").fetchone()[0]
    assert f"s3://{bucket_name}/backups/{manifests[0]['id']}/users.jsonl.gz" in sql  # read in place
    for name, entry in manifests[-1]["resources"].items():
        assert con.execute(f'SELECT count(*) FROM "{name}__backup"').fetchone()[0] == entry["lines"]
    assert con.execute("SELECT list(id ORDER BY started_at), sum(records) FROM backups").fetchone() == (
        [m["id"] for m in manifests], sum(m["totals"]["records"] for m in manifests))
    check_state_against_oracle(con, repo, b, manifests[1], tmp_path, "s3-inc1")
    check_state_against_oracle(con, repo, b, manifests[2], tmp_path, "s3-inc2")
    # the Parquet mirror written through the S3 repository is read in place too
    m = manifests[-1]
    info = write_parquet_mirror(repo, m["id"], m["resources"]["users"], resource_attributes(m, "users"))
    got = con.execute("SELECT count(*) FROM read_parquet(?)",
                      [f"s3://{bucket_name}/backups/{m['id']}/users.parquet"]).fetchone()[0]
    assert got == info["rows"] == m["resources"]["users"]["lines"]


def test_unreadable_repositories_are_refused_with_a_reason(tmp_path):
    src = f"file://{copy_fs_db(tmp_path / 'src')}"
    br = Backups(src, str(tmp_path / "br"))
    br.backup("full", resources=["notes"], compression="brotli")
    with pytest.raises(UsageError, match="brotli"):
        create_views(connect(br.repo), br.repo)
    enc = open_repository(str(tmp_path / "enc"), passphrase="pw", encrypt=True)
    Backups(src, enc).backup("full", resources=["notes"])
    with pytest.raises(UsageError, match="encrypted"):
        create_views(connect(enc), enc)
    with pytest.raises(UsageError, match="source"):
        create_views(connect(enc), enc, source="csv")
