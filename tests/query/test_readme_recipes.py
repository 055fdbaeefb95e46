"""The analysts' recipes in README.md ("Querying backups") run as written: the views printed by
`duckdb-sql` loaded into a plain DuckDB (no project import), then every statement of the block,
over a repository holding a full, an incremental and an unfinished backup."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

from backup_pipeline import Backups
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = [sys.executable, "-m", "backup_pipeline.cli"]
RUN = """
import sys, json, duckdb
con = duckdb.connect()
con.execute(open(sys.argv[1]).read())
out = [con.sql(statement).fetchall() for statement in json.loads(sys.argv[2])]
print(json.dumps(out, default=str))
"""


def recipes() -> list[str]:
    block = re.search(r"<!-- analyst-recipes.*?-->\n```sql\n(.*?)```", README.read_text(), re.S).group(1)
    text = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def test_every_readme_recipe_runs_in_plain_duckdb(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    b.backup("full")
    open_store(f"file://{src}").delete("resource=users/data/id=u1")
    inc = b.backup("incremental")
    unfinished = Path(repo) / (inc["id"].replace("incremental-", "full-")[:-4] + "dead")  # files, no manifest
    unfinished.mkdir()
    (unfinished / "users.jsonl.gz").write_bytes((Path(repo) / inc["id"] / "users.jsonl.gz").read_bytes())
    views = subprocess.run([*CLI, "duckdb-sql", "--repo", repo], capture_output=True, text=True, timeout=120)
    assert views.returncode == 0, views.stderr
    (tmp_path / "views.sql").write_text(views.stdout)
    statements = [s.replace("REPO", repo) for s in recipes()]
    assert len(statements) == 5
    ran = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "views.sql"), orjson.dumps(statements).decode()],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    users, active, backups, per_resource, glob = orjson.loads(ran.stdout)
    assert users == [[3]]  # u1 deleted by the incremental
    assert [row[0] for row in active] == sorted(row[0] for row in active) and "u1" not in [r[0] for r in active]
    assert [row[1] for row in backups] == ["incremental", "full"]
    assert ["users", 0, 1, False] in [row[1:] for row in per_resource]  # the incremental's tombstone
    assert glob == [[4, 1]]  # the full's 4 records and the incremental's tombstone, not the unfinished one
