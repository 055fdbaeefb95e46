"""Source objects no s3db.js could have written are named, never a traceback nor a memory blow-up; with
--skip-corrupt they are recorded in the manifest like any other corrupt object."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def test_a_non_utf8_file_name_is_named_and_can_be_skipped(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    data = os.fsencode(src / "resource=users" / "data")
    body = (src / "resource=users" / "data" / "id=u1").read_bytes()
    sidecar = (src / "resource=users" / "data" / "id=u1.meta.json").read_bytes()
    for name, content in ((b"id=bad\xff", body), (b"id=bad\xff.meta.json", sidecar)):
        with open(os.path.join(data, name), "wb") as f:
            f.write(content)
    repo = tmp_path / "repo"
    failed = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo)],
                            capture_output=True, text=True)
    assert failed.returncode == 4, failed.stderr
    assert "id=bad\\udcff" in failed.stderr and "not valid UTF-8" in failed.stderr
    assert "Traceback" not in failed.stderr
    skipped = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo), "--skip-corrupt",
                              "--json"], capture_output=True, text=True)
    assert skipped.returncode == 0, skipped.stderr
    users = orjson.loads(skipped.stdout)["resources"]["users"]
    assert users["records"] == 4
    assert [s["key"] for s in users["skipped_corrupt"]] == ["resource=users/data/id=bad\\xff"]


def test_a_huge_metadata_value_is_refused_before_it_is_read(tmp_path):
    """A 64 MB metadata value in a sidecar (s3db.js keeps metadata under 2 KB) is refused by its
    size, naming the sidecar, instead of being read into memory several times over."""
    src = copy_fs_db(tmp_path / "src")
    sidecar = src / "resource=users" / "data" / "id=u1.meta.json"
    side = orjson.loads(sidecar.read_bytes())
    side["metadata"]["huge"] = "x" * (64 << 20)
    sidecar.write_bytes(orjson.dumps(side))
    repo = tmp_path / "repo"
    failed = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo)],
                            capture_output=True, text=True)
    assert failed.returncode == 4, failed.stderr
    assert f"{sidecar}: sidecar is 67,1" in failed.stderr and "under 2,047 bytes" in failed.stderr
    skipped = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo), "--skip-corrupt",
                              "--json"], capture_output=True, text=True)
    assert skipped.returncode == 0, skipped.stderr
    users = orjson.loads(skipped.stdout)["resources"]["users"]
    assert users["records"] == 3 and [s["key"] for s in users["skipped_corrupt"]] == ["resource=users/data/id=u1"]


def test_a_resource_name_too_long_for_the_repository_filesystem(moto_server, bucket_name, tmp_path):
    """S3 takes a 300-character resource name; a folder repository cannot hold its file: a usage
    error naming the path, never a traceback."""
    import copy
    import sys as _sys
    from pathlib import Path

    _sys.path.insert(0, str(Path(__file__).resolve().parent))
    from helpers import ITEMS_DB_JSON, item_objects

    from backup_pipeline.store import RawObject, open_store

    long_name = "r" * 300
    db_json = copy.deepcopy(ITEMS_DB_JSON)
    db_json["resources"] = {long_name: db_json["resources"]["items"]}
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    conn = moto_server.connection_string(bucket_name, "db")
    store = open_store(conn)
    store.put(RawObject(key="s3db.json", metadata={}, content_type="application/json", body=orjson.dumps(db_json)))
    for obj in item_objects(0, 3):
        store.put(RawObject(obj.key.replace("resource=items/", f"resource={long_name}/"), obj.metadata,
                            obj.content_type, obj.body))
    store.close()
    failed = subprocess.run([*CLI, "backup", "--source", conn, "--repo", str(tmp_path / "repo")],
                            capture_output=True, text=True)
    assert failed.returncode == 2, failed.stderr
    assert "name too long for this filesystem" in failed.stderr and long_name in failed.stderr
    assert "Traceback" not in failed.stderr
