"""Bad input in a database gets an error that names the file or key, and what to do."""

from __future__ import annotations

import pytest

from backup_pipeline.errors import CorruptObject, DatabaseNotFound, MetadataFileError, NotFound
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db


def test_missing_database_folder(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        open_store(f"file://{tmp_path}/nowhere")


def test_missing_s3db_json_names_the_file(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    (db / "s3db.json").unlink()
    with pytest.raises(DatabaseNotFound, match=r"db/s3db\.json.*not found") as err:
        open_store(f"file://{db}").read_database_json()
    assert err.value.exit_code == 3  # not found, as the README says


def test_s3db_json_of_an_unknown_version_is_refused(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    (db / "s3db.json").write_text('{"version": "2", "resources": {}}')
    with pytest.raises(MetadataFileError, match=r"s3db\.json format version '2' is unknown"):
        open_store(f"file://{db}").read_database_json()


def test_unparsable_s3db_json_names_the_file(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    (db / "s3db.json").write_text('{"resources": {')
    with pytest.raises(MetadataFileError, match=r"db/s3db\.json.*not valid JSON"):
        open_store(f"file://{db}").list_resources()


def test_data_file_without_sidecar_is_named(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    (db / "resource=users/data/id=u2.meta.json").unlink()
    store = open_store(f"file://{db}")
    # listed (never silently dropped, unlike s3db.js's own listing), and fetching it says why
    assert "resource=users/data/id=u2" in [i.key for i in store.list_data("users")]
    with pytest.raises(CorruptObject, match=r"resource=users/data/id=u2: data file without its sidecar"):
        store.get("resource=users/data/id=u2")


def test_corrupt_sidecar_is_named(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    (db / "resource=users/data/id=u1.meta.json").write_text("{not json")
    with pytest.raises(CorruptObject, match=r"id=u1\.meta\.json: sidecar is not valid JSON"):
        open_store(f"file://{db}").get("resource=users/data/id=u1")


def test_skips_backup_temp_and_journal_files(tmp_path):
    db = copy_fs_db(tmp_path / "db")
    data = db / "resource=users/data"
    (data / "id=u1.bak").write_bytes(b"old")
    (data / "id=u9.tmp.123").write_bytes(b"partial")
    (data / "operations.journal").write_bytes(b"log")
    ids = [i.key.rsplit("id=", 1)[1] for i in open_store(f"file://{db}").list_data("users")]
    assert sorted(ids) == sorted(["bwRaU-hDXLDP8gpx8WBzZT", "u1", "u2", "u3"])


def test_gzip_compressed_body_is_inflated(tmp_path):
    import gzip

    import orjson

    db = copy_fs_db(tmp_path / "db")
    body_path = db / "resource=files/data/id=f2"
    side_path = db / "resource=files/data/id=f2.meta.json"
    original = body_path.read_bytes()
    body_path.write_bytes(gzip.compress(original))
    side = orjson.loads(side_path.read_bytes())
    side["compressed"] = True
    side_path.write_bytes(orjson.dumps(side))
    assert open_store(f"file://{db}").get("resource=files/data/id=f2").body == original


def test_s3_missing_database_names_bucket_and_key(moto_server, bucket_name):
    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    store = open_store(moto_server.connection_string(bucket_name, "pfx"))
    with pytest.raises(DatabaseNotFound, match=rf"{bucket_name}/pfx/s3db\.json: s3db\.json not found"):
        store.read_database_json()
    store.close()


def test_s3_awkward_keys_round_trip(moto_server, bucket_name):
    """Keys object_store cannot parse (empty or '.' segments) go through boto3, listing included."""
    from backup_pipeline.store import RawObject

    moto_server.boto_client().create_bucket(Bucket=bucket_name)
    store = open_store(moto_server.connection_string(bucket_name))
    keys = ["resource=r/data/id=ok", "resource=r/data//id=double", "resource=r/data/./id=dot"]
    for k in keys:
        store.put(RawObject(key=k, metadata={"_v": "v1"}, content_type="text/plain", body=k.encode()))
    assert sorted(i.key for i in store.list_data("r")) == sorted(keys)
    assert [o.body for o in store.get_many(keys)] == [k.encode() for k in keys]
    store.close()


def test_s3_client_errors_leave_the_store_as_storage_errors(seaweedfs_server, bucket_name):
    """SeaweedFS checks signatures: a wrong secret fails every call, reads and listings alike, as a
    StorageError (exit code 1) naming the database and the likely cause, never obstore's own."""
    from backup_pipeline.errors import StorageError

    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    conn = seaweedfs_server.connection_string(bucket_name, "db").replace(f":{seaweedfs_server.secret_key}@", ":wrong@")
    store = open_store(conn)
    try:
        with pytest.raises(StorageError, match=rf"storage error on .*{bucket_name}/db.*check the access key") as err:
            store.read_database_json()
        assert err.value.exit_code == 1 and "wrong" not in str(err.value)  # the secret is masked
        with pytest.raises(StorageError, match="check the access key"):
            list(store.list_data("users"))  # raised while the listing is consumed
    finally:
        store.close()


def test_s3_repository_errors_are_storage_errors(seaweedfs_server, bucket_name):
    from backup_pipeline.errors import StorageError
    from backup_pipeline.repository.s3 import S3Options, S3Repository

    seaweedfs_server.boto_client().create_bucket(Bucket=bucket_name)
    repo = S3Repository(f"s3://{bucket_name}/backups", S3Options(
        endpoint_url=seaweedfs_server.endpoint, access_key_id=seaweedfs_server.access_key,
        secret_access_key="wrong"))
    with pytest.raises(StorageError, match=rf"storage error on s3://{bucket_name}/backups"):
        repo.backup_ids()
    with pytest.raises(StorageError):
        with repo.create_file("full-2026-11-24T020000Z-ab12", "x.bin") as f:
            f.write(b"x" * 100)
