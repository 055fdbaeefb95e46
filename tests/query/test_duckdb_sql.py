"""Analysts with plain DuckDB: `backup-pipeline duckdb-sql` prints views any DuckDB runs (here a
process that imports duckdb and nothing of this project), typed from the s3db schema, with
`_deleted` and `_backup_id` on every line, the raw object left out, and the state at a backup."""

from __future__ import annotations

import subprocess
import sys

import orjson

from backup_pipeline import Backups
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]
PLAIN_DUCKDB = """
import sys, json, duckdb
con = duckdb.connect()
con.execute(open(sys.argv[1]).read())
out = {
    "state_ids": [r[0] for r in con.sql("SELECT id FROM users__state ORDER BY id").fetchall()],
    "columns": dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE users__state)").fetchall()),
    "deleted_in_incremental": con.sql("SELECT count(*) FROM users__backup WHERE _deleted").fetchall()[0][0],
    "backups": con.sql("SELECT count(*) FROM backups").fetchall()[0][0],
    "project_imported": any(m.startswith("backup_pipeline") for m in sys.modules),
}
print(json.dumps(out))
"""


def test_plain_duckdb_reads_the_state_at_the_latest_backup(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    b.backup("full")
    open_store(f"file://{src}").delete("resource=users/data/id=u1")
    b.backup("incremental")
    printed = subprocess.run([*CLI, "duckdb-sql", "--repo", repo], capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    sql = tmp_path / "views.sql"
    sql.write_text(printed.stdout)
    ran = subprocess.run([sys.executable, "-c", PLAIN_DUCKDB, str(sql)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    out = orjson.loads(ran.stdout)
    assert not out["project_imported"] and out["backups"] == 2
    restored = sorted(e.id for e in b.ls("latest", ["users"]))
    assert out["state_ids"] == restored and "u1" not in restored  # the state a restore would leave
    assert out["deleted_in_incremental"] == 1  # the incremental's tombstone, typed BOOLEAN
    columns = out["columns"]
    assert columns["score"] == "DOUBLE" and columns["age"] == "BIGINT" and columns["_deleted"] == "BOOLEAN"
    assert "_backup_id" in columns and "_s3db" not in columns  # the raw object stays out
    short = subprocess.run([*CLI, "sql", "--repo", repo], capture_output=True, text=True, timeout=120)
    assert short.returncode == 0 and short.stdout == printed.stdout  # `sql`, the name, is the same command


PLAIN_GLOB = """
import sys, json, duckdb
glob = sys.argv[1]
# no union_by_name: the first file read (a full) decides the columns
rows = duckdb.sql(f"SELECT count(*), count(*) FILTER (WHERE _deleted), count(*) FILTER (WHERE NOT _deleted) "
                  f"FROM read_json_auto('{glob}')").fetchall()[0]
print(json.dumps(rows))
"""


def test_a_plain_glob_over_full_and_incremental_files_reads_data_lines_with_deleted_on_each(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    full = b.backup("full")
    open_store(f"file://{src}").delete("resource=users/data/id=u1")
    inc = b.backup("incremental")
    ran = subprocess.run([sys.executable, "-c", PLAIN_GLOB, f"{repo}/*/users.jsonl.gz"], capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines, deleted, live = orjson.loads(ran.stdout)
    # every line of the data files, none of the key indexes; the tombstone seen although the full was read first
    recorded = sum(m.resources["users"].records + m.resources["users"].tombstones for m in (full, inc))
    assert (lines, deleted, live) == (recorded, 1, recorded - 1)


PLAIN_TYPES = """
import sys, json, duckdb
con = duckdb.connect()
out = {}
for resource, column in (("users", "_misfit"), ("quirks", "_misfit"), ("evolving", "_extra")):
    rel = f"read_json_auto('{sys.argv[1]}/*/{resource}.jsonl.gz')"
    types = dict(con.sql(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {rel})").fetchall())
    aside = con.sql(f"SELECT id, to_json({column}) FROM {rel} WHERE {column} IS NOT NULL ORDER BY id").fetchall()
    out[resource] = {"types": types, "aside": [[i, json.loads(m)] for i, m in aside]}
print(json.dumps(out))
"""


def test_a_value_that_does_not_fit_its_type_is_set_aside_and_the_column_keeps_its_type(tmp_path):
    """The fixture holds a user whose `number` score s3db.js reads as "" (a tiny number): the line
    has score null and {"score": ""} under _misfit, so a plain glob types score DOUBLE; a quirk
    whose `string` note reads back as [1,2,3] has the JSON text in note (as the Parquet mirror)
    and the value under _misfit; the undeclared "1" of an older version is under _extra, not a
    column. dump, the Parquet mirror and a restore drill still see what s3db.js read."""
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    full = b.backup("full", resources=["users", "quirks", "evolving"], parquet=True)
    ran = subprocess.run([sys.executable, "-c", PLAIN_TYPES, repo], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    out = orjson.loads(ran.stdout)
    users, quirks, evolving = out["users"], out["quirks"], out["evolving"]
    assert (users["types"]["score"], users["types"]["age"]) == ("DOUBLE", "BIGINT")  # score was JSON before
    assert len(users["aside"]) == 1 and users["aside"][0][1] == {"score": ""}
    odd = users["aside"][0][0]
    assert b.dump(full["id"], "users", odd)["score"] == ""  # the record as s3db.js reads it
    assert full["resources"]["users"]["parquet"]["coerced_columns"] == {"score": 1}  # null in the typed mirror
    assert quirks["types"]["note"] == "VARCHAR" and quirks["aside"] == [["q2", {"note": [1, 2, 3]}], ["q3", {"note": {"a": 1}}]]
    assert b.dump(full["id"], "quirks", "q2")["note"] == [1, 2, 3]
    assert "1" not in evolving["types"] and [a for _, a in evolving["aside"]] == [{"1": "old field value"}]
    assert b.dump(full["id"], "evolving", "ev1")["1"] == "old field value"
    assert b.drill(full["id"]).differences == 0
