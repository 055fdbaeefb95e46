"""Backups and restores through the Python API, on the real s3db.js fixture database."""

from __future__ import annotations

import gzip
import subprocess
from datetime import datetime, timezone

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.errors import ConflictError, CorruptObject, IntegrityError, NotFound
from backup_pipeline.store import RawObject, open_store
from s3db_fixtures import copy_fs_db, expected_records

from helpers import snapshot


@pytest.fixture
def source(tmp_path):
    return open_store(f"file://{copy_fs_db(tmp_path / 'src')}")


@pytest.fixture
def repo(tmp_path):
    return str(tmp_path / "repo")


def test_full_backup_writes_one_standard_gzip_file_per_resource_and_a_manifest(source, repo):
    m = Backups(source, repo).backup("full")
    expected = expected_records("fs")
    assert m["type"] == "full" and m["parent"] is None and m["verified"] is True
    assert set(m["resources"]) == set(expected)
    for name, entry in m["resources"].items():
        path = f"{repo}/{m['id']}/{entry['file']}"
        assert entry["file"] == f"{name}.jsonl.gz"
        subprocess.run(["gzip", "-t", path], check=True)
        lines = [orjson.loads(x) for x in gzip.open(path).read().splitlines()]
        assert entry["records"] == len(lines) == len(expected[name])
        # the decoded view is the clean reader's record; the raw object sits under _s3db
        assert {r["id"] for r in lines} == {r["id"] for r in expected[name]}
        assert all(r["_s3db"]["key"] == f"resource={name}/data/id={r['id']}" for r in lines)
    users = {r["id"]: r for r in gzip.open(f"{repo}/{m['id']}/users.jsonl.gz").read().splitlines() and
             [orjson.loads(x) for x in gzip.open(f"{repo}/{m['id']}/users.jsonl.gz").read().splitlines()]}
    assert users["u1"]["name"] == "José Ñoño" and users["u1"]["profile"]["city"] == "São Paulo"
    assert users["u1"]["apiKey"] != "sk_live_0123456789"  # secrets stay encrypted by default
    manifest = orjson.loads(open(f"{repo}/{m['id']}/s3db.json", "rb").read())
    assert manifest["database"] == source.read_database_json()
    assert manifest["sequences"]["counters"][0]["key"] == "resource=counters/sequence=id/value"


def test_decrypt_secrets_in_decoded_view(source, repo):
    m = Backups(source, repo, passphrase="fixture-passphrase-2024").backup("full", resources=["users"], decrypt_secrets=True)
    lines = [orjson.loads(x) for x in gzip.open(f"{repo}/{m['id']}/users.jsonl.gz").read().splitlines()]
    assert {r["id"]: r.get("apiKey") for r in lines}["u1"] == "sk_live_0123456789"


def test_restore_of_full_backup_is_byte_exact(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    report = b.restore(m["id"], target)
    assert report.database_json == "written"
    assert snapshot(target) == snapshot(source)
    assert target.read_database_json() == source.read_database_json()


@pytest.mark.parametrize("compression", ["zstd", "brotli", "none"])
def test_other_compressions_round_trip(source, repo, tmp_path, compression):
    b = Backups(source, repo)
    m = b.backup("full", compression=compression)
    assert m["resources"]["users"]["file"].endswith({"zstd": ".zst", "brotli": ".br", "none": ".jsonl"}[compression])
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    b.restore(m["id"], target)
    assert snapshot(target) == snapshot(source)


def test_selective_backup_holds_only_the_chosen_resources(source, repo):
    b = Backups(source, repo)
    m = b.backup("full", resources=["users", "articles"])
    assert set(m["resources"]) == {"users", "articles"} and m["selective"] is True
    m2 = b.backup("full", exclude=["users"])
    assert "users" not in m2["resources"] and m2["selection"]["exclude"] == ["users"]


def _touch(store, key, **metadata_changes):
    obj = store.get(key)
    obj.metadata.update(metadata_changes)
    obj.last_modified = None
    store.put(obj)


def test_incremental_captures_changes_deletes_and_same_second_metadata_updates(source, repo, tmp_path):
    b = Backups(source, repo)
    full = b.backup("full")
    before = snapshot(source)
    # metadata-only change of an empty-body object: same ETag, and immediately after the listing
    _touch(source, "resource=users/data/id=u2", **{"2": "H"})
    source.delete("resource=articles/data/id=a3")
    source.delete("resource=articles/partition=byCategory/category=news/id=a3")
    source.put(RawObject(key="resource=counters/data/id=4", metadata={"0": "x", "_v": "v1"}, content_type=None, body=b""))
    inc = b.backup("incremental")
    assert inc["type"] == "incremental" and inc["parent"] == full["id"] and inc["chain"] == [full["id"], inc["id"]]
    r = inc["resources"]
    assert (r["users"]["records"], r["articles"]["tombstones"], r["counters"]["records"]) == (1, 1, 1)
    assert sum(e["records"] for e in r.values()) == 2 and sum(e["tombstones"] for e in r.values()) == 1
    after = snapshot(source)
    # restore the incremental: the changed state; restore the full: the state before
    t1 = open_store(f"file://{tmp_path / 't1'}", create=True)
    b.restore(inc["id"], t1)
    assert _without_sequences(snapshot(t1)) == _without_sequences(after)
    t2 = open_store(f"file://{tmp_path / 't2'}", create=True)
    b.restore(full["id"], t2)
    assert _without_sequences(snapshot(t2)) == _without_sequences(before)


def _without_sequences(snap):
    return {k: v for k, v in snap.items() if "/sequence=" not in k}


def test_incremental_without_parent_says_so(source, repo):
    with pytest.raises(NotFound, match="run a full backup first"):
        Backups(source, repo).backup("incremental")
    m = Backups(source, repo).backup("incremental", full_if_no_parent=True)
    assert m["type"] == "full"


def test_unchanged_objects_are_not_fetched_again(source, repo):
    b = Backups(source, repo)
    b.backup("full")
    # make every object look old enough to be trusted from the listing alone
    for m_id in [b.latest()["id"]]:
        path = f"{repo}/{m_id}/s3db.json"
        m = orjson.loads(open(path, "rb").read())
        for entry in m["resources"].values():
            entry["listed_at"] = "2099-01-01T00:00:00.000Z"
        open(path, "wb").write(orjson.dumps(m))
    inc = b.backup("incremental", verify=False)
    assert sum(e["fetched"] for e in inc["resources"].values()) == 0
    assert sum(e["records"] for e in inc["resources"].values()) == 0


def test_safe_restore_refuses_a_target_with_records_and_modes_resolve_it(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    b.restore(m["id"], target, resources=["users"])
    with pytest.raises(ConflictError, match="choose --mode replace"):
        b.restore(m["id"], target, resources=["users"])
    extra = RawObject(key="resource=users/data/id=zz", metadata={"_v": "v1"}, content_type=None, body=b"")
    target.put(extra)
    b.restore(m["id"], target, resources=["users"], mode="merge")
    assert target.get(extra.key)
    b.restore(m["id"], target, resources=["users"], mode="replace")
    with pytest.raises(NotFound):
        target.get(extra.key)
    dry = b.restore(m["id"], target, resources=["users"], mode="replace", dry_run=True)
    assert dry.resources["users"].written == 4 and dry.resources["users"].deleted == 4


def test_merge_writes_only_what_differs_and_its_dry_run_says_so(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    b.restore(m["id"], target, resources=["users"])
    before = snapshot(target)
    untouched = tmp_path / "dst" / "resource=users" / "data" / "id=u1.meta.json"
    written_at = untouched.stat().st_mtime_ns
    dry = b.restore(m["id"], target, resources=["users"], mode="merge", dry_run=True).resources["users"]
    assert (dry.written, dry.identical) == (0, 4)  # every record is already there as backed up
    _touch(target, "resource=users/data/id=u2", **{"1": "changed in the target"})
    merged = b.restore(m["id"], target, resources=["users"], mode="merge", verify=True).resources["users"]
    assert (merged.written, merged.identical, merged.verified) == (1, 3, 4)
    assert snapshot(target) == before  # u2 back as backed up
    assert untouched.stat().st_mtime_ns == written_at  # an identical record is not written again


def test_conflicting_definition_in_target_is_refused(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    target = open_store(f"file://{copy_fs_db(tmp_path / 'dst')}")
    db = target.read_database_json()
    db["resources"]["users"]["versions"]["v1"]["hash"] = "sha256:different"
    target.put(RawObject(key="s3db.json", metadata={}, content_type="application/json", body=orjson.dumps(db)))
    with pytest.raises(ConflictError, match="already defines resource 'users' differently"):
        b.restore(m["id"], target, resources=["users"], mode="replace")


def test_truncated_file_is_named_by_verify_and_restore(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    path = tmp_path / "repo" / m["id"] / "users.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(IntegrityError, match=r"users\.jsonl\.gz.*truncated or corrupt"):
        b.verify(m["id"])
    with pytest.raises(IntegrityError, match=r"users\.jsonl\.gz"):
        b.restore(m["id"], open_store(f"file://{tmp_path / 'dst'}", create=True), resources=["users"])


def test_flipped_byte_is_a_sha256_mismatch(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full", compression="none")
    path = tmp_path / "repo" / m["id"] / "users.jsonl"
    data = bytearray(path.read_bytes())
    i = data.index(b"Tokyo")
    data[i] = ord("t")
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"users\.jsonl: sha256 .* does not match the manifest"):
        b.verify(m["id"])


def test_missing_parent_is_reported(source, repo, tmp_path):
    b = Backups(source, repo)
    full = b.backup("full")
    inc = b.backup("incremental")
    (tmp_path / "repo" / full["id"] / "s3db.json").unlink()
    with pytest.raises(IntegrityError, match=f"needs {full['id']}"):
        b.verify(inc["id"])
    with pytest.raises(IntegrityError, match=full["id"]):
        b.restore(inc["id"], open_store(f"file://{tmp_path / 'dst'}", create=True))


def test_backup_without_manifest_is_never_complete_nor_restored(source, repo, tmp_path):
    b = Backups(source, repo)
    m = b.backup("full")
    (tmp_path / "repo" / m["id"] / "s3db.json").unlink()
    assert [i.state for i in b.list()] == ["incomplete"]
    assert b.latest() is None
    with pytest.raises(IntegrityError, match="incomplete and is never restored"):
        b.restore(m["id"], open_store(f"file://{tmp_path / 'dst'}", create=True))


def test_corrupt_source_object_fails_naming_its_key_or_is_recorded(source, repo, tmp_path):
    (tmp_path / "src" / "resource=users/data/id=u2.meta.json").write_text("{broken")
    b = Backups(source, repo)
    with pytest.raises(CorruptObject, match=r"id=u2"):
        b.backup("full")
    assert [i.state for i in b.list()] == ["failed"]
    m = b.backup("full", skip_corrupt=True)
    skipped = m["resources"]["users"]["skipped_corrupt"]
    assert [s["key"] for s in skipped] == ["resource=users/data/id=u2"]
    assert m["resources"]["users"]["records"] == 3


def test_rewrite_within_the_listing_second_is_caught_by_content_hash(source, repo):
    """S3 lists LastModified to the second and an empty body keeps its ETag: an object
    rewritten in the same second as the parent's listing looks unchanged from LIST alone."""
    b = Backups(source, repo)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    key = "resource=counters/data/id=9"
    source.put(RawObject(key=key, metadata={"0": "a", "_v": "v1"}, content_type=None, body=b"", last_modified=now))
    b.backup("full")
    source.put(RawObject(key=key, metadata={"0": "b", "_v": "v1"}, content_type=None, body=b"", last_modified=now))
    inc = b.backup("incremental")
    assert inc["resources"]["counters"]["records"] == 1
    lines = [orjson.loads(x) for x in gzip.open(f"{b.repo.url}/{inc['id']}/counters.jsonl.gz").read().splitlines()]
    assert [line["_s3db"]["metadata"]["0"] for line in lines] == ["b"]
