"""A file name that is not UTF-8 in a filesystem source is named, never a traceback; with
--skip-corrupt it is recorded in the manifest like any other corrupt object."""

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
