"""Sharded resources (engine/shards.py): one resource backed up in key-range parts, judged by
what the REAL s3db.js 21.6.2 reads (tests/oracle.py) after s3db.js itself changed the source.
These tests FAIL, never skip, when the oracle is not installed (run scripts/install-s3db-oracle)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import oracle
from backup_pipeline import Backups
from backup_pipeline.engine.shards import SAMPLE, cut_ranges, within
from backup_pipeline.repository.manifest import KeyRange
from helpers import make_items_db

OPS_SCRIPT = Path(__file__).resolve().parents[1] / "oracle_record_ops.mjs"
CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def test_ranges_cut_every_key_into_exactly_one_part_of_about_equal_size():
    keys = [f"resource=r/data/id={n:07d}" for n in range(0, 300_000, 3)]  # 100,000 keys
    shuffled = keys[1::2] + keys[::2]  # a filesystem lists in directory order, not sorted
    count, ranges = cut_ranges(iter(shuffled), 25_000)
    assert count == 100_000 and [r.part for r in ranges] == [0, 1, 2, 3]
    assert ranges[0].after is None and ranges[-1].upto is None
    assert all(a.upto == b.after for a, b in zip(ranges, ranges[1:]))  # contiguous: no gap, no overlap
    sizes = [sum(1 for _ in within(keys, r, str, sorted_listing=True)) for r in ranges]
    assert sum(sizes) == 100_000
    # the sample keeps at most 2 x SAMPLE keys: boundaries within count / SAMPLE of the exact quantiles
    assert all(abs(s - 25_000) <= 2 * 100_000 // SAMPLE for s in sizes), sizes
    assert all(sum(k in r for r in ranges) == 1 for k in keys[::997])


def test_a_resource_that_fits_one_part_is_not_sharded():
    assert cut_ranges(iter(["a", "b", "c"]), 3) == (3, None)
    assert KeyRange(0, None, "b").__contains__("b") and not KeyRange(1, "b", None).__contains__("b")


@pytest.fixture
def items(tmp_path):
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")
    make_items_db(tmp_path / "src", 400)
    return f"file://{tmp_path / 'src'}", str(tmp_path / "repo")


def _ranges(manifest, resource="items"):
    return [p.key_range for p in manifest.resources[resource].parts]


def test_a_sharded_resource_backs_up_incrementally_part_by_part_and_restores_as_s3db_reads_it(items, tmp_path):
    conn, repo = items
    b = Backups(conn, repo)
    full = b.backup("full", shard_records=100)
    entry = full.resources["items"]
    assert len(entry.parts) == 4 and entry.records == 400 and entry.data is None
    assert [p.records for p in entry.parts] == [100, 100, 100, 100]
    names = sorted(f.file for f in entry.files())
    assert names[:4] == [f"items.index.part-00{n}.jsonl.gz" for n in range(4)]
    assert names[4:] == [f"items.part-00{n}.jsonl.gz" for n in range(4)]

    # s3db.js changes one record in the first part, deletes one in the last, inserts one
    ids = sorted(r["id"] for r in oracle.read_back(conn, tmp_path / "before")[0]["items"])
    touched = oracle.run_script(OPS_SCRIPT, conn, json.dumps([
        ["update", "items", ids[0], {"name": "renamed", "color": "blue"}],  # moves partition byColor
        ["delete", "items", ids[-1]],
        ["insert", "items", {"name": "new", "n": 7, "color": "green"}],
    ]))
    inc = b.backup("incremental", shard_records=100)
    assert _ranges(inc) == _ranges(full)  # the same boundaries: each part diffed against its parent part
    parts = inc.resources["items"].parts
    new_id = json.loads(touched.strip().splitlines()[-1])[-1]
    written = [f"resource=items/data/id={ids[0]}", f"resource=items/data/id={new_id}"]
    assert [p.records for p in parts] == [sum(k in p.key_range for k in written) for p in parts]
    assert [p.tombstones for p in parts] == [0, 0, 0, 1]  # the delete, in the last part
    assert sum(p.unchanged for p in parts) == 398

    truth = oracle.read_back(conn, tmp_path / "truth")
    b.restore(inc.id, f"file://{tmp_path / 'restored'}")
    got = oracle.read_back(f"file://{tmp_path / 'restored'}", tmp_path / "out")
    strip = lambda recs: {r["id"]: {k: v for k, v in r.items() if k != "_lastModified"} for r in recs["items"]}
    assert strip(got[0]) == strip(truth[0]) and len(got[0]["items"]) == 400
    assert got[1] == truth[1]  # the partition references too

    # verify, ls, diff, a synthetic full and a later full read the parts; the ranges stay
    done = subprocess.run([*CLI, "verify", inc.id, "--repo", repo, "--json"], capture_output=True, text=True)
    assert done.returncode == 0 and orjson.loads(done.stdout)["ok"], done.stderr
    diff = b.diff(full.id, inc.id)["items"]
    assert (len(diff.added), diff.changed, diff.removed) == (1, [ids[0]], [ids[-1]])
    assert len(list(b.ls(inc.id))) == 400
    assert [s.status for s in b.find(ids[0])] == ["added", "changed"]
    assert b.dump(inc.id, "items", ids[0])["name"] == "renamed"
    one = b.restore(inc.id, f"file://{tmp_path / 'one'}", resources=["items"], ids=[ids[0]])
    assert one.as_json()["totals"]["written"] == 1
    synth = b.backup("synthetic-full")
    assert _ranges(synth) == _ranges(full) and synth.resources["items"].records == 400
    again = b.backup("full", shard_records=100)
    assert _ranges(again) == _ranges(full)
    # without the setting, an incremental takes the resource whole, diffed against every part
    whole = b.backup("incremental")
    assert not whole.resources["items"].sharded and whole.resources["items"].unchanged == 400
    assert whole.resources["items"].records == whole.resources["items"].tombstones == 0
    # another setting re-cuts
    assert len(b.backup("full", shard_records=200).resources["items"].parts) == 2


def test_the_command_line_backs_up_in_parts_and_duckdb_reads_them(items, tmp_path):
    conn, repo = items
    done = subprocess.run([*CLI, "backup", "--source", conn, "--repo", repo, "--shard-records", "150", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert [p["file"] for p in out["resources"]["items"]["parts"]] == [
        "items.part-000.jsonl.gz", "items.part-001.jsonl.gz", "items.part-002.jsonl.gz"]
    import duckdb  # a plain glob over the parts reads data only (never the key indexes)

    rows = duckdb.sql(f"SELECT count(*), count(DISTINCT id) FROM read_json_auto('{repo}/*/items.part-*.jsonl.gz')")
    assert rows.fetchall() == [(400, 400)]
    # an incremental after a delete; the views over both backups read every part
    first_key = sorted(Backups(conn, repo).store.list_data_keys("items"))[0]
    Backups(conn, repo).store.delete(first_key)
    inc = Backups(conn, repo).backup("incremental", shard_records=150)
    assert [p.tombstones for p in inc.resources["items"].parts] == [1, 0, 0]
    views = subprocess.run([*CLI, "duckdb-sql", "--repo", repo], capture_output=True, text=True)
    assert views.returncode == 0, views.stderr
    con = duckdb.connect()
    con.execute(views.stdout)
    assert con.sql("SELECT count(*), count(DISTINCT id) FROM items__state").fetchall() == [(399, 399)]
    assert con.sql("SELECT count(*) FROM items__backup WHERE _deleted").fetchall() == [(1,)]
    part_lines = sum(f.lines for f in inc.resources["items"].data_files())
    assert con.sql(f"SELECT lines, compression FROM backup_resources WHERE backup_id = '{inc.id}'").fetchall() == [
        (part_lines, "gzip")]
    ddl = subprocess.run([*CLI, "athena-ddl", "--repo", repo, "--location-prefix", "s3://bucket/repo"],
                         capture_output=True, text=True)
    assert ddl.returncode == 0, ddl.stderr
    assert all(f"{bid}/items.part-00{n}.jsonl.gz'" in ddl.stdout for bid in (out["id"], inc.id) for n in range(3))
    bad = subprocess.run([*CLI, "backup", "--source", conn, "--repo", repo, "--shard-records", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--shard-records 0" in bad.stderr and "Traceback" not in bad.stderr


def test_a_sharded_backup_from_s3_lists_each_part_from_its_start(s3_server, bucket_name, tmp_path):
    from backup_pipeline.store import open_store
    from helpers import snapshot

    local = make_items_db(tmp_path / "local", 300)
    s3_server.boto_client().create_bucket(Bucket=bucket_name)
    conn = s3_server.connection_string(bucket_name, "db")
    source = open_store(conn, create=True)
    source.put(local.get("s3db.json"))
    source.put_many(local.get(k) for k in local.list_data_keys("items"))
    keys = sorted(source.list_data_keys("items"))
    # S3 starts the listing after the key given (LIST's start-after), not at the folder's first key
    assert list(source.list_data_keys("items", after=keys[199])) == keys[200:]
    assert [k for k, *_ in source.list_data_versions("items", after=keys[99])] == keys[100:]

    b = Backups(conn, str(tmp_path / "repo"))
    full = b.backup("full", shard_records=100)
    assert [p.records for p in full.resources["items"].parts] == [100, 100, 100]
    source.delete(keys[250])
    inc = b.backup("incremental", shard_records=100)
    assert [p.tombstones for p in inc.resources["items"].parts] == [0, 0, 1]
    assert [p.unchanged for p in inc.resources["items"].parts] == [100, 100, 99]
    b.restore(inc.id, f"file://{tmp_path / 'restored'}")
    data = lambda store: {k: v for k, v in snapshot(store).items() if "/data/" in k}  # noqa: E731
    assert data(open_store(f"file://{tmp_path / 'restored'}")) == data(source) and len(data(source)) == 299


def test_a_tampered_or_missing_part_fails_naming_it_and_nothing_looks_complete(tmp_path):
    from datetime import date

    from backup_pipeline.engine.backup import BackupRequest
    from backup_pipeline.engine.staged import StagedBackup, TypePolicy
    from backup_pipeline.errors import IntegrityError
    from backup_pipeline.repository import FilesystemRepository
    from backup_pipeline.store import open_store

    make_items_db(tmp_path / "src", 300)
    conn, repo = f"file://{tmp_path / 'src'}", str(tmp_path / "repo")
    m = Backups(conn, repo).backup("full", shard_records=100)
    part = tmp_path / "repo" / m.id / "items.part-001.jsonl.gz"
    part.write_bytes(part.read_bytes()[:-20])  # truncated
    with pytest.raises(IntegrityError, match="items.part-001.jsonl.gz"):
        Backups(None, repo).restore(m.id, f"file://{tmp_path / 'restored'}")
    done = subprocess.run([*CLI, "verify", m.id, "--repo", repo], capture_output=True, text=True)
    assert done.returncode == 4 and "items.part-001.jsonl.gz" in done.stderr and "Traceback" not in done.stderr

    manifest = tmp_path / "repo" / m.id / "s3db.json"
    data = orjson.loads(manifest.read_bytes())
    data["resources"]["items"]["parts"] = {"not": "a list"}
    manifest.write_bytes(orjson.dumps(data))
    shown = subprocess.run([*CLI, "status", m.id, "--repo", repo], capture_output=True, text=True)
    assert shown.returncode == 4 and "parts are not a JSON list" in shown.stderr and "Traceback" not in shown.stderr

    # a staged backup whose part step did not run cannot be joined, nor committed
    staged = StagedBackup.for_day(open_store(conn), FilesystemRepository(tmp_path / "repo2"), date(2026, 11, 22),
                                  TypePolicy(force="full"), BackupRequest(shard_records=100))
    with staged:
        assert len(staged.shard_plan("items").ranges) == 3
        staged.stage_part("items", 0)
        staged.stage_part("items", 2)
        with pytest.raises(IntegrityError, match=r"part\(s\) 1 of resource 'items' were not backed up"):
            staged.join_parts("items")
        with pytest.raises(IntegrityError, match="items"):
            staged.commit()
    assert FilesystemRepository(tmp_path / "repo2").read_manifest(staged.backup_id) is None
