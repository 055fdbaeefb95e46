"""One conformance suite for every repository: filesystem (plain and templated), S3 on moto
and SeaweedFS, multi-destination, and client-side encrypted ones: files, manifests, root files
(crypto config, leases), the backup-file pipeline, then a real backup and restore through each."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import replace

import pytest

from backup_pipeline import Backups
from backup_pipeline.errors import ConflictError, IntegrityError, LockHeld, NotFound
from backup_pipeline.repository.encryption import CONFIG_NAME
from backup_pipeline.repository.files import FileWriter, read_lines
from backup_pipeline.repository.lock import acquire
from backup_pipeline.repository.manifest import Manifest
from backup_pipeline.repository import FilesystemRepository, open_repository
from backup_pipeline.engine.copy import copy_backup
from backup_pipeline.query.connection import connect
from backup_pipeline.repository.multi import MultiRepository
from backup_pipeline.repository.s3 import S3Options, S3Repository
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

KINDS = ["fs", "fs-template", "moto", "seaweedfs", "multi-fs-moto", "multi-bounded", "fs-encrypted",
         "seaweedfs-encrypted"]
BID = "full-2026-11-24T020000Z-ab12"


def s3_repo(server, bucket, prefix="backups", **opts) -> S3Repository:
    server.boto_client().create_bucket(Bucket=bucket)
    return S3Repository(f"s3://{bucket}/{prefix}", S3Options(
        endpoint_url=server.endpoint, access_key_id=server.access_key, secret_access_key=server.secret_key,
        part_size=5 * 1024 * 1024, **opts))


@pytest.fixture(params=KINDS)
def repo(request, tmp_path, bucket_name):
    kind = request.param
    if kind == "fs":
        return FilesystemRepository(tmp_path / "repo")
    if kind == "fs-template":
        return open_repository(f"{tmp_path}/repo/{{date}}/{{type}}")
    if kind in ("moto", "seaweedfs"):
        return s3_repo(request.getfixturevalue(f"{kind}_server"), bucket_name)
    if kind == "fs-encrypted":
        return open_repository(str(tmp_path / "repo"), passphrase="conformance", encrypt=True)
    if kind == "seaweedfs-encrypted":
        server = request.getfixturevalue("seaweedfs_server")
        server.boto_client().create_bucket(Bucket=bucket_name)
        return open_repository(f"s3://{bucket_name}/backups", S3Options(
            endpoint_url=server.endpoint, access_key_id=server.access_key, secret_access_key=server.secret_key),
            passphrase="conformance", encrypt=True)
    if kind == "multi-fs-moto":
        return MultiRepository([FilesystemRepository(tmp_path / "a"),
                                s3_repo(request.getfixturevalue("moto_server"), bucket_name)], "all", max_uploads=2)
    return MultiRepository([FilesystemRepository(tmp_path / d) for d in "abc"], "all", max_uploads=1)


def manifest(**extra) -> Manifest:
    return Manifest(id=BID, type="full", started_at="2026-11-24T02:00:00.000Z", database={"resources": {}},
                    resources={}, extra=extra)


def test_file_appears_only_when_complete_and_reads_back(repo):
    data = os.urandom(3 * 1024 * 1024 + 17)
    with repo.create_file(BID, "x.bin") as f:
        f.write(data[:1000])
        f.write(data[1000:])
    assert repo.file_size(BID, "x.bin") == len(data)
    with repo.open_file(BID, "x.bin") as f:
        assert f.read() == data
    assert "x.bin" in repo.file_names(BID)
    assert BID in repo.backup_ids()


def test_last_modified_is_the_newest_file(repo):
    from datetime import datetime, timedelta, timezone

    assert repo.last_modified(BID) is None
    before = datetime.now(timezone.utc) - timedelta(seconds=5)  # server clocks round to the second
    with repo.create_file(BID, "a.bin") as f:
        f.write(b"a")
    stamp = repo.last_modified(BID)
    assert stamp is not None and stamp.tzinfo is not None
    assert before <= stamp <= datetime.now(timezone.utc) + timedelta(seconds=5)


def test_failed_write_leaves_nothing(repo):
    with pytest.raises(RuntimeError):
        with repo.create_file(BID, "y.bin") as f:
            f.write(b"partial" * 1000)
            raise RuntimeError("disk on fire")
    assert "y.bin" not in repo.file_names(BID)
    with pytest.raises(NotFound):
        repo.open_file(BID, "y.bin")


def test_manifest_is_create_only_and_commits(repo):
    with repo.create_file(BID, "data.jsonl") as f:
        f.write(b"{}\n")
    assert repo.read_manifest(BID) is None
    repo.commit_manifest(BID, manifest(n=1))
    assert repo.read_manifest(BID).extra["n"] == 1  # keys this version does not know are kept
    with pytest.raises(ConflictError, match="never overwritten"):
        repo.commit_manifest(BID, manifest(n=2))
    assert repo.read_manifest(BID).extra["n"] == 1


def test_delete_removes_everything(repo):
    with repo.create_file(BID, "data.jsonl") as f:
        f.write(b"{}\n")
    repo.commit_manifest(BID, manifest())
    repo.delete_backup(BID)
    assert repo.read_manifest(BID) is None
    assert BID not in repo.backup_ids()


def test_root_files_are_create_only_and_listed(repo):
    assert repo.create_root("locks/a-1.json", b"one") is True
    assert repo.create_root("locks/a-1.json", b"two") is False  # create-only
    assert repo.read_root("locks/a-1.json") == b"one"
    repo.replace_root("locks/a-1.json", b"three")
    assert repo.read_root("locks/a-1.json") == b"three"
    repo.create_root("locks/b-2.json", b"x")
    assert repo.list_root("locks/") == ["locks/a-1.json", "locks/b-2.json"]
    assert repo.list_root("locks/a-") == ["locks/a-1.json"]
    repo.delete_root("locks/a-1.json")
    repo.delete_root("locks/a-1.json")  # deleting what is gone is no error
    assert repo.read_root("locks/a-1.json") is None and repo.list_root("locks/") == ["locks/b-2.json"]
    assert BID not in repo.backup_ids() and "locks" not in repo.backup_ids()


def test_verification_records_live_at_the_root_and_are_replaced_whole(repo):
    from backup_pipeline.repository.manifest import Verification
    from backup_pipeline.repository.verifications import read_verification, write_verification

    with repo.create_file(BID, "data.jsonl") as f:
        f.write(b"{}\n")
    repo.commit_manifest(BID, manifest())
    committed = repo.read_manifest(BID).to_bytes()
    assert read_verification(repo, BID) is None
    write_verification(repo, Verification(BID, "2026-11-24T03:00:00.000Z", "failed", "it differs", None, 0.5))
    write_verification(repo, Verification(BID, "2026-11-25T03:00:00.000Z", "ok", None, 3, 0.25))
    assert read_verification(repo, BID) == Verification(BID, "2026-11-25T03:00:00.000Z", "ok", None, 3, 0.25)
    assert repo.backup_ids() == [BID] and repo.file_names(BID) == ["data.jsonl", "s3db.json"]
    assert repo.read_manifest(BID).to_bytes() == committed


def test_leases_exclude_and_release(repo):
    lease = acquire(repo, "backup", "file:///db")
    with pytest.raises(LockHeld):
        acquire(repo, "backup", "file:///db")
    with pytest.raises(LockHeld):
        acquire(repo, "cleanup", repo.url)
    lease.release()
    assert [n for n in repo.list_root("locks/")] == []
    acquire(repo, "cleanup", repo.url).release()


def test_crypto_config_at_the_root(repo):
    config = repo.read_root(CONFIG_NAME)
    assert (config is not None) == repo.encryption.enabled
    assert CONFIG_NAME not in repo.backup_ids()


def test_file_pipeline_round_trip_and_tampering(repo):
    lines = [b'{"id": "r%d"}\n' % i for i in range(5000)]
    writer = FileWriter(repo, BID, "r.jsonl.gz", "gzip")
    writer.write_lines(lines)
    stored = writer.close()
    assert stored.lines == 5000 and stored.bytes == repo.file_size(BID, "r.jsonl.gz")
    with repo.open_file(BID, "r.jsonl.gz") as f:
        raw = f.read()
    assert hashlib.sha256(raw).hexdigest() == stored.sha256  # the stored bytes are what is hashed
    assert raw.startswith(b"\x1f\x8b") != repo.encryption.enabled  # encrypted: no gzip header in storage
    assert [line + b"\n" for _n, line in read_lines(repo, BID, "r.jsonl.gz", "gzip", stored)] == lines
    with pytest.raises(IntegrityError, match="r.jsonl.gz: 5000 lines, the manifest records 4999"):
        for _ in read_lines(repo, BID, "r.jsonl.gz", "gzip", replace(stored, lines=4999)):
            pass
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        for _ in read_lines(repo, BID, "r.jsonl.gz", "gzip", replace(stored, sha256="0" * 64)):
            pass
    aborted = FileWriter(repo, BID, "gone.jsonl", "none")
    aborted.write(b"{}\n")
    aborted.abort()
    assert "gone.jsonl" not in repo.file_names(BID)


def test_backup_and_restore_through_the_repository(repo, tmp_path):
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    b = Backups(src, repo)
    full = b.backup("full")
    inc = b.backup("incremental")
    assert [i.state for i in b.list()] == ["complete", "complete"]
    assert b.verify(inc["id"]).chain == [full["id"], inc["id"]]
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    report = b.restore(inc["id"], target)
    assert sum(p.written for p in report.resources.values()) == 27


def test_fs_template_places_backups_by_date_and_type(tmp_path):
    repo = open_repository(f"{tmp_path}/repo/{{date}}/{{type}}")
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    m = Backups(src, repo).backup("full", resources=["users"])
    day = m["id"].split("-", 1)[1][:10]
    assert (tmp_path / "repo" / day / "full" / m["id"] / "s3db.json").exists()


@pytest.mark.parametrize("where", ["fs", "moto"])
def test_hive_style_folders_list_by_backup_id_and_read_as_partition_columns(where, tmp_path, request, bucket_name):
    """`dt={date}/backup_id={id}`: the id is read from the folder's last segment, so list, the
    incremental's parent and restore work, and a plain DuckDB glob with hive_partitioning gives
    every line its dt and backup_id columns."""
    template = "dt={date}/backup_id={id}"
    if where == "fs":
        repo = open_repository(f"{tmp_path}/repo/{template}")
        glob = f"{tmp_path}/repo/*/*/users.jsonl.gz"
    else:
        repo = s3_repo(request.getfixturevalue("moto_server"), bucket_name, prefix=f"backups/{template}")
        glob = f"s3://{bucket_name}/backups/*/*/users.jsonl.gz"
    con = connect(repo)  # httpfs and an S3 secret for the S3 repository
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    b = Backups(src, repo)
    full = b.backup("full")
    src.delete("resource=users/data/id=u1")
    inc = b.backup("incremental")
    assert [i.id for i in b.list()] == [full["id"], inc["id"]] and inc["parent"] == full["id"]
    day = full["id"].split("-", 1)[1][:10]
    assert repo.backup_dir(full["id"]) == f"dt={day}/backup_id={full['id']}"
    rows = con.execute(f"SELECT backup_id, dt::VARCHAR, count(*), count(*) FILTER (WHERE _deleted) "
                       f"FROM read_json_auto('{glob}', hive_partitioning = true) GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [(full["id"], day, 4, 0), (inc["id"], day, 1, 1)]
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    assert b.restore(inc["id"], target).resources["users"].written == 3


def test_s3_storage_class_and_sse(seaweedfs_server, bucket_name, tmp_path):
    repo = s3_repo(seaweedfs_server, bucket_name, storage_class="STANDARD_IA", sse="AES256")
    with repo.create_file(BID, "f.bin") as f:
        f.write(b"hello")
    head = seaweedfs_server.boto_client().head_object(Bucket=bucket_name, Key=f"backups/{BID}/f.bin")
    assert head.get("StorageClass") == "STANDARD_IA"
    assert head.get("ServerSideEncryption") == "AES256"


def test_s3_sse_c_needs_the_customer_key(seaweedfs_server, bucket_name):
    key = base64.b64encode(os.urandom(32)).decode()
    repo = s3_repo(seaweedfs_server, bucket_name, sse="sse-c", sse_customer_key=key)
    with repo.create_file(BID, "secret.bin") as f:
        f.write(b"top secret")
    with repo.open_file(BID, "secret.bin") as f:
        assert f.read() == b"top secret"
    client = seaweedfs_server.boto_client()
    with pytest.raises(Exception):  # without the key the server refuses (SeaweedFS checks, moto does not)
        client.get_object(Bucket=bucket_name, Key=f"backups/{BID}/secret.bin")["Body"].read()
    other = s3_repo(seaweedfs_server, bucket_name + "x", sse="sse-c", sse_customer_key=base64.b64encode(os.urandom(32)).decode())
    other._store = S3Repository(f"s3://{bucket_name}/backups", S3Options(
        endpoint_url=seaweedfs_server.endpoint, access_key_id=seaweedfs_server.access_key,
        secret_access_key=seaweedfs_server.secret_key, sse="sse-c",
        sse_customer_key=base64.b64encode(os.urandom(32)).decode()))._store
    with pytest.raises(Exception):
        other.open_file(BID, "secret.bin").read()


def test_s3_large_file_is_multipart(moto_server, bucket_name):
    repo = s3_repo(moto_server, bucket_name)
    data = os.urandom(12 * 1024 * 1024)
    with repo.create_file(BID, "big.bin") as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
    head = moto_server.boto_client().head_object(Bucket=bucket_name, Key=f"backups/{BID}/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 5 MiB parts
    with repo.open_file(BID, "big.bin") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_multi_any_survives_a_failing_destination_and_copy_completes_it(tmp_path):
    good = FilesystemRepository(tmp_path / "good")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    bad = FilesystemRepository(blocked)
    multi = MultiRepository([bad, good], "any")
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    m = Backups(src, multi).backup("full", resources=["users"])
    dest = good.read_manifest(m["id"])["destinations"]
    assert dest[good.url]["ok"] is True and dest[bad.url]["ok"] is False and dest[bad.url]["error"]
    fixed = FilesystemRepository(tmp_path / "later")
    assert copy_backup(good, fixed, m["id"])[-1] == "s3db.json"
    assert Backups(None, fixed).verify(m["id"]).files == 2


def test_multi_all_fails_when_one_destination_fails(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("x")
    multi = MultiRepository([FilesystemRepository(tmp_path / "good"), FilesystemRepository(blocked)], "all")
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    with pytest.raises(Exception, match="strategy all|Not a directory"):
        Backups(src, multi).backup("full", resources=["users"])
    assert FilesystemRepository(tmp_path / "good").backup_ids() == [] or \
        all(FilesystemRepository(tmp_path / "good").read_manifest(b) is None
            for b in FilesystemRepository(tmp_path / "good").backup_ids())


def test_multi_priority_takes_the_first_that_works(tmp_path, moto_server, bucket_name):
    dead = S3Repository("s3://nobucket-here/x", S3Options(endpoint_url="http://127.0.0.1:9", access_key_id="k",
                                                           secret_access_key="s"))
    dead._store = S3Repository("s3://nobucket-here/x", S3Options(endpoint_url="http://127.0.0.1:9", access_key_id="k",
                                                                 secret_access_key="s"))._store
    second = FilesystemRepository(tmp_path / "second")
    third = FilesystemRepository(tmp_path / "third")
    multi = MultiRepository([second, third], "priority")
    src = open_store(f"file://{copy_fs_db(tmp_path / 'src')}")
    m = Backups(src, multi).backup("full", resources=["users"])
    assert second.read_manifest(m["id"]) is not None and third.backup_ids() == []
