"""The record commands a restic user expects (diff, ls, find, dump, restore --id), on backups of the
fixture database changed by the REAL s3db.js (tests/oracle_mutate.mjs, tests/oracle_record_ops.mjs):
what they report is judged against the changes s3db.js made and against what s3db.js reads.

These tests FAIL, never skip, when the oracle is not installed (run scripts/install-s3db-oracle).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import oracle
from backup_pipeline import Backups
from s3db_fixtures import copy_fs_db, expected_partitions, expected_records

CLI = [sys.executable, "-m", "backup_pipeline.cli"]
TESTS = Path(__file__).resolve().parents[1]
MUTATE_SCRIPT = TESTS / "oracle_mutate.mjs"
OPS_SCRIPT = TESTS / "oracle_record_ops.mjs"


@pytest.fixture(autouse=True)
def _require_oracle():
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def run_json(*args: str):
    proc = run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def writable_fs_db(dest: Path) -> str:
    db = copy_fs_db(dest)
    for p in db.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)  # the vendored tree is read-only; s3db.js writes to it
    return f"file://{db}"


def record_ops(conn: str, *ops) -> None:
    oracle.run_script(OPS_SCRIPT, conn, json.dumps(ops))


def snake_case_keys(data) -> bool:
    if isinstance(data, dict):
        return all(re.fullmatch(r"[a-z0-9_]+", k) for k in data) and all(map(snake_case_keys, data.values()))
    return all(map(snake_case_keys, data)) if isinstance(data, list) else True


def _without_times(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: {k: v for k, v in r.items() if k != "_lastModified"} for r in records}


@pytest.fixture(scope="module")
def mutated(tmp_path_factory):
    """A full backup of the fixture database, the changes oracle_mutate.mjs makes with s3db.js, an
    incremental, and what s3db.js reads from the changed source."""
    tmp = tmp_path_factory.mktemp("mutated")
    conn, repo = writable_fs_db(tmp / "src"), str(tmp / "repo")
    b = Backups(conn, repo)
    full = b.backup("full")
    oracle.run_script(MUTATE_SCRIPT, conn)
    inc = b.backup("incremental")
    truth, _partitions = oracle.read_back(conn, tmp / "truth")
    return repo, full, inc, truth


def test_diff_reports_exactly_the_records_s3db_changed(mutated):
    repo, full, inc, _truth = mutated
    got = run_json("diff", full.id, inc.id, "--repo", repo)
    assert set(got) == {"from", "to", "resources", "summary"} and (got["from"], got["to"]) == (full.id, inc.id)
    changed = {name: d for name, d in got["resources"].items() if any(d.values())}
    assert changed == {
        "users": {"added": ["u6"], "changed": ["u3"], "removed": []},  # inserted; moved to another partition
        "articles": {"added": [], "changed": ["a3"], "removed": ["a2"]},
        "quirks": {"added": [], "changed": [], "removed": ["q4"]},
        "counters": {"added": ["4"], "changed": [], "removed": []},  # the incremental id generator's
        "tasks": {"added": ["t1", "t2", "t3"], "changed": [], "removed": []},  # a new resource
    }
    assert got["summary"] == {"added": 5, "changed": 2, "removed": 2} and snake_case_keys(got)
    assert set(got["resources"]) == set(inc.resources)  # the unchanged ones are there, empty

    text = run("diff", "full-", "latest", "--repo", repo, "--resource", "articles", "--resource", "users")
    assert text.returncode == 0, text.stderr
    marked = [line for line in text.stdout.splitlines() if line[:2] in ("+ ", "M ", "- ")]
    assert marked == ["- articles/a2", "M articles/a3", "M users/u3", "+ users/u6"]  # per resource, by id
    assert re.search(r"articles\s+0 added\s+1 changed\s+1 removed", text.stdout)
    assert re.search(r"total\s+1 added\s+2 changed\s+1 removed", text.stdout)
    # the API gives the same, and the state diffed with itself is empty
    assert Backups(None, repo).diff(full.id, inc.id)["quirks"].removed == ["q4"]
    assert not any(any(d.as_json().values()) for d in Backups(None, repo).diff(inc.id, "latest").values())


def test_ls_lists_the_records_of_the_state_at_a_backup(mutated):
    repo, full, inc, truth = mutated
    listed = run_json("ls", full.id, "--repo", repo)
    assert set(listed) == {"backup_id", "records", "counts"} and listed["backup_id"] == full.id
    assert listed["counts"] == {name: e.records for name, e in full.resources.items()}  # what the manifest records
    assert set(listed["records"][0]) == {"resource", "id", "size", "hash"} and snake_case_keys(listed)
    # at the incremental: the state s3db.js reads from the changed source, id for id
    at_inc = run_json("ls", "latest", "--repo", repo)
    ids: dict[str, set] = {}
    for r in at_inc["records"]:
        ids.setdefault(r["resource"], set()).add(r["id"])
    assert ids == {name: {r["id"] for r in rs} for name, rs in truth.items() if rs}
    assert at_inc["counts"] == {name: e.index.entries for name, e in inc.resources.items() if e.index.entries}
    users = run("ls", "latest", "--repo", repo, "--resource", "users")
    assert users.returncode == 0 and "users/u6" in users.stdout and "articles/" not in users.stdout
    unknown = run("ls", "latest", "--repo", repo, "--resource", "nope")
    assert unknown.returncode == 3 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.fixture(scope="module")
def three_backups(tmp_path_factory):
    """notes/n1 across three backups: in the full, updated by s3db.js before the first
    incremental, deleted by s3db.js before the second. events/e1 moves to another partition."""
    tmp = tmp_path_factory.mktemp("three")
    conn, repo = writable_fs_db(tmp / "src"), str(tmp / "repo")
    b = Backups(conn, repo)
    full = b.backup("full")
    original = b.dump(full.id, "notes", "n1")
    record_ops(conn, ["update", "notes", "n1", {"title": "renamed", "priority": 9}],
               ["update", "events", "e1", {"level": "error", "code": 501}])
    changed = b.backup("incremental")
    record_ops(conn, ["delete", "notes", "n1"])
    deleted = b.backup("incremental")
    return conn, repo, (full, changed, deleted), original, tmp


def test_find_shows_a_record_added_changed_then_deleted(three_backups):
    _conn, repo, backups, _original, _tmp = three_backups
    found = run_json("find", "--id", "n1", "--repo", repo)
    assert set(found) == {"record_id", "backups"} and found["record_id"] == "n1" and snake_case_keys(found)
    assert [(s["backup_id"], s["resource"], s["status"]) for s in found["backups"]] == [
        (backups[0].id, "notes", "added"), (backups[1].id, "notes", "changed"), (backups[2].id, "notes", "deleted")]
    assert set(found["backups"][0]) == {"backup_id", "started_at", "resource", "status", "hash"}
    assert found["backups"][2]["hash"] is None and found["backups"][0]["hash"] != found["backups"][1]["hash"]
    n2 = run_json("find", "--id", "n2", "--resource", "notes", "--repo", repo)
    assert [s["status"] for s in n2["backups"]] == ["added", "unchanged", "unchanged"]
    text = run("find", "--id", "n1", "--repo", repo)
    assert text.returncode == 0 and re.search(r"notes\s+changed", text.stdout)
    nowhere = run("find", "--id", "no-such-id", "--repo", repo)
    assert nowhere.returncode == 3 and "no-such-id" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_dump_prints_one_record_and_exits_3_without_it(three_backups):
    _conn, repo, (full, changed, deleted), original, _tmp = three_backups
    dumped = run("dump", changed.id, "notes", "n1", "--repo", repo)
    assert dumped.returncode == 0, dumped.stderr
    record = orjson.loads(dumped.stdout)
    assert (record["id"], record["title"], record["priority"]) == ("n1", "renamed", 9) and "_s3db" not in record
    assert record["text"] == original["text"]  # what the update left alone
    wrapped = run_json("dump", "full-", "notes", "n1", "--repo", repo)
    assert wrapped == {"backup_id": full.id, "resource": "notes", "id": "n1", "record": original}
    gone = run("dump", deleted.id, "notes", "n1", "--repo", repo)
    assert gone.returncode == 3 and gone.stdout == "" and "'n1'" in gone.stderr and "'notes'" in gone.stderr
    assert "deleted" in gone.stderr and "Traceback" not in gone.stderr
    never = run("dump", "latest", "notes", "n99", "--repo", repo, "--json")
    assert never.returncode == 3 and "'n99'" in never.stderr and "'notes'" in never.stderr
    no_resource = run("dump", "latest", "nope", "n1", "--repo", repo)
    assert no_resource.returncode == 3 and "nope" in no_resource.stderr


def test_restore_id_brings_one_record_back_as_s3db_read_it(three_backups):
    """n1, deleted from the source by s3db.js, comes back from the full backup alone: s3db.js
    then reads it as it read it before, and every other record as it was."""
    conn, repo, (full, _changed, _deleted), _original, tmp = three_backups
    before, _ = oracle.read_back(conn, tmp / "before")
    missing = run("restore", full.id, "--repo", repo, "--target", conn, "--id", "n404", "--resource", "notes")
    assert missing.returncode == 3 and "'n404'" in missing.stderr and "nothing was written" in missing.stderr
    no_resource = run("restore", full.id, "--repo", repo, "--target", conn, "--id", "n1")
    assert no_resource.returncode == 2 and "--resource" in no_resource.stderr
    restored = run_json("restore", full.id, "--repo", repo, "--target", conn, "--id", "n1", "--resource", "notes")
    assert restored["mode"] == "merge" and restored["totals"] == {"written": 1, "deleted": 0}
    after, partitions = oracle.read_back(conn, tmp / "after")
    assert _without_times(after["notes"]) == _without_times(expected_records("fs")["notes"])  # n1 back, n2 as it was
    assert {k: _without_times(v) for k, v in after.items() if k != "notes"} == {
        k: _without_times(v) for k, v in before.items() if k != "notes"}
    # a record back in its old partition: the reference of its newer one is gone
    assert partitions["events"] != expected_partitions("fs")["events"]
    run_json("restore", full.id, "--repo", repo, "--target", conn, "--id", "e1", "--resource", "events")
    after, partitions = oracle.read_back(conn, tmp / "after-e1")
    assert _without_times(after["events"]) == _without_times(expected_records("fs")["events"])
    assert partitions["events"] == expected_partitions("fs")["events"]
