"""One conformance suite for every store: the filesystem layout, S3 on moto, S3 on SeaweedFS.

Every store is loaded with the same real s3db.js fixture database (fixtures/fs-db), so every
assertion compares against the files the real library wrote.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson
import pytest

from backup_pipeline.engine.lines import object_version
from backup_pipeline.errors import InvalidResourceName, NotFound
from backup_pipeline.store import RawObject, id_from_key, open_store
from s3db_fixtures import FS_DB, copy_fs_db, load_fs_db_into_bucket

STORE_KINDS = ["fs", "moto", "seaweedfs"]


def _fixture_objects() -> dict[str, tuple[dict, bytes]]:
    """key -> (sidecar, body) of every object in fixtures/fs-db."""
    out = {}
    for side in FS_DB.rglob("*.meta.json"):
        body = side.with_name(side.name[: -len(".meta.json")])
        out[body.relative_to(FS_DB).as_posix()] = (orjson.loads(side.read_bytes()), body.read_bytes())
    return out


def stored_metadata(store, metadata: dict) -> dict:
    """What the server keeps of a metadata dict: SeaweedFS drops entries whose value is ''
    (checked with boto3 too), so on it an empty field reads back absent."""
    if getattr(store, "info", None) and store.info.endpoint and store.server_name == "seaweedfs":
        return {k: v for k, v in metadata.items() if v != ""}
    return metadata


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path, bucket_name):
    if request.param == "fs":
        path = copy_fs_db(tmp_path / "db")
        st = open_store(f"file://{path}")
    else:
        server = request.getfixturevalue(f"{request.param}_server")
        load_fs_db_into_bucket(server.boto_client(), bucket_name, prefix="nested/prefix")
        st = open_store(server.connection_string(bucket_name, "nested/prefix"))
        st.server_name = server.name
    yield st
    st.close()


def test_reads_database_json(store):
    assert store.read_database_json() == orjson.loads((FS_DB / "s3db.json").read_bytes())


def test_lists_resources_of_database_json(store):
    assert store.list_resources() == list(orjson.loads((FS_DB / "s3db.json").read_bytes())["resources"])


def test_lists_every_data_key_with_etag_size_and_time(store):
    objects = _fixture_objects()
    for resource in store.list_resources():
        listed = list(store.list_data(resource))
        expected_keys = {k for k in objects if k.startswith(f"resource={resource}/data/")}
        assert {i.key for i in listed} == expected_keys
        assert len(listed) == len(expected_keys)
        for info in listed:
            sidecar, body = objects[info.key]
            assert info.etag == f'"{hashlib.md5(body).hexdigest()}"'
            assert info.size == len(body)
            assert info.last_modified.tzinfo is not None
            assert id_from_key(info.key) == info.key.rsplit("id=", 1)[1]


@pytest.mark.parametrize("expected", [None, 10**9], ids=["small", "large"])
def test_lists_data_versions_in_a_stable_order_with_the_tokens_get_returns(store, expected):
    """What an incremental diffs: (key, token, ms) in an order that stays the same from one
    listing to the next, rewrites included (the filesystem lists large folders from a second
    process: `expected` above its threshold)."""
    objects = _fixture_objects()
    for resource in store.list_resources():
        listed = list(store.list_data_versions(resource, expected=expected))
        assert {k for k, _, _ in listed} == {k for k in objects if k.startswith(f"resource={resource}/data/")}
        for key, token, ms in listed:
            obj = store.get(key)
            assert (obj.extra.get("version") or object_version(obj)) == token, key
            assert str(ms) in token, key  # the time the token holds, in ms (fs: ns)
    assert list(store.list_data_versions("nothing", expected=expected)) == []
    listed = list(store.list_data_versions("users", expected=expected))
    key, token, _ = listed[len(listed) // 2]
    obj = store.get(key)
    store.put(RawObject(key=key, metadata=obj.metadata, content_type=obj.content_type, body=obj.body + b" "))
    again = list(store.list_data_versions("users", expected=expected))
    assert [k for k, _, _ in again] == [k for k, _, _ in listed]
    assert {k: t for k, t, _ in again if k != key} == {k: t for k, t, _ in listed if k != key}
    assert dict((k, t) for k, t, _ in again)[key] != token


def test_lists_partition_sequence_prefixes_mid_segment(store):
    objects = _fixture_objects()
    for prefix in ("resource=users/partition=", "resource=users/partition=byCity/profile.city=S",
                   "resource=counters/sequence="):
        got = sorted(i.key for i in store.list_prefix(prefix))
        assert got == sorted(k for k in objects if k.startswith(prefix))
        assert got, prefix


def test_get_returns_the_object_exactly_as_stored(store):
    for key, (sidecar, body) in _fixture_objects().items():
        obj = store.get(key)
        assert obj.key == key
        assert obj.metadata == stored_metadata(store, sidecar["metadata"]), key
        assert obj.content_type == sidecar["contentType"], key
        assert obj.body == body, key
        assert obj.etag == f'"{hashlib.md5(body).hexdigest()}"'


def test_get_many_keeps_order_and_returns_all(store):
    keys = sorted(_fixture_objects())
    got = list(store.get_many(iter(keys), concurrency=4))
    assert [o.key for o in got] == keys


def test_put_get_delete_round_trip(store):
    body = bytes(range(256)) * 3
    obj = RawObject(
        key="resource=scratch/data/id=x 1",
        metadata={"0": "u:S%C3%A3o", "_v": "v1", "1": "null"},
        content_type="image/png",
        body=body,
        last_modified=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    store.put(obj)
    back = store.get(obj.key)
    assert (back.metadata, back.content_type, back.body) == (obj.metadata, "image/png", body)
    assert back.etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert [i.key for i in store.list_data("scratch")] == [obj.key]
    store.delete(obj.key)
    assert list(store.list_data("scratch")) == []
    with pytest.raises(NotFound, match="x 1"):
        store.get(obj.key)


def test_put_many_writes_all(store):
    objs = [RawObject(key=f"resource=bulk/data/id={i}", metadata={"_v": "v1", "0": str(i)}, content_type=None, body=b"")
            for i in range(120)]
    store.put_many(iter(objs), concurrency=8)
    listed = {i.key for i in store.list_data("bulk")}
    assert listed == {o.key for o in objs}
    assert store.get("resource=bulk/data/id=77").metadata == {"_v": "v1", "0": "77"}


def test_put_many_fresh_writes_objects_exactly_as_put_does(store):
    """A restore into an empty resource writes `fresh` (no existence check, no rename on the
    filesystem): what it writes reads back the same as an ordinary put, body and content type too."""
    objs = [RawObject(key=f"resource=fresh/data/id={i}", metadata={"_v": "v1", "0": str(i)},
                      content_type="application/json" if i % 2 else None, body=b"{}" if i % 3 == 0 else b"")
            for i in range(30)]
    store.put_many(iter(objs), fresh=True)
    store.put(RawObject(key="resource=slow/data/id=0", metadata=objs[0].metadata, content_type=None, body=b"{}"))
    assert {i.key for i in store.list_data("fresh")} == {o.key for o in objs}
    for o in objs:
        got = store.get(o.key)
        assert (got.metadata, got.body) == (o.metadata, o.body)
        if o.content_type:  # without one, each server answers its own default
            assert got.content_type == o.content_type
    assert store.get("resource=fresh/data/id=0").etag == store.get("resource=slow/data/id=0").etag


@pytest.mark.parametrize("name", ["../etc", "a/b", "..", ""])
def test_refuses_resource_names_that_escape(store, name):
    with pytest.raises(InvalidResourceName):
        list(store.list_data(name))


def test_missing_object_is_not_found(store):
    with pytest.raises(NotFound):
        store.get("resource=users/data/id=nope")


def test_an_s3_backup_and_restore_never_import_boto3(moto_server, bucket_name, tmp_path):
    """obstore does every request of an S3 source, sequence listings included: boto3 (~0.3 s to
    import) stays out of a backup and a restore of a database whose keys object_store can name."""
    import subprocess
    import sys

    load_fs_db_into_bucket(moto_server.boto_client(), bucket_name)
    code = (
        "import sys\n"
        "from backup_pipeline import Backups\n"
        f"b = Backups({moto_server.connection_string(bucket_name)!r}, {str(tmp_path / 'repo')!r})\n"
        "m = b.backup('full')\n"
        f"b.restore(m.id, {moto_server.connection_string(bucket_name, 'restored')!r})\n"
        "print(m.totals.records, len(m.sequences), 'boto3' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    records, sequences, boto = out.stdout.split()
    assert int(records) == 27 and int(sequences) > 0 and boto == "False"
