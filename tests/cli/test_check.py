"""`check` (restic's): the whole repository's structure without reading data, and a subset of the
files read in full with --read-data-subset; every problem named, exit 4."""

from __future__ import annotations

import orjson

from backup_pipeline import Backups
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db
from test_ids_and_defaults import run


def _repo_with_two_backups(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), tmp_path / "repo"
    b = Backups(f"file://{src}", str(repo))
    full = b.backup("full")
    open_store(f"file://{src}").delete("resource=users/data/id=u1")
    return repo, full, b.backup("incremental")


def check(repo, *args):
    done = run("check", "--repo", str(repo), "--json", *args)
    return done.returncode, orjson.loads(done.stdout), done.stderr


def test_the_parts_of_a_subset_read_every_file_once_and_a_flipped_byte_is_found(tmp_path):
    repo, full, incr = _repo_with_two_backups(tmp_path)
    code, whole, _ = check(repo)
    assert code == 0 and whole["ok"] and whole["backups"] == 2 and whole["files_read"] == 0
    reads = [check(repo, "--read-data-subset", f"{n}/3")[1]["files_read"] for n in (1, 2, 3)]
    assert sum(reads) == whole["files"]  # 1/3, 2/3, 3/3: each file read exactly once
    assert check(repo, "--read-data-subset", "100%")[1]["files_read"] == whole["files"]
    data = repo / full.id / "users.jsonl.gz"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # same size: only reading finds it
    data.write_bytes(bytes(raw))
    assert check(repo)[0] == 0
    code, report, stderr = check(repo, "--read-data-subset", "100%")
    assert code == 4 and not report["ok"] and str(data) in stderr and ("corrupt" in stderr or "sha256" in stderr)


def test_structure_problems_are_found_without_reading(tmp_path):
    repo, full, incr = _repo_with_two_backups(tmp_path)
    data = repo / incr.id / "users.jsonl.gz"
    data.write_bytes(data.read_bytes()[:-10])  # truncated: its size says so
    (repo / full.id / "s3db.json").unlink()  # the incremental's parent is no longer committed
    code, report, stderr = check(repo)
    assert code == 4 and report["files_read"] == 0 and full.id in report["unfinished"]
    assert any(f"chain needs {full.id}" in p for p in report["problems"])
    assert any(str(data) in p and "bytes" in p for p in report["problems"])
    assert "Traceback" not in stderr


def test_a_wrong_subset_is_a_usage_error(tmp_path):
    repo, _full, _incr = _repo_with_two_backups(tmp_path)
    done = run("check", "--repo", str(repo), "--read-data-subset", "0/3")
    assert done.returncode == 2 and "1 <= n <= t" in done.stderr
