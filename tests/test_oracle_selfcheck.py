"""Self-check of the s3db.js oracle (tests/oracle.py): a fresh s3db.js 21.6.2 reading the vendored
fixture databases must reproduce expected/{fs,s3} (ignoring _lastModified, the object write time).

These tests FAIL, never skip, when the oracle is not installed (run scripts/install-s3db-oracle).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import oracle
from s3db_fixtures import FS_DB, copy_fs_db, expected_partitions, expected_records, load_dump_into_bucket


def _require_oracle() -> None:
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")


def _without_last_modified(records: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {name: [{k: v for k, v in r.items() if k != "_lastModified"} for r in rs] for name, rs in records.items()}


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_matches(flavour: str, records: dict, partitions: dict) -> None:
    want = expected_records(flavour)
    assert sorted(records) == sorted(want)
    got, exp = _without_last_modified(records), _without_last_modified(want)
    for name in sorted(want):
        assert got[name] == exp[name], f"{flavour}/{name}.jsonl differs (order included)"
    assert partitions == expected_partitions(flavour)


def test_oracle_reads_fs_fixture(tmp_path):
    _require_oracle()
    db = copy_fs_db(tmp_path / "fs-db")
    for p in db.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)  # vendored tree is read-only; give s3db.js a writable copy
    before = _tree_digest(db)
    records, partitions = oracle.read_back(f"file://{db}", tmp_path / "out")
    _assert_matches("fs", records, partitions)
    # Connecting with the same schema must not rewrite s3db.json or anything else (SPEC §2.3).
    assert _tree_digest(db) == before == _tree_digest(FS_DB)


def test_oracle_reads_s3_fixture_on_moto(tmp_path, moto_server, bucket_name):
    _require_oracle()
    client = moto_server.boto_client()
    load_dump_into_bucket(client, bucket_name)
    head = client.get_object(Bucket=bucket_name, Key="s3db.json")
    before = (head["ETag"], head["LastModified"])
    records, partitions = oracle.read_back(moto_server.connection_string(bucket_name), tmp_path / "out")
    _assert_matches("s3", records, partitions)
    head = client.get_object(Bucket=bucket_name, Key="s3db.json")
    assert (head["ETag"], head["LastModified"]) == before, "read-back rewrote s3db.json"
