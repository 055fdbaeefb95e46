"""Restore checks every file of the chain against its manifest before the target is whole: a
changed byte never restores with exit 0, and the target keeps its unfinished-restore marker."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.engine import restore_marker
from backup_pipeline.errors import BackupPipelineError, IntegrityError, MetadataLossRefused
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def test_an_edited_value_is_refused_naming_the_file(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), tmp_path / "repo"
    m = Backups(f"file://{src}", str(repo)).backup("full", compression="none")
    data = repo / m.id / "users.jsonl"
    body = data.read_bytes()
    assert b'"name":"' in body
    data.write_bytes(body.replace(b'"name":"', b'"name":"X', 1))  # one value edited, still valid JSON
    proc = subprocess.run([*CLI, "restore", m.id, "--repo", str(repo), "--target", f"file://{tmp_path / 'dst'}"],
                          capture_output=True, text=True)
    assert proc.returncode == 4, proc.stderr
    assert f"{data}: sha256" in proc.stderr and "Traceback" not in proc.stderr
    target = open_store(f"file://{tmp_path / 'dst'}")
    assert restore_marker.read(target) is not None  # never looks complete
    with pytest.raises(Exception):
        target.read_database_json()


def _flip(path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression, encrypted", [("none", False), ("zstd", False), ("brotli", False),
                                                    ("gzip", False), ("gzip", True)])
def test_a_flipped_bit_never_restores_wrong_data(tmp_path, compression, encrypted):
    src = copy_fs_db(tmp_path / "src")
    repo = str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo, repo_passphrase="pw" if encrypted else None, encrypt=encrypted)
    m = b.backup("full", resources=["users"], compression=compression)
    path = tmp_path / "repo" / m.id / m.resources["users"].data.file
    pristine = path.read_bytes()
    size = len(pristine)
    for i, position in enumerate(sorted({0, 1, size // 7, size // 3, size // 2, 2 * size // 3, size - 2, size - 1})):
        path.write_bytes(pristine)
        _flip(path, position)
        target = tmp_path / f"dst-{i}"
        with pytest.raises(BackupPipelineError) as err:  # named, with its exit code: never a traceback
            b.restore(m.id, f"file://{target}")
        assert err.value.exit_code == 4, err.value
        assert restore_marker.read(open_store(f"file://{target}", create=True)) is not None or \
            not any(target.rglob("id=*")), f"flip at {position}: wrote records and cleared its marker"


def test_records_and_tombstones_are_counted_against_the_manifest(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), tmp_path / "repo"
    m = Backups(f"file://{src}", str(repo)).backup("full", resources=["users"], compression="none")
    data = repo / m.id / "users.jsonl"
    lines = data.read_bytes().splitlines(keepends=True)
    record = orjson.loads(lines[-1])
    key = record["_s3db"]["key"]
    # the last record replaced by a tombstone: same line count, bytes and sha256 made to agree
    tomb = orjson.dumps({"id": record["id"], "_deleted": True, "_s3db": {"key": key, "deleted": True}}) + b"\n"
    body = b"".join(lines[:-1]) + tomb
    data.write_bytes(body)
    manifest_path = repo / m.id / "s3db.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["resources"]["users"].update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    manifest_path.write_bytes(orjson.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"users\.jsonl: 3 records and 1 tombstones, the manifest of backup .* "
                                             r"records 4 and 0"):
        Backups(None, str(repo)).restore(m.id, f"file://{tmp_path / 'dst'}")


def test_an_encrypted_file_from_another_backup_fails_authentication(tmp_path):
    """Both backups of the same repository and key: the file and its manifest entry copied from
    one into the other still fail, because each encrypted file is bound to its backup and name."""
    src, repo = copy_fs_db(tmp_path / "src"), tmp_path / "repo"
    b = Backups(f"file://{src}", str(repo), repo_passphrase="pw", encrypt=True)
    first = b.backup("full", resources=["users"])
    (src / "resource=users" / "data" / "id=u1").write_bytes(b"")  # a change between the two backups
    second = b.backup("full", resources=["users"])
    name = first.resources["users"].data.file
    (repo / second.id / name).write_bytes((repo / first.id / name).read_bytes())
    manifest_path = repo / second.id / "s3db.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["resources"]["users"] = orjson.loads((repo / first.id / "s3db.json").read_bytes())["resources"]["users"]
    manifest_path.write_bytes(orjson.dumps(manifest))
    with pytest.raises(IntegrityError, match=rf"{name}: chunk 0 .*another backup or name"):
        b.restore(second.id, f"file://{tmp_path / 'dst'}")


def test_encrypted_files_written_before_binding_still_read(tmp_path):
    """Files of repositories encrypted before files were bound (flag 0) read as they did."""
    from backup_pipeline.repository import open_repository
    from backup_pipeline.repository.crypto import EncryptingWriter
    from backup_pipeline.repository.files import read_lines

    repo = open_repository(str(tmp_path / "repo"), passphrase="pw", encrypt=True)
    bid = "full-2026-11-24T020000Z-ab12"
    with repo.create_file(bid, "old.jsonl") as raw:
        w = EncryptingWriter(raw, repo.encryption.key)  # no context: as written by earlier versions
        w.write(b'{"id": "a"}\n')
        w.close()
    assert [line for _n, line in read_lines(repo, bid, "old.jsonl", "none")] == [b'{"id": "a"}']


def _full_then_incremental_deleting_u2(tmp_path):
    """A chain of two backups of the fixture: a full, then an incremental after users/u2 is deleted."""
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    b.backup("full")
    (src / "resource=users" / "data" / "id=u2").unlink()
    (src / "resource=users" / "data" / "id=u2.meta.json").unlink()
    return b, b.backup("incremental")


def test_verify_reads_every_object_back(tmp_path):
    b, inc = _full_then_incremental_deleting_u2(tmp_path)
    report = b.restore(inc.id, f"file://{tmp_path / 'dst'}", verify=True)
    assert {n: (p.written, p.verified) for n, p in report.resources.items()}["users"] == (3, 3)
    assert all(p.verified == p.written for p in report.resources.values())


def test_a_target_that_drops_empty_metadata_is_refused_before_writing(seaweedfs_server, bucket_name, tmp_path):
    """SeaweedFS drops x-amz-meta-* values that are empty, and s3db.js writes "" and [] as empty
    values: a probe finds it before anything is written, and the restore refuses naming the 7
    fields of the fixture it would lose (exit 2). Accepted with the flag, the restore runs and
    --verify counts the 7 dropped values instead of failing on them."""
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    m = Backups(f"file://{src}", repo).backup("full")
    target = seaweedfs_server.connection_string(bucket_name, "db")
    with pytest.raises(MetadataLossRefused, match=r"drops empty metadata values .* would lose 7 empty field") as err:
        Backups(None, repo).restore(m.id, target)
    assert err.value.exit_code == 2 and "--accept-empty-metadata-loss" in str(err.value)
    assert len([line for line in str(err.value).splitlines() if line.startswith("  ")]) == 7
    listed = seaweedfs_server.boto_client().list_objects_v2(Bucket=bucket_name, Prefix="db/")
    assert listed.get("KeyCount", 0) == 0  # nothing written, the probe removed
    report = Backups(None, repo).restore(m.id, target, verify=True, accept_empty_metadata_loss=True)
    assert sum(p.empty_values_lost for p in report.resources.values()) == 7
    assert sum(p.verified for p in report.resources.values()) == 27
    store = open_store(target)
    assert restore_marker.read(store) is None
    store.close()


def test_the_cli_names_the_fields_a_target_would_drop(seaweedfs_server, bucket_name, tmp_path):
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    m = Backups(f"file://{src}", repo).backup("full")
    target = seaweedfs_server.connection_string(bucket_name, "db")
    proc = subprocess.run([*CLI, "restore", m.id, "--repo", repo, "--target", target],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "would lose 7 empty field value(s)" in proc.stderr
    proc = subprocess.run([*CLI, "restore", m.id, "--repo", repo, "--target", target, "--verify",
                           "--accept-empty-metadata-loss"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "7 empty metadata value(s) dropped by the target, as accepted" in proc.stdout


def test_a_target_that_keeps_empty_metadata_is_not_refused(moto_server, bucket_name, tmp_path):
    """moto keeps empty values: the probe passes, the restore writes them, --verify finds none lost."""
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    m = Backups(f"file://{src}", repo).backup("full")
    report = Backups(None, repo).restore(m.id, moto_server.connection_string(bucket_name, "db"), verify=True)
    assert sum(p.empty_values_lost for p in report.resources.values()) == 0
    assert sum(p.verified for p in report.resources.values()) == 27


def test_restore_progress_knows_its_total(tmp_path):
    """The key index counts a resource's objects at the backup: a restore's progress runs to that
    total (so a terminal can show an ETA), for a chain as for a full."""
    from backup_pipeline.engine.progress import Progress

    class Recorder(Progress):
        def __init__(self):
            self.totals, self.done = {}, {}

        def start(self, task, total=None):
            self.totals[task] = total

        def advance(self, task, n=1):
            self.done[task] = self.done.get(task, 0) + n

    b, inc = _full_then_incremental_deleting_u2(tmp_path)
    seen = Recorder()
    b.restore(inc.id, f"file://{tmp_path / 'dst'}", progress=seen, verify=True)
    assert seen.totals["users"] == seen.done["users"] == 3  # one deleted since the full
    assert seen.totals["verify users"] == 3
    assert all(seen.totals[t] == seen.done.get(t, 0) for t in seen.totals if not t.startswith("verify"))
