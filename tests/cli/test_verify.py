"""`verify` runs the record checks the Dagster asset checks run (engine/checks.py), naming file and line."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import orjson

from backup_pipeline import Backups
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def _backup_with_extra_lines(tmp_path, extra: list[dict], records: int, tombstones: int):
    """A full backup (uncompressed) whose users file gets `extra` lines, with a manifest made to
    agree with the file's bytes: what a faulty writer would commit."""
    repo = tmp_path / "repo"
    m = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(repo)).backup(
        "full", resources=["users"], compression="none")
    data = repo / m["id"] / "users.jsonl"
    data.write_bytes(data.read_bytes() + b"".join(orjson.dumps(x) + b"\n" for x in extra))
    manifest_path = repo / m["id"] / "s3db.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    entry = manifest["resources"]["users"]
    body = data.read_bytes()
    entry.update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest(), lines=entry["lines"] + len(extra),
                 records=entry["records"] + records, tombstones=entry["tombstones"] + tombstones)
    manifest_path.write_bytes(orjson.dumps(manifest))
    return repo, m["id"], data


def test_verify_names_a_duplicated_id_and_a_tombstone_in_a_full_backup(tmp_path):
    repo, bid, data = _backup_with_extra_lines(
        tmp_path, [{"id": "u1", "name": "again"}, {"id": "u9", "_deleted": True, "_s3db": {"key": "k", "deleted": True}}],
        records=1, tombstones=1)
    proc = subprocess.run([*CLI, "verify", bid, "--repo", str(repo)], capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr
    assert f"{data}: 1 line(s) repeating an earlier id (line 5 (id 'u1'))" in proc.stderr
    assert f"{data}: 1 tombstone(s) in a full snapshot (line 6 (id 'u9'))" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_names_a_record_count_that_differs_from_the_lines(tmp_path):
    repo, bid, data = _backup_with_extra_lines(tmp_path, [{"id": "u7"}], records=0, tombstones=0)
    proc = subprocess.run([*CLI, "verify", bid, "--repo", str(repo)], capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr
    assert f"{data}: 5 lines; the manifest records 4 records + 0 tombstones = 4" in proc.stderr


def test_a_sound_backup_passes_every_record_check(tmp_path):
    repo = tmp_path / "repo"
    m = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(repo)).backup("full")
    proc = subprocess.run([*CLI, "verify", m["id"], "--repo", str(repo), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    checks = orjson.loads(proc.stdout)["checks"]
    assert set(checks) == set(m["resources"])
    assert all(passed for per in checks.values() for passed in per.values())
    assert set(checks["users"]) == {"line_count_matches_manifest", "ids_unique_and_not_null",
                                    "tombstones_only_in_incrementals"}
