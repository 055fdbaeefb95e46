"""`stats` (restic's): what a repository holds and costs, figures checked against the files."""

from __future__ import annotations

import orjson

from backup_pipeline import Backups
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db
from test_ids_and_defaults import run


def test_stats_counts_bytes_growth_and_what_full_backups_store_again(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), tmp_path / "repo"
    b = Backups(f"file://{src}", str(repo))
    first = b.backup("full")
    same = b.backup("full")  # nothing changed: every record stored again
    store = open_store(f"file://{src}")
    changed = store.get("resource=users/data/id=u2")
    changed.metadata["1"], changed.last_modified = "changed", None
    store.put(changed)
    third = b.backup("full")
    stats = orjson.loads(run("stats", "--repo", str(repo), "--json").stdout)
    on_disk = sum(f.stat().st_size for d in repo.iterdir() if d.name.startswith("full") for f in d.iterdir())
    assert stats["committed"] == 3 and stats["unfinished"] == 0 and stats["stored_bytes"] == on_disk
    assert stats["latest"] == third.id and stats["latest_records"] == third.totals.records
    by_id = {s["id"]: s for s in stats["backups"]}
    assert by_id[first.id]["repeated_bytes"] == 0  # nothing before it
    every_file = sum(e.data.bytes for e in same.resources.values() if e.records)
    assert by_id[same.id]["repeated_bytes"] == every_file
    users = third.resources["users"]
    others = sum(e.data.bytes for name, e in third.resources.items() if e.records and name != "users")
    expected = others + users.data.bytes * (users.records - 1) // users.records
    assert by_id[third.id]["repeated_bytes"] == expected  # all but the changed record
    text = run("stats", "--repo", str(repo))
    assert text.returncode == 0 and "3 committed backup(s)" in text.stdout and "stored" in text.stdout
