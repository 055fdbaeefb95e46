"""Leases with real processes: one writer per repository and source, stale takeover."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.repository.lock import LockHeld, acquire, lease_prefix

HOLDER = textwrap.dedent("""
    import sys, time
    from backup_pipeline.repository import open_repository
    from backup_pipeline.repository.lock import acquire
    repo = open_repository(sys.argv[1])
    with acquire(repo, "backup", "file:///some/db", ttl=float(sys.argv[2])):
        print("held", flush=True)
        sys.stdin.readline()   # hold until the test says so
""")


def _hold(repo_path, ttl=30.0):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo_path), str(ttl)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_with_its_own_exit_code(tmp_path):
    holder = _hold(tmp_path / "repo")
    try:
        repo = FilesystemRepository(tmp_path / "repo")
        with pytest.raises(LockHeld, match=r"held by .*pid %d" % holder.pid) as err:
            acquire(repo, "backup", "file:///some/db")
        assert err.value.exit_code == 7
        # another source is another lease
        acquire(repo, "backup", "file:///other/db").release()
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    acquire(FilesystemRepository(tmp_path / "repo"), "backup", "file:///some/db").release()


def test_waiter_gets_the_lease_once_released(tmp_path):
    holder = _hold(tmp_path / "repo")
    repo = FilesystemRepository(tmp_path / "repo")
    waiter = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from backup_pipeline.repository import open_repository
        from backup_pipeline.repository.lock import acquire
        with acquire(open_repository(sys.argv[1]), "backup", "file:///some/db", wait=30, poll=0.05):
            print("got it", flush=True)
    """), str(tmp_path / "repo")], stdout=subprocess.PIPE, text=True)
    assert [n for n in repo.list_root("locks/") if n.startswith(lease_prefix("backup", "file:///some/db"))]
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=10)
    assert waiter.stdout.readline().strip() == "got it"
    assert waiter.wait(timeout=30) == 0


def test_killed_owner_lease_is_taken_over(tmp_path):
    holder = _hold(tmp_path / "repo", ttl=3600)
    holder.kill()
    holder.wait()
    lease = acquire(FilesystemRepository(tmp_path / "repo"), "backup", "file:///some/db")
    assert orjson.loads(FilesystemRepository(tmp_path / "repo").read_root(lease.name))["pid"] != holder.pid
    lease.release()


def test_expired_heartbeat_from_another_host_is_taken_over(tmp_path):
    repo = FilesystemRepository(tmp_path / "repo")
    name = lease_prefix("backup", "s3://b/db") + "-elsewhere.json"
    repo.create_root(name, orjson.dumps({"owner": "elsewhere", "host": "other-host", "pid": 1, "subject": "s3://b/db",
                                         "heartbeat": time.time() - 120, "ttl": 60}))
    lease = acquire(repo, "backup", "s3://b/db")
    assert repo.read_root(name) is None  # the stale lease is gone
    assert orjson.loads(repo.read_root(lease.name))["owner"] == lease.owner
    lease.release()
    assert repo.list_root("locks/") == []


def test_fresh_lease_from_another_host_is_respected(tmp_path):
    repo = FilesystemRepository(tmp_path / "repo")
    repo.create_root(lease_prefix("backup", "s3://b/db") + "-elsewhere.json", orjson.dumps(
        {"owner": "elsewhere", "host": "other-host", "pid": 1, "subject": "s3://b/db", "heartbeat": time.time(),
         "ttl": 60}))
    with pytest.raises(LockHeld, match="other-host"):
        acquire(repo, "backup", "s3://b/db")
    assert len(repo.list_root("locks/")) == 1  # the refused one left nothing behind


def test_s3_lease_is_create_only(moto_server, bucket_name):
    from backup_pipeline.repository.s3 import S3Options, S3Repository

    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    repo = S3Repository(f"s3://{bucket_name}/r", S3Options(endpoint_url=moto_server.endpoint, access_key_id="k",
                                                           secret_access_key="s"))
    lease = acquire(repo, "backup", "x")
    with pytest.raises(LockHeld):
        acquire(repo, "backup", "x")
    lease.release()
    acquire(repo, "backup", "x").release()


def test_restore_takes_a_lock_on_the_target(tmp_path):
    from backup_pipeline import Backups
    from backup_pipeline.repository.lock import StoreLeaseBackend
    from backup_pipeline.store import open_store
    from s3db_fixtures import copy_fs_db

    b = Backups(open_store(f"file://{copy_fs_db(tmp_path / 'src')}"), str(tmp_path / "repo"))
    m = b.backup("full", resources=["users"])
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    lease = acquire(StoreLeaseBackend(target), "restore", target.url)
    try:
        with pytest.raises(LockHeld, match="restore lock"):
            b.restore(m["id"], target)
    finally:
        lease.release()
    b.restore(m["id"], target)
    assert not list(target.list_prefix("plugin=backup-pipeline/"))


def test_steps_of_one_group_share_and_exclude_everyone_else(tmp_path):
    """The steps of one staged backup run side by side; another backup of the source does not."""
    repo = FilesystemRepository(tmp_path / "repo")
    step1 = acquire(repo, "backup", "file:///db", group="partition 2026-11-30")
    step2 = acquire(repo, "backup", "file:///db", group="partition 2026-11-30")
    with pytest.raises(LockHeld, match="backup 'file:///db'"):
        acquire(repo, "backup", "file:///db")  # a CLI run of the same source
    with pytest.raises(LockHeld):
        acquire(repo, "backup", "file:///db", group="partition 2026-12-01")  # another partition
    step1.release()
    with pytest.raises(LockHeld):
        acquire(repo, "backup", "file:///db")  # step 2 still holds it
    step2.release()
    acquire(repo, "backup", "file:///db").release()


def test_cleanup_is_exclusive(tmp_path):
    repo = FilesystemRepository(tmp_path / "repo")
    backup = acquire(repo, "backup", "file:///db")
    with pytest.raises(LockHeld, match="cleanup lock"):
        acquire(repo, "cleanup", repo.url)
    backup.release()
    cleanup = acquire(repo, "cleanup", repo.url)
    with pytest.raises(LockHeld, match="held by cleanup"):
        acquire(repo, "backup", "file:///other/db")
    with pytest.raises(LockHeld):
        acquire(repo, "copy", "full-2026-01-01T000000Z-ab12")
    cleanup.release()
