"""The CLI against S3 repositories (endpoint and credentials from the AWS environment),
several destinations, copy, client-side encryption and cleanup."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def cli(*args, env=None, check=True):
    proc = subprocess.run([*CLI, *map(str, args)], capture_output=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr.decode()}")
    return proc


def aws_env(server):
    return {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_REGION": "us-east-1"}


def test_s3_repository_from_the_aws_environment(s3_server, bucket_name, tmp_path):
    s3_server.boto_client().create_bucket(Bucket=bucket_name)
    src = copy_fs_db(tmp_path / "src")
    env = aws_env(s3_server)
    repo = f"s3://{bucket_name}/backups/{{date}}"
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--storage-class", "STANDARD_IA",
                           "--json", env=env).stdout)
    keys = [o["Key"] for o in s3_server.boto_client().list_objects_v2(Bucket=bucket_name)["Contents"]]
    day = out["id"].split("-", 1)[1][:10]
    assert f"backups/{day}/{out['id']}/s3db.json" in keys
    assert orjson.loads(cli("verify", out["id"], "--repo", repo, "--json", env=env).stdout)["ok"] is True
    cli("restore", out["id"], "--repo", repo, "--target", f"file://{tmp_path / 'dst'}", env=env)
    assert (tmp_path / "dst" / "resource=users" / "data" / "id=u1").exists()


def test_multi_destination_and_copy(moto_server, bucket_name, tmp_path):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    src = copy_fs_db(tmp_path / "src")
    env = aws_env(moto_server)
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", tmp_path / "local",
                           "--repo", f"s3://{bucket_name}/offsite", "--json", env=env).stdout)
    listed = orjson.loads(cli("list", "--repo", tmp_path / "local", "--json").stdout)
    assert [b["id"] for b in listed] == [out["id"]]
    manifest = orjson.loads((tmp_path / "local" / out["id"] / "s3db.json").read_bytes())
    assert all(d["ok"] for d in manifest["destinations"].values()) and len(manifest["destinations"]) == 2
    copied = orjson.loads(cli("copy", out["id"], "--from", tmp_path / "local", "--to", tmp_path / "third",
                              "--json").stdout)
    assert copied["copied"][-1] == "s3db.json"
    assert orjson.loads(cli("verify", out["id"], "--repo", tmp_path / "third", "--json").stdout)["ok"]


def test_encrypted_repository(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    out = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--encrypt",
                           "--repo-passphrase", "correct horse", "--json").stdout)
    data = repo / out["id"] / "users.jsonl.gz"
    assert subprocess.run(["gzip", "-t", str(data)], capture_output=True).returncode != 0  # ciphertext
    config = orjson.loads((repo / "crypto.json").read_bytes())
    assert config["kdf"] == "scrypt" and "correct horse" not in (repo / "crypto.json").read_text()
    assert orjson.loads((repo / out["id"] / "s3db.json").read_bytes())["encryption"]["salt"] == config["salt"]
    # without the key: sha256 of the stored bytes only
    assert orjson.loads(cli("verify", out["id"], "--repo", repo, "--json").stdout)["content_checked"] is False
    wrong = cli("restore", out["id"], "--repo", repo, "--repo-passphrase", "wrong", "--target",
                f"file://{tmp_path / 'dst'}", check=False)
    assert wrong.returncode != 0 and b"wrong key" in wrong.stderr and not (tmp_path / "dst").exists()
    checked = orjson.loads(cli("verify", out["id"], "--repo", repo, "--repo-passphrase", "correct horse",
                               "--json").stdout)
    assert checked["content_checked"] is True
    cli("restore", out["id"], "--repo", repo, "--repo-passphrase", "correct horse", "--target",
        f"file://{tmp_path / 'dst'}")
    assert (tmp_path / "dst" / "resource=users" / "data" / "id=u1.meta.json").exists()
    # an incremental on top stays encrypted and restores
    inc = orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental",
                           "--repo-passphrase", "correct horse", "--json").stdout)
    assert inc["parent"] == out["id"]
    # a flipped byte in a data file is named
    blob = bytearray(data.read_bytes())
    blob[200] ^= 1
    data.write_bytes(bytes(blob))
    bad = cli("restore", out["id"], "--repo", repo, "--repo-passphrase", "correct horse", "--resource", "users",
              "--target", f"file://{tmp_path / 'dst2'}", check=False)
    assert bad.returncode == 4 and b"users.jsonl.gz" in bad.stderr


def test_cleanup_dry_run_then_apply(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    repo = tmp_path / "repo"
    ids = [orjson.loads(cli("backup", "--source", f"file://{src}", "--repo", repo, "--json").stdout)["id"]
           for _ in range(3)]
    dry = orjson.loads(cli("cleanup", "--repo", repo, "--keep-last", "1", "--json").stdout)
    assert {d["id"]: d["action"] for d in dry} == {ids[0]: "remove", ids[1]: "remove", ids[2]: "keep"}
    assert len(orjson.loads(cli("list", "--repo", repo, "--json").stdout)) == 3
    cli("cleanup", "--repo", repo, "--keep-last", "1", "--apply")
    assert [b["id"] for b in orjson.loads(cli("list", "--repo", repo, "--json").stdout)] == [ids[2]]


def test_wrong_secret_is_refused_by_seaweedfs_with_a_clear_message(seaweedfs_server, bucket_name, tmp_path):
    """moto accepts any signature; SeaweedFS checks it, so this is where credentials are tested."""
    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    src = copy_fs_db(tmp_path / "src")
    env = {**aws_env(seaweedfs_server), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    proc = cli("backup", "--source", f"file://{src}", "--repo", f"s3://{bucket_name}/b", env=env, check=False)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "storage error" in err and "check the access key" in err and "Traceback" not in err
