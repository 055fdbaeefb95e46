"""Immutable backups: an S3 repository with Object Lock (repository/object_lock.py) on servers
that enforce it. Both moto and SeaweedFS refuse to delete a locked object version (AccessDenied);
SeaweedFS also refuses to shorten a lock without the governance bypass, any bypass in
COMPLIANCE mode, and a date in the past, and answers GetObjectRetention (moto answers it 500).
So the refusals run on both, the lock's extension and compliance on SeaweedFS, and "after the
lock" on moto, where an administrator removes a GOVERNANCE retention with the bypass (as AWS
allows): the tests never wait for a date to pass."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from botocore.exceptions import ClientError

from backup_pipeline import Backups
from backup_pipeline.engine.retention import RetentionPolicy
from backup_pipeline.errors import StorageError, UsageError
from backup_pipeline.repository.s3 import S3Options, S3Repository
from backup_pipeline.repository.object_lock import ObjectLock
from backup_pipeline.settings import RepositorySettings
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]
DAYS = 7


def cli(*args, env=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})})


def aws_env(server):
    return {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_REGION": "us-east-1"}


def settings(server, bucket, mode: str | None = "governance", days: int | None = DAYS) -> RepositorySettings:
    return RepositorySettings(repos=[f"s3://{bucket}/backups"], endpoint_url=server.endpoint,
                              access_key_id=server.access_key, secret_access_key=server.secret_key,
                              object_lock=mode, object_lock_days=days if mode else None)


def two_backups(server, bucket, tmp_path, mode="governance"):
    """A locked bucket with two full backups (the older one is what keep-last 1 lets go)."""
    server.boto_client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    src = copy_fs_db(tmp_path / "src")
    with Backups(f"file://{src}", settings(server, bucket, mode)) as b:
        old = b.backup("full").id
        new = b.backup("full").id
    return old, new


def versions(client, bucket, prefix):
    page = client.list_object_versions(Bucket=bucket, Prefix=prefix)
    return ([(v["Key"], v["VersionId"]) for v in page.get("Versions", [])],
            [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])])


def retain_until(client, key, vid, bucket) -> datetime:
    return client.head_object(Bucket=bucket, Key=key, VersionId=vid)["ObjectLockRetainUntilDate"]


def test_every_file_and_manifest_is_written_locked(s3_server, bucket_name, tmp_path):
    before = datetime.now(timezone.utc)
    old, _new = two_backups(s3_server, bucket_name, tmp_path)
    c = s3_server.boto_client()
    objects, markers = versions(c, bucket_name, f"backups/{old}/")
    assert {k.rsplit("/", 1)[1] for k, _v in objects} >= {"s3db.json", "users.jsonl.gz"} and not markers
    for key, vid in objects:
        head = c.head_object(Bucket=bucket_name, Key=key, VersionId=vid)
        assert head["ObjectLockMode"] == "GOVERNANCE", key
        until = head["ObjectLockRetainUntilDate"]
        # retain-until dates are whole seconds, rounded up (ObjectLock.until)
        assert before + timedelta(days=DAYS) - timedelta(seconds=2) <= until <= datetime.now(timezone.utc) + timedelta(days=DAYS, seconds=1)
    # the choice stays with the repository: a later run without the options locks too
    config = orjson.loads(c.get_object(Bucket=bucket_name, Key="backups/object-lock.json")["Body"].read())
    assert config == {"mode": "GOVERNANCE", "days": DAYS}
    with Backups(f"file://{tmp_path / 'src'}", settings(s3_server, bucket_name, None)) as b:
        third = b.backup("full").id
        assert [m.id for m in b.list()][-1] == third  # the root config is no backup
    key = f"backups/{third}/s3db.json"
    assert c.head_object(Bucket=bucket_name, Key=key)["ObjectLockMode"] == "GOVERNANCE"


def test_a_locked_backup_is_neither_deleted_by_cleanup_nor_by_a_direct_delete(s3_server, bucket_name, tmp_path):
    old, new = two_backups(s3_server, bucket_name, tmp_path)
    c = s3_server.boto_client()
    objects_before = versions(c, bucket_name, "backups/")
    # cleanup: the policy lets `old` go, its lock keeps it, said with the date; exit 0
    proc = cli("cleanup", "--repo", f"s3://{bucket_name}/backups", "--keep-last", "1", "--apply",
               env=aws_env(s3_server))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith(old))
    manifest_key = f"backups/{old}/s3db.json"
    manifest_vid = next(v for k, v in objects_before[0] if k == manifest_key)
    until = retain_until(c, manifest_key, manifest_vid, bucket_name)
    assert " keep " in line and f"locked until {until:%Y-%m-%dT%H:%M:%SZ} (then removed: no rule keeps it)" in line
    assert "removed 0 backup(s)" in proc.stdout and "1 kept only by their object lock" in proc.stdout
    assert sorted(versions(c, bucket_name, f"backups/{old}/")[0]) == sorted(
        kv for kv in objects_before[0] if kv[0].startswith(f"backups/{old}/"))  # nothing removed
    # JSON says the same
    decisions = orjson.loads(cli("cleanup", "--repo", f"s3://{bucket_name}/backups", "--keep-last", "1", "--json",
                                 env=aws_env(s3_server)).stdout)
    held = next(d for d in decisions if d["id"] == old)
    assert held["action"] == "keep" and datetime.fromisoformat(held["locked_until"]) == until
    # a direct delete of the object version is refused by the server
    with pytest.raises(ClientError) as refused:
        c.delete_object(Bucket=bucket_name, Key=manifest_key, VersionId=manifest_vid)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # and so is cleanup told the lock is over when it is not (a clock gone wrong): the server has the last word
    with Backups(None, settings(s3_server, bucket_name, None)) as b:
        with pytest.raises(StorageError, match="AccessDenied"):
            b.cleanup(RetentionPolicy(keep_last=1), apply=True, now=until + timedelta(seconds=1))
        assert {m.id: m.state for m in b.list()}[old] == "complete"  # the manifest went first: refused
    remaining = versions(c, bucket_name, f"backups/{old}/")[0]
    assert all(kv in remaining for kv in objects_before[0] if kv[0].startswith(f"backups/{old}/"))


def test_after_its_lock_cleanup_deletes_every_version(moto_server, bucket_name, tmp_path):
    """An administrator removes the GOVERNANCE retention with the bypass (AWS allows it; moto
    too): the next cleanup deletes the backup, every object version and no delete marker left."""
    old, new = two_backups(moto_server, bucket_name, tmp_path)
    c = moto_server.boto_client()
    for key, vid in versions(c, bucket_name, f"backups/{old}/")[0]:
        c.put_object_retention(Bucket=bucket_name, Key=key, VersionId=vid, BypassGovernanceRetention=True,
                               Retention={})
    proc = cli("cleanup", "--repo", f"s3://{bucket_name}/backups", "--keep-last", "1", "--apply",
               env=aws_env(moto_server))
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 backup(s), kept 1" in proc.stdout
    assert versions(c, bucket_name, f"backups/{old}/") == ([], [])  # storage freed, not hidden by a marker
    assert versions(c, bucket_name, f"backups/{new}/")[0]
    with Backups(None, settings(moto_server, bucket_name, None)) as b:
        assert [m.id for m in b.list()] == [new]


def test_cleanup_extends_what_the_policy_keeps_and_compliance_cannot_be_shortened(seaweedfs_server, bucket_name,
                                                                                 tmp_path):
    old, new = two_backups(seaweedfs_server, bucket_name, tmp_path, mode="compliance")
    c = seaweedfs_server.boto_client()
    src = tmp_path / "src"
    with Backups(f"file://{src}", settings(seaweedfs_server, bucket_name, None)) as b:
        newest = b.backup("full").id
    before = {kv: c.get_object_retention(Bucket=bucket_name, Key=kv[0], VersionId=kv[1])["Retention"]
              for kv in versions(c, bucket_name, "backups/")[0] if "/object-lock.json" not in kv[0]
              and "/locks/" not in kv[0] and "/verifications/" not in kv[0] and "/tables/" not in kv[0]}
    # a cleanup run 3 days on keeps the two newest: their lock now ends 7 days after the run
    run = datetime.now(timezone.utc) + timedelta(days=3)
    with Backups(None, settings(seaweedfs_server, bucket_name, None)) as b:
        decisions = {d.id: d for d in b.cleanup(RetentionPolicy(keep_last=2), apply=True, now=run)}
    until = ObjectLock("COMPLIANCE", DAYS).until(run)  # to the next whole second, as S3 keeps it
    assert decisions[new].locked_until == until and decisions[newest].locked_until == until
    assert decisions[old].action == "keep" and decisions[old].held_by_lock  # dropped by the policy, still locked
    for (key, vid), retention in before.items():
        now_ = c.get_object_retention(Bucket=bucket_name, Key=key, VersionId=vid)["Retention"]
        assert now_["Mode"] == "COMPLIANCE"
        if key.startswith(f"backups/{old}/"):
            assert now_ == retention  # what the policy lets go is not extended
        else:
            assert now_["RetainUntilDate"] == until, key
    # a second run the same day has nothing to extend
    with Backups(None, settings(seaweedfs_server, bucket_name, None)) as b:
        assert all(d.locked_until is None or d.held_by_lock
                   for d in b.cleanup(RetentionPolicy(keep_last=2), apply=True, now=run))
    # COMPLIANCE: not even the bypass shortens it
    key, vid = next(kv for kv in before if kv[0].startswith(f"backups/{new}/"))
    with pytest.raises(ClientError) as refused:
        c.put_object_retention(Bucket=bucket_name, Key=key, VersionId=vid, BypassGovernanceRetention=True,
                               Retention={"Mode": "COMPLIANCE", "RetainUntilDate": run})
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_multipart_file_is_locked_too(seaweedfs_server, bucket_name):
    c = seaweedfs_server.boto_client()
    c.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    repo = S3Repository(f"s3://{bucket_name}/r", S3Options(
        endpoint_url=seaweedfs_server.endpoint, access_key_id=seaweedfs_server.access_key,
        secret_access_key=seaweedfs_server.secret_key, part_size=5 * 1024 * 1024))
    repo.object_lock = ObjectLock("GOVERNANCE", 1)
    with repo.create_file("full-2026-11-24T020000Z-ab12", "big.bin") as f:
        f.write(os.urandom(11 * 1024 * 1024))
    head = c.head_object(Bucket=bucket_name, Key="r/full-2026-11-24T020000Z-ab12/big.bin")
    assert head["ETag"].endswith('-3"') and head["ObjectLockMode"] == "GOVERNANCE"


def test_object_lock_is_refused_where_it_cannot_hold(moto_server, bucket_name, tmp_path):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)  # without object lock
    proc = cli("backup", "--source", copy_fs_db(tmp_path / "src"), "--repo", f"s3://{bucket_name}/b",
               "--object-lock", "governance", "--object-lock-days", "7", env=aws_env(moto_server))
    assert proc.returncode == 2 and "does not have object lock enabled" in proc.stderr
    with pytest.raises(UsageError, match="a folder cannot be locked"):
        RepositorySettings(repos=[str(tmp_path / "r")], object_lock="governance", object_lock_days=7).open()
    with pytest.raises(UsageError, match="needs --object-lock-days"):
        RepositorySettings(repos=[str(tmp_path / "r")], object_lock="governance").open()


def test_a_multi_repository_keeps_a_backup_locked_on_any_destination(moto_server, bucket_name, tmp_path):
    """A folder beside a locked bucket: what is locked in the bucket stays in both until its date."""
    c = moto_server.boto_client()
    c.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    repos = [str(tmp_path / "local"), f"s3://{bucket_name}/offsite"]
    s = RepositorySettings(repos=repos, endpoint_url=moto_server.endpoint, access_key_id=moto_server.access_key,
                           secret_access_key=moto_server.secret_key, object_lock="governance", object_lock_days=DAYS)
    with Backups(f"file://{copy_fs_db(tmp_path / 'src')}", s) as b:
        old = b.backup("full").id
        new = b.backup("full").id
        # a run a day later: the newest is kept and its lock extended (a run in the same second as the
        # backup could find its lock long enough already)
        later = datetime.now(timezone.utc) + timedelta(days=1)
        decisions = {d.id: d for d in b.cleanup(RetentionPolicy(keep_last=1), apply=True, now=later)}
    assert decisions[old].action == "keep" and decisions[old].held_by_lock
    assert decisions[new].locked_until is not None and not decisions[new].held_by_lock  # extended past the run
    assert (tmp_path / "local" / old / "s3db.json").exists()
    assert c.head_object(Bucket=bucket_name, Key=f"offsite/{old}/s3db.json")["ObjectLockMode"] == "GOVERNANCE"
