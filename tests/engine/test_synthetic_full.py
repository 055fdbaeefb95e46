"""Synthetic full backups (engine/synthetic.py): a full built in the repository from the newest chain
of a source, the source not read. Judged against a real full taken right after (nothing changed in
between), and against what the REAL s3db.js 21.6.2 reads (tests/oracle.py) from the source and from
restored databases; the changes are made by s3db.js itself (oracle_mutate.mjs, oracle_record_ops.mjs).

These tests FAIL, never skip, when the oracle is not installed (run scripts/install-s3db-oracle).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import oracle
from backup_pipeline import Backups
from backup_pipeline.engine.keyindex import read_index
from backup_pipeline.engine.restore import state_lines
from backup_pipeline.engine.retention import RetentionPolicy
from backup_pipeline.errors import NotFound, UsageError
from backup_pipeline.store import RawObject, open_store, store_url
from helpers import make_items_db
from s3db_fixtures import copy_fs_db

TESTS = Path(__file__).resolve().parents[1]
MUTATE_SCRIPT = TESTS / "oracle_mutate.mjs"
OPS_SCRIPT = TESTS / "oracle_record_ops.mjs"
CLI = [sys.executable, "-m", "backup_pipeline.cli"]


@pytest.fixture(autouse=True)
def _require_oracle():
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")


def writable_fs_db(dest: Path) -> Path:
    db = copy_fs_db(dest)
    for p in db.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)  # the vendored tree is read-only; s3db.js writes to it
    return db


def state(b: Backups, backup_id: str) -> dict[str, dict[str, dict]]:
    """resource -> id -> line (decoded record + raw object) of the state at a backup."""
    m = b.repo.read_manifest(backup_id)
    return {name: {line["id"]: line for line in state_lines(b.repo, m, name)} for name in m.resources}


def index_lines(b: Backups, backup_id: str) -> dict[str, list[bytes]]:
    m = b.repo.read_manifest(backup_id)
    return {name: [line for *_, line in read_index(b.repo, backup_id, e.index, check=True)]
            for name, e in m.resources.items()}


def by_id(records: dict[str, list[dict]]) -> dict[str, dict[str, dict]]:
    """s3db.js's reading, by id, without _lastModified (the object's write time: a restore
    writes anew, so it cannot keep it)."""
    return {name: {r["id"]: {k: v for k, v in r.items() if k != "_lastModified"} for r in rs}
            for name, rs in records.items()}


def partition_sets(partitions: dict) -> dict:
    return {res: {p: {"allIds": sorted(v["allIds"]),
                      "queries": sorted((json.dumps(q["partitionValues"], sort_keys=True), tuple(sorted(q["ids"])))
                                        for q in v["queries"])}
                  for p, v in parts.items()}
            for res, parts in partitions.items()}


def assert_reads_like(got: tuple[dict, dict], want: tuple[dict, dict]) -> None:
    assert by_id(got[0]) == by_id(want[0])
    assert partition_sets(got[1]) == partition_sets(want[1])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_synthetic_full_equals_a_real_full_and_takes_over_the_chain(tmp_path):
    src = writable_fs_db(tmp_path / "src")
    conn, repo = f"file://{src}", str(tmp_path / "repo")
    b = Backups(conn, repo)
    full = b.backup("full")
    oracle.run_script(MUTATE_SCRIPT, conn)  # a partition move, deletes, inserts, a counter, a new resource
    inc = b.backup("incremental")
    assert inc.parent == full.id

    # the source is moved away: the synthetic full (CLI, as a user runs it) cannot read it, and
    # needs not. Its identity comes from the connection string alone.
    away = tmp_path / "away"
    src.rename(away)
    done = cli("backup", "--type", "synthetic-full", "--source", conn, "--repo", repo, "--json")
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert (out["type"], out["parent"], out["synthetic_from"]) == ("full", None, inc.id)
    assert not src.exists()
    away.rename(src)
    synth = b.repo.read_manifest(out["id"])
    real = b.backup("full")  # nothing changed since the incremental: the state a real full reads now

    # -- the manifest: a full of its own, built from the incremental's chain, nothing fetched
    assert (synth.type, synth.chain, synth.parent, synth.synthetic_from) == ("full", [synth.id], None, inc.id)
    assert synth.id.startswith("synth-") and synth.verified and synth.source_url == inc.source_url == real.source_url
    assert synth.database == inc.database and synth.sequences == inc.sequences == real.sequences
    assert set(synth.resources) == set(real.resources) == set(inc.resources)
    for name, e in synth.resources.items():
        assert e.snapshot and e.tombstones == 0 and e.fetched == 0, name
        assert e.listed_at == inc.resources[name].listed_at, name  # the incremental's listing: see synthetic.py
        assert (e.records, e.index.entries) == (real.resources[name].records, real.resources[name].index.entries)
    assert synth.totals.records == real.totals.records and synth.totals.tombstones == 0
    assert b.status(synth.id).synthetic_from == inc.id

    # -- its records are the real full's, line for line (decoded record and raw object), and
    # its key index the real full's too: every key with the same change token and content hash
    want, got = state(b, real.id), state(b, synth.id)
    assert got == want
    assert sum(map(len, got.values())) == real.totals.records > 0
    assert {n: sorted(lines) for n, lines in index_lines(b, synth.id).items()} == \
        {n: sorted(lines) for n, lines in index_lines(b, real.id).items()}
    assert index_lines(b, synth.id) == index_lines(b, inc.id)  # carried over, in the listing's order
    assert [e.as_json() for e in b.ls(synth.id)] == [e.as_json() for e in b.ls(real.id)]
    assert not any(any(d.as_json().values()) for d in b.diff(real.id, synth.id).values())
    verified = cli("verify", synth.id, "--repo", repo, "--json")
    assert verified.returncode == 0 and orjson.loads(verified.stdout)["ok"], verified.stderr

    # -- its restore is the source as s3db.js reads it
    truth = oracle.read_back(conn, tmp_path / "truth")
    b.restore(synth.id, f"file://{tmp_path / 'restored'}")
    assert_reads_like(oracle.read_back(f"file://{tmp_path / 'restored'}", tmp_path / "out"), truth)

    # -- further changes by s3db.js; the next incremental chains to the synthetic full (the real
    # full is removed first: it would be the newest, and so the parent)
    b.repo.delete_backup(real.id)
    oracle.run_script(OPS_SCRIPT, conn, json.dumps([
        ["update", "users", "u1", {"name": "Ada II", "profile": {"city": "Porto"}}],  # moves partition byCity
        ["delete", "notes", "n1"],
        ["insert", "notes", {"id": "n9", "title": "new after the synthetic full", "text": "n9", "priority": 2}],
    ]))
    inc2 = b.backup("incremental")
    assert (inc2.parent, inc2.chain) == (synth.id, [synth.id, inc2.id])
    assert (inc2.resources["users"].records, inc2.resources["notes"].records,
            inc2.resources["notes"].tombstones) == (1, 1, 1)
    assert sum(e.records for e in inc2.resources.values()) == 2  # only what changed was fetched and written
    truth2 = oracle.read_back(conn, tmp_path / "truth2")
    assert truth2 != truth
    b.restore(inc2.id, f"file://{tmp_path / 'restored2'}")
    assert_reads_like(oracle.read_back(f"file://{tmp_path / 'restored2'}", tmp_path / "out2"), truth2)

    # -- retention: keep the last one; its chain keeps the synthetic full, the old chain goes
    decisions = {d.id: d for d in b.cleanup(RetentionPolicy(keep_last=1), apply=True)}
    assert decisions[full.id].action == decisions[inc.id].action == "remove"
    assert decisions[synth.id].action == "keep" and f"needed by incremental {inc2.id}" in decisions[synth.id].reasons
    assert [i.id for i in b.list()] == [synth.id, inc2.id]
    b.restore(inc2.id, f"file://{tmp_path / 'restored3'}")
    assert_reads_like(oracle.read_back(f"file://{tmp_path / 'restored3'}", tmp_path / "out3"), truth2)
    assert b.verify(inc2.id).chain == [synth.id, inc2.id]
    checked = b.check(read_data_subset="100%")  # restic's check: the whole repository, every file read
    assert (checked.problems, checked.backups) == ([], 2)


def test_a_change_in_the_listing_blind_window_is_caught_after_a_synthetic_full(tmp_path):
    """The next incremental diffs against the synthetic full's key index, which is the newest
    backup's: so its cutoff is the newest backup's listed_at. An object rewritten after that
    listing keeping its change token (same size, mtime put back: S3's ETag-less metadata rewrite
    within the same second) is re-fetched, as it would be after the newest backup itself."""
    store = make_items_db(tmp_path / "src", 30)
    conn = f"file://{tmp_path / 'src'}"
    b = Backups(conn, str(tmp_path / "repo"))
    b.backup("full")
    inc = b.backup("incremental")
    key = "resource=items/data/id=item0000007"
    sidecar = tmp_path / "src" / f"{key}.meta.json"
    before = sidecar.stat()
    obj = store.get(key)
    # same size, other content: "item number 7" -> "item number X"
    store.put(RawObject(key=key, metadata={**obj.metadata, "0": "item number X"}, content_type=obj.content_type,
                        body=obj.body))
    assert sidecar.stat().st_size == before.st_size
    os.utime(sidecar, ns=(before.st_atime_ns, before.st_mtime_ns))  # the change token as the index has it

    synth = b.backup("synthetic-full")
    assert synth.resources["items"].listed_at == inc.resources["items"].listed_at
    after = b.backup("incremental")
    assert after.parent == synth.id
    assert after.resources["items"].records == 1
    assert b.dump(after.id, "items", "item0000007")["name"] == "item number X"
    assert b.dump(synth.id, "items", "item0000007")["name"] == "item number 7"


def test_synthetic_full_in_an_encrypted_repository_with_zstd(tmp_path):
    store = make_items_db(tmp_path / "src", 200)
    conn = f"file://{tmp_path / 'src'}"
    b = Backups(conn, str(tmp_path / "repo"), repo_passphrase="pw", encrypt=True)
    b.backup("full")
    for i in (5, 6):
        store.delete(f"resource=items/data/id=item{i:07d}")
    obj = store.get("resource=items/data/id=item0000010")
    store.put(RawObject(key=obj.key, metadata={**obj.metadata, "0": "changed"}, content_type=obj.content_type,
                        body=obj.body))
    inc = b.backup("incremental")
    assert (inc.resources["items"].records, inc.resources["items"].tombstones) == (1, 2)
    synth = b.backup("synthetic-full", compression="zstd", parquet=True)
    assert synth.compression == "zstd" and synth.resources["items"].data.file == "items.jsonl.zst"
    assert synth.resources["items"].parquet.rows == 198 and synth.encryption == inc.encryption
    real = b.backup("full")
    assert state(b, synth.id) == state(b, real.id) and len(state(b, synth.id)["items"]) == 198
    assert b.verify(synth.id).content_checked
    # the files are bound to the synthetic full: its own id, not copied bytes of another backup
    reopened = Backups(conn, str(tmp_path / "repo"), repo_passphrase="pw")
    assert [e.id for e in reopened.ls(synth.id)] == [e.id for e in reopened.ls(real.id)]


def test_synthetic_full_needs_a_backup_of_the_source_and_refuses_source_options(tmp_path):
    make_items_db(tmp_path / "src", 5)
    conn = f"file://{tmp_path / 'src'}"
    repo = str(tmp_path / "repo")
    with pytest.raises(NotFound, match="no committed backup of"):
        Backups(conn, repo).backup("synthetic-full")
    Backups(conn, repo).backup("full")
    # another source in the same repository has no backup to build from
    make_items_db(tmp_path / "other", 5)
    other = f"file://{tmp_path / 'other'}"
    with pytest.raises(NotFound):
        Backups(other, repo).backup("synthetic-full")
    with pytest.raises(UsageError, match="--resource"):
        Backups(conn, repo).backup("synthetic-full", resources=["items"])
    refused = cli("backup", "--type", "synthetic-full", "--source", conn, "--repo", repo, "--decrypt-secrets",
                  "--passphrase", "p")
    assert refused.returncode == 2 and "--decrypt-secrets" in refused.stderr
    dry = cli("backup", "--type", "synthetic-full", "--source", conn, "--repo", repo, "--dry-run")
    assert dry.returncode == 2 and "synthetic full" in dry.stderr
    missing = cli("backup", "--type", "synthetic-full", "--source", other, "--repo", repo)
    assert missing.returncode == 3 and "run a full backup first" in missing.stderr
    text = cli("backup", "--type", "synthetic-full", "--source", conn, "--repo", repo)
    assert text.returncode == 0 and "synthetic from full-" in text.stdout, text.stderr
    assert [i.type for i in Backups(conn, repo).list()] == ["full", "full"]


def test_source_identity_without_opening_is_the_stores_url(tmp_path):
    make_items_db(tmp_path / "db", 1)
    for conn in (f"file://{tmp_path / 'db'}", "s3://KEY:SECRET@bucket/prefix?region=us-east-1",
                 "http://KEY:S%2FECRET@127.0.0.1:9000/bucket/some/prefix"):
        store = open_store(conn)
        try:
            assert store_url(conn) == store.url
        finally:
            store.close()
