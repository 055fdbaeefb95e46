"""Verification with memory (issue 15 item 2): `verify --budget` takes the backups least recently
verified first (never verified first), resumes where the last run stopped, remembers each
outcome in the repository without touching a committed manifest, and `list` / `status` show it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.engine.verification import parse_budget
from backup_pipeline.errors import UsageError
from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.repository.lock import acquire
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def cli(*args, env=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})})


def verify_json(repo, *args, env=None, code=0) -> dict:
    proc = cli("verify", "--repo", repo, *args, "--json", env=env)
    assert proc.returncode == code, proc.stderr
    return orjson.loads(proc.stdout)


def listed(repo, env=None) -> dict[str, dict]:
    proc = cli("list", "--repo", repo, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return {i["id"]: i for i in orjson.loads(proc.stdout)}


def three_backups(tmp_path, repo) -> list[str]:
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo)
    return [b.backup(t)["id"] for t in ("full", "incremental", "incremental")]


def manifest_hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("s3db.json")}


def test_budget_runs_take_the_never_verified_first_then_resume_with_the_rest(tmp_path):
    repo = tmp_path / "repo"
    full, inc1, inc2 = three_backups(tmp_path, str(repo))
    before = manifest_hashes(repo)
    assert set(listed(repo)[full]) >= {"last_verified_at", "last_verification"}
    assert [i["last_verification"] for i in listed(repo).values()] == [None, None, None]

    assert cli("verify", inc2, "--repo", repo).returncode == 0  # `verify ID` is remembered too
    assert listed(repo)[inc2]["last_verification"] == "ok"

    # a budget of 0 verifies exactly one backup: the never verified first, oldest backup first
    first = verify_json(repo, "--budget", "0")
    assert (first["verified"], first["left"]) == ([full], [inc1, inc2])
    assert first["bytes"] > 0 and first["results"][0]["outcome"] == "ok"
    second = verify_json(repo, "--budget", "0s")  # resumes with the rest
    assert (second["verified"], second["left"]) == ([inc1], [inc2, full])
    third = verify_json(repo, "--budget", "0m")  # then the least recently verified: inc2 (by `verify ID`)
    assert (third["verified"], third["left"]) == ([inc2], [full, inc1])
    everything = verify_json(repo, "--budget", "10m")
    assert (everything["verified"], everything["left"], everything["failed"]) == ([full, inc1, inc2], [], [])

    shown = listed(repo)
    assert [shown[b]["last_verification"] for b in (full, inc1, inc2)] == ["ok", "ok", "ok"]
    assert shown[full]["last_verified_at"] < shown[inc1]["last_verified_at"] < shown[inc2]["last_verified_at"]
    text = cli("list", "--repo", repo).stdout
    assert "verified" in text.splitlines()[0] and f"ok {shown[full]['last_verified_at'][:16]}" in text
    assert manifest_hashes(repo) == before  # committed manifests are never rewritten
    assert FilesystemRepository(repo).backup_ids() == sorted([full, inc1, inc2])  # records are no backups


def test_a_tampered_backup_is_remembered_as_failed_and_the_others_are_verified(tmp_path):
    repo = tmp_path / "repo"
    full, inc1, inc2 = three_backups(tmp_path, str(repo))
    before = manifest_hashes(repo)
    data = repo / inc1 / "users.jsonl.gz"
    body = bytearray(data.read_bytes())
    body[-5] ^= 0xFF  # one byte changed after the backup; the manifest still records the original
    data.write_bytes(bytes(body))

    proc = cli("verify", "--repo", repo, "--budget", "1h")
    assert proc.returncode == 4, proc.stderr
    assert f"backup {inc1} failed verification: {data}" in proc.stderr and "Traceback" not in proc.stderr
    assert "3 backup(s)" in proc.stdout and "1 failed" in proc.stdout
    shown = listed(repo)
    assert [shown[b]["last_verification"] for b in (full, inc1, inc2)] == ["ok", "failed", "ok"]
    assert str(data) in shown[inc1]["verification_error"]
    assert f"FAILED {shown[inc1]['last_verified_at'][:16]}" in cli("list", "--repo", repo).stdout
    status = cli("status", inc1, "--repo", repo)
    assert "last_verification  failed" in status.stdout

    again = cli("verify", inc1, "--repo", repo)  # the single form exits 4 too, after remembering
    assert again.returncode == 4 and str(data) in again.stderr
    assert listed(repo)[inc1]["last_verified_at"] > shown[inc1]["last_verified_at"]
    report = verify_json(repo, "--budget", "0")  # the failed one is not favoured: oldest verification first
    assert report["verified"] == [full] and report["failed"] == []
    assert manifest_hashes(repo) == before


def test_a_budget_run_holds_the_verify_lease_without_holding_up_backups(tmp_path):
    repo = tmp_path / "repo"
    src = copy_fs_db(tmp_path / "src")
    b = Backups(f"file://{src}", str(repo))
    b.backup("full")
    fs = FilesystemRepository(repo)
    with acquire(fs, "verify", fs.url):  # another verify run, in progress
        proc = cli("verify", "--repo", repo, "--budget", "1h")
        assert proc.returncode == 7 and "held by verify" in proc.stderr
        assert cli("cleanup", "--repo", repo, "--keep-last", "1", "--apply").returncode == 7  # exclusive
        b.backup("incremental")  # a backup does not wait for a verification
        assert cli("verify", "latest", "--repo", repo).returncode == 0  # nor does `verify ID`
    assert verify_json(repo, "--budget", "1h")["left"] == []


def test_on_an_s3_repository_with_a_path_template(moto_server, bucket_name, tmp_path):
    client = moto_server.boto_client()
    client.create_bucket(Bucket=bucket_name)
    env = {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_ACCESS_KEY_ID": moto_server.access_key,
           "AWS_SECRET_ACCESS_KEY": moto_server.secret_key, "AWS_REGION": "us-east-1"}
    repo = f"s3://{bucket_name}/backups/{{date}}"
    src = copy_fs_db(tmp_path / "src")
    ids = [orjson.loads(cli("backup", "--source", src, "--repo", repo, "--type", t, "--json", env=env).stdout)["id"]
           for t in ("full", "incremental")]

    def manifests() -> dict[str, str]:
        return {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket_name)["Contents"]
                if o["Key"].endswith("/s3db.json")}

    before = manifests()
    assert verify_json(repo, "--budget", "0", env=env)["verified"] == ids[:1]
    assert verify_json(repo, "--budget", "0", env=env)["verified"] == ids[1:]
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket_name)["Contents"]}
    assert {f"backups/verifications/{b}.json" for b in ids} <= keys
    shown = listed(repo, env=env)
    assert sorted(shown) == sorted(ids) and all(i["last_verification"] == "ok" for i in shown.values())
    assert manifests() == before


def test_the_python_api_and_a_multi_destination_repository(tmp_path):
    repos = [str(tmp_path / "a"), str(tmp_path / "b")]
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repos)
    full = b.backup("full")["id"]
    inc = b.backup("incremental")["id"]
    report = b.verify_budget(0)
    assert (report.verified, report.left, report.failed) == ([full], [inc], [])
    assert report.bytes == b.status(full).bytes
    report = b.verify_budget("1h")
    assert report.verified == [inc] + [full] and report.seconds >= 0
    for root in repos:  # remembered on every destination
        assert sorted(p.stem for p in (Path(root) / "verifications").iterdir()) == sorted([full, inc])
    assert b.status(inc).last_verification == "ok"


def test_cleanup_removes_a_backups_verification_record_with_it(tmp_path):
    repo = tmp_path / "repo"
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(repo))
    old, new = b.backup("full")["id"], b.backup("full")["id"]
    assert verify_json(repo, "--budget", "1h")["verified"] == [old, new]
    assert cli("cleanup", "--repo", repo, "--keep-last", "1", "--apply").returncode == 0
    assert [i.id for i in b.list()] == [new]
    assert [p.name for p in (repo / "verifications").iterdir()] == [f"{new}.json"]


def test_budgets_parse_as_durations():
    assert [parse_budget(t) for t in ("90s", "10m", "1h", "1h30m", "0", "45", 12)] == [90, 600, 3600, 5400, 0, 45, 12]
    for bad in ("5x", "", "-3", "1d"):
        with pytest.raises(UsageError):
            parse_budget(bad)


def test_verify_id_still_answers_where_its_outcome_cannot_be_written(tmp_path):
    repo = tmp_path / "repo"
    full = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(repo)).backup("full")["id"]
    (repo / "verifications").write_text("a file where the folder should be")  # every write there fails
    proc = cli("verify", full, "--repo", repo)
    assert proc.returncode == 0 and f"backup {full}: ok" in proc.stdout
    assert f"the verification of {full} is not recorded in the repository" in proc.stderr
    budget = cli("verify", "--budget", "1h", "--repo", repo)  # a budgeted run without its memory would loop
    assert budget.returncode == 1 and "verifications" in budget.stderr and "Traceback" not in budget.stderr
