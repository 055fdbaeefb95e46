"""Restore drills (issue 15 item 1): a backup restored into a scratch target, every record read back
through the decoder and compared with the backup; a record altered in a backup made consistent
with its manifest (so `verify` passes) fails the drill, naming resource and id (exit 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.errors import ConflictError, DrillFailed
from backup_pipeline.store import open_store
from helpers import tamper_first_line
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ))


def _chain(tmp_path):
    """A full of the fixture, then an incremental after users/u2 is deleted."""
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    full = b.backup("full")
    (src / "resource=users" / "data" / "id=u2").unlink()
    (src / "resource=users" / "data" / "id=u2.meta.json").unlink()
    return b, full, b.backup("incremental")


def test_a_drill_of_a_good_chain_compares_every_record(tmp_path):
    b, full, incr = _chain(tmp_path)
    report = b.drill(incr.id)
    live = {name: entry.index.entries for name, entry in incr.resources.items()}  # records at the incremental
    assert report.passed and report.chain == [full.id, incr.id]
    assert {n: r.records for n, r in report.resources.items()} == live and live["users"] == 3
    assert report.scratch_removed and not Path(report.scratch.removeprefix("file://")).exists()
    proc = run("drill", full.id[:10], "--repo", str(tmp_path / "repo"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout)
    assert out["passed"] and out["records"] == full.totals.records and out["differences"] == 0
    assert out["resources"]["users"]["records"] == 4 and out["resources"]["users"]["records_per_second"] > 0
    assert not Path(out["scratch"].removeprefix("file://")).exists()


def _decoded_field(line: dict) -> None:
    line["name"] = line["name"] + " (edited)"  # the analysts' view disagrees with the object


def _raw_metadata(line: dict) -> None:
    line["_s3db"]["metadata"]["0"] = "Someone Else"  # the object a restore writes disagrees with the record


@pytest.mark.parametrize("change", [_decoded_field, _raw_metadata])
def test_an_altered_record_consistent_with_its_manifest_fails_naming_it(tmp_path, change):
    b, full, _incr = _chain(tmp_path)
    repo = tmp_path / "repo"
    record_id = tamper_first_line(repo, full.id, "users", change)
    assert run("verify", full.id, "--repo", str(repo)).returncode == 0  # its files agree with the manifest
    proc = run("drill", full.id, "--repo", str(repo), "--json")
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert f"users {record_id}: field 'name' decodes to" in proc.stderr
    out = orjson.loads(proc.stdout)
    assert not out["passed"] and out["resources"]["users"]["differences"] == 1
    assert out["resources"]["users"]["records"] == 4 and out["resources"]["articles"]["differences"] == 0
    assert out["scratch_removed"] and not Path(out["scratch"].removeprefix("file://")).exists()
    with pytest.raises(DrillFailed) as err:  # the API raises it too, with the report
        b.drill(full.id)
    assert err.value.exit_code == 4 and err.value.report.differences == 1


def test_a_named_scratch_must_be_empty_and_is_emptied_after(tmp_path):
    b, full, _incr = _chain(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "something").write_bytes(b"x")
    proc = run("drill", "latest", "--repo", str(tmp_path / "repo"), "--scratch", str(scratch))
    assert proc.returncode == 5 and "is not empty (it holds something)" in proc.stderr
    assert (scratch / "something").read_bytes() == b"x"  # left alone
    (scratch / "something").unlink()
    report = b.drill(full.id, scratch=f"file://{scratch}")
    assert report.passed and report.records == full.totals.records
    assert scratch.is_dir() and next(open_store(f"file://{scratch}").list_prefix(""), None) is None
    kept = b.drill(full.id, scratch=f"file://{scratch}", keep_scratch=True)
    assert not kept.scratch_removed and open_store(f"file://{scratch}").read_database_json()["resources"]
    with pytest.raises(ConflictError):  # now it holds the kept restore
        b.drill(full.id, scratch=f"file://{scratch}")


def test_a_drill_into_an_s3_prefix(moto_server, bucket_name, tmp_path):
    b, _full, incr = _chain(tmp_path)
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    report = b.drill(incr.id, scratch=moto_server.connection_string(bucket_name, "drill"))
    assert report.passed and report.resources["users"].records == 3
    assert moto_server.boto_client().list_objects_v2(Bucket=bucket_name).get("KeyCount") == 0


def test_a_chain_that_does_not_restore_fails_and_its_scratch_is_still_emptied(tmp_path):
    _b, full, incr = _chain(tmp_path)
    data = tmp_path / "repo" / full.id / "users.jsonl.gz"
    data.write_bytes(data.read_bytes()[:-20])  # damaged, manifest untouched: the restore stops on it
    scratch = tmp_path / "scratch"
    proc = run("drill", incr.id, "--repo", str(tmp_path / "repo"), "--scratch", str(scratch))
    assert proc.returncode == 4 and "users.jsonl.gz" in proc.stderr and "Traceback" not in proc.stderr
    assert next(open_store(f"file://{scratch}").list_prefix(""), None) is None  # the unfinished restore went too
