"""The typed manifest (repository/manifest.py): what is stored loads and dumps back unchanged."""

from __future__ import annotations

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.errors import IntegrityError
from backup_pipeline.repository.manifest import Manifest, Plan, ResourceEntry
from s3db_fixtures import copy_fs_db


def test_real_manifests_round_trip_byte_for_byte(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    full = b.backup("full", parquet=True)
    inc = b.backup("incremental")
    for m in (full, inc):
        stored = (tmp_path / "repo" / m.id / "s3db.json").read_bytes()
        loaded = Manifest.parse(stored, "s3db.json")
        assert loaded.to_bytes() == stored
        assert loaded.resources["users"].data.file == "users.jsonl.gz" and loaded.chain[-1] == m.id
    assert inc.parent == full.id and inc.chain == [full.id, inc.id]
    assert full.resources["users"].parquet.rows == 4
    assert full["resources"]["users"]["records"] == 4  # the API's JSON view


def test_unknown_keys_are_kept(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    data = b.backup("full", resources=["users"]).dump()
    data["fromTheFuture"] = {"x": 1}
    data["resources"]["users"]["alsoNew"] = 2
    again = Manifest.load(orjson.loads(orjson.dumps(data))).dump()
    assert again["fromTheFuture"] == {"x": 1} and again["resources"]["users"]["alsoNew"] == 2


@pytest.mark.parametrize("damage, named", [
    (lambda d: d.pop("startedAt"), "lacks startedAt"),
    (lambda d: d.update(resources=[]), "resources are not a JSON object"),
    (lambda d: d["resources"]["users"].pop("sha256"), "resource 'users': a file entry lacks sha256"),
])
def test_a_damaged_manifest_is_named(tmp_path, damage, named):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    data = b.backup("full", resources=["users"]).dump()
    damage(data)
    with pytest.raises(IntegrityError, match=named):
        Manifest.load(data, "repo/x/s3db.json")


def test_plan_and_stage_entries_round_trip():
    plan = Plan("full-2026-11-22T000000Z-ab12", "full", None, "2026-11-22", "2026-11-22T00:00:00.000Z",
                "2026-11-22T02:00:00+00:00", "file:///db", {"resources": {}})
    assert Plan.load(plan.dump()) == plan
    entry = {"records": 2, "tombstones": 1, "snapshot": False, "unchanged": 5, "fetched": 3, "file": "u.jsonl.gz",
             "compression": "gzip", "lines": 3, "bytes": 10, "sha256": "ab", "index": {
                 "file": "u.index.jsonl.gz", "compression": "gzip", "lines": 7, "bytes": 9, "sha256": "cd",
                 "entries": 7}, "listed_at": "2026-11-22T00:00:00.000Z", "seconds": 0.5}
    assert ResourceEntry.load(entry).dump() == entry


def test_a_manifest_of_a_newer_format_is_refused(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    m = b.backup("full", resources=["users"])
    path = tmp_path / "repo" / m.id / "s3db.json"
    path.write_bytes(path.read_bytes().replace(b'"formatVersion": 1', b'"formatVersion": 99'))
    with pytest.raises(IntegrityError, match=r"s3db\.json: manifest format version 99 is unknown"):
        b.status(m.id)


def test_a_manifest_resource_missing_from_its_database_is_named(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    data = b.backup("full", resources=["users"]).dump()
    del data["database"]["resources"]["users"]
    with pytest.raises(IntegrityError, match=r"resource\(s\) 'users' of the manifest are missing from its s3db.json"):
        Manifest.load(data, "s3db.json")


def test_a_lost_crypto_json_says_to_put_it_back_never_to_make_a_new_key(tmp_path):
    import subprocess
    import sys

    src = copy_fs_db(tmp_path / "src")
    Backups(f"file://{src}", str(tmp_path / "repo"), repo_passphrase="pw", encrypt=True).backup("full",
                                                                                                  resources=["users"])
    (tmp_path / "repo" / "crypto.json").unlink()
    for argv in (["list", "--repo", str(tmp_path / "repo")],
                 ["backup", "--source", f"file://{src}", "--repo", str(tmp_path / "repo"), "--repo-passphrase", "pw",
                  "--encrypt"]):
        proc = subprocess.run([sys.executable, "-m", "backup_pipeline.cli", *argv], capture_output=True, text=True)
        assert proc.returncode == 4, proc.stderr
        assert "crypto.json is missing" in proc.stderr and "put crypto.json back" in proc.stderr
        assert "Do not pass --encrypt" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "repo" / "crypto.json").exists()  # no new key was made


def test_a_closed_stdout_is_a_quiet_exit(tmp_path):
    import subprocess
    import sys

    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
    from helpers import make_items_db

    make_items_db(tmp_path / "src", 3000)  # ~1 MB of output: far more than a pipe holds
    proc = subprocess.run(f"set -o pipefail; {sys.executable} -m backup_pipeline.cli inspect "
                          f"--source file://{tmp_path / 'src'} | head -1", shell=True, executable="/bin/bash",
                          capture_output=True, text=True)
    assert proc.stdout.count("\n") == 1
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
