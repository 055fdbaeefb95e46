"""The backup/list/status/verify/restore commands, their --json output and exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from s3db_fixtures import copy_fs_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from helpers import make_items_db  # noqa: E402

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def cli(*args, check=True):
    proc = subprocess.run([*CLI, *map(str, args)], capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr.decode()}")
    return proc


def test_backup_json_list_status_verify_restore(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--json").stdout)
    assert out["type"] == "full" and out["parent"] is None
    users = out["resources"]["users"]
    assert (users["records"], users["tombstones"]) == (4, 0) and len(users["sha256"]) == 64 and users["bytes"] > 0
    inc = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental", "--json").stdout)
    assert inc["parent"] == out["id"] and inc["totals"]["records"] == 0
    listed = orjson.loads(cli("list", "--repo", repo, "--json").stdout)
    assert [(b["id"], b["state"]) for b in listed] == [(out["id"], "complete"), (inc["id"], "complete")]
    status = orjson.loads(cli("status", inc["id"], "--repo", repo, "--json").stdout)
    assert status["parent"] == out["id"] and status["type"] == "incremental"
    assert orjson.loads(cli("verify", inc["id"], "--repo", repo, "--json").stdout)["chain"] == [out["id"], inc["id"]]
    dry = orjson.loads(cli("restore", inc["id"], "--repo", repo, "--target", f"file://{tmp_path / 'dst'}",
                           "--dry-run", "--json").stdout)
    assert dry["totals"]["written"] == 27 and not (tmp_path / "dst" / "s3db.json").exists()
    cli("restore", inc["id"], "--repo", repo, "--target", f"file://{tmp_path / 'dst'}")
    assert (tmp_path / "dst" / "s3db.json").exists()
    again = cli("restore", inc["id"], "--repo", repo, "--target", f"file://{tmp_path / 'dst'}", check=False)
    assert again.returncode == 5 and b"choose --mode replace" in again.stderr


def test_exit_codes(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    assert cli("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental", check=False).returncode == 3
    assert cli("verify", "nope", "--repo", repo, check=False).returncode == 3
    assert cli("backup", "--source", "ftp://bad", "--repo", repo, check=False).returncode == 2  # unknown scheme
    assert cli("backup", "--source", tmp_path / "no-db", "--repo", repo, check=False).returncode == 3  # a path
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--json").stdout)
    f = repo / out["id"] / "users.jsonl.gz"
    f.write_bytes(f.read_bytes()[:-9])
    bad = cli("verify", out["id"], "--repo", repo, check=False)
    assert bad.returncode == 4 and b"users.jsonl.gz" in bad.stderr


def test_interrupted_backup_is_never_complete_and_the_next_one_succeeds(tmp_path):
    make_items_db(tmp_path / "db", 30_000)
    repo = tmp_path / "repo"
    proc = subprocess.Popen([*CLI, "backup", "--source", f"file://{tmp_path / 'db'}", "--repo", str(repo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait until it is streaming the resource: its partial file has data in it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [p for p in repo.glob("*/.items.jsonl.gz.*.partial") if p.stat().st_size > 0]
        if partial:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)  # polling a file that another process writes, with a deadline
    else:
        raise AssertionError("backup never started writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    listed = orjson.loads(cli("list", "--repo", repo, "--json").stdout)
    assert [b["state"] for b in listed] == ["incomplete"]
    assert cli("restore", listed[0]["id"], "--repo", repo, "--target", f"file://{tmp_path / 'dst'}",
               check=False).returncode == 4
    out = orjson.loads(cli("backup", "--source", f"file://{tmp_path / 'db'}", "--repo", repo, "--type", "incremental",
                           "--full-if-no-parent", "--json").stdout)
    assert out["type"] == "full" and out["resources"]["items"]["records"] == 30_000


def test_parquet_mirror_is_recorded_and_verified(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--parquet", "--json").stdout)
    manifest = orjson.loads((repo / out["id"] / "s3db.json").read_bytes())
    mirror = manifest["resources"]["users"]["parquet"]
    assert mirror["rows"] == 4 and mirror["file"] == "users.parquet" and len(mirror["sha256"]) == 64
    assert orjson.loads(cli("verify", out["id"], "--repo", repo, "--json").stdout)["files"] == 30
    f = repo / out["id"] / "users.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    bad = cli("verify", out["id"], "--repo", repo, check=False)
    assert bad.returncode == 4 and b"users.parquet: sha256" in bad.stderr


def test_interrupted_restore_is_never_taken_for_a_whole_database(tmp_path):
    make_items_db(tmp_path / "db", 30_000)
    repo, target = tmp_path / "repo", tmp_path / "target"
    backup_id = orjson.loads(cli("backup", "--source", f"file://{tmp_path / 'db'}", "--repo", repo, "--json").stdout)["id"]
    proc = subprocess.Popen([*CLI, "restore", backup_id, "--repo", str(repo), "--target", f"file://{target}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = target / "plugin=backup-pipeline" / "restore-in-progress.json"
    data = target / "resource=items" / "data"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if marker.exists() and data.is_dir() and next(os.scandir(data), None) is not None:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)  # polling files that another process writes, with a deadline
    else:
        raise AssertionError("restore never started writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    again = cli("restore", backup_id, "--repo", repo, "--target", f"file://{target}", check=False)
    assert again.returncode == 5 and b"unfinished restore" in again.stderr and b"--mode replace" in again.stderr
    backup_of_target = cli("backup", "--source", f"file://{target}", "--repo", tmp_path / "repo2", check=False)
    assert backup_of_target.returncode == 5 and b"unfinished restore" in backup_of_target.stderr
    assert not (tmp_path / "repo2").exists() or not any((tmp_path / "repo2").glob("*/s3db.json"))

    out = orjson.loads(cli("restore", backup_id, "--repo", repo, "--target", f"file://{target}",
                           "--mode", "replace", "--json").stdout)
    assert out["resources"]["items"]["written"] == 30_000
    assert not marker.exists()
    assert sum(1 for e in os.scandir(data) if e.name.endswith(".meta.json")) == 30_000
    assert cli("backup", "--source", f"file://{target}", "--repo", tmp_path / "repo2", "--json").returncode == 0
