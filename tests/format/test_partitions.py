"""Partition queries and references against expected/{fs,s3}/_partitions.json (SPEC §10)."""

from __future__ import annotations

import pytest

from backup_pipeline.errors import NotFound
from backup_pipeline.format import (
    decode_record,
    locale_sort_key,
    partition_query_prefix,
    partition_reference_key,
    partition_reference_keys,
    record_id_from_key,
)
from backup_pipeline.format.partitions import apply_partition_rule, posix_join
from decoder_fixtures import BACKENDS, PASSPHRASE, backend, data_objects, schema_for


def listings(name: str) -> list[tuple[str, str, dict, list[str]]]:
    """(resource, partition, partitionValues, expected ids) for allIds and every query."""
    out = []
    for resource, parts in backend(name).partitions.items():
        for partition, info in parts.items():
            out.append((resource, partition, {}, info["allIds"]))
            out.extend((resource, partition, q["partitionValues"], q["ids"]) for q in info["queries"])
    return out


def listed_keys(name: str) -> list[str]:
    """Keys as the backend lists them: fs files without sidecars' names, S3 dump keys."""
    keys = list(backend(name).objects)
    if name == "fs":
        return sorted(keys, key=locale_sort_key)
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def test_listing_count():
    assert sum(len(listings(n)) for n in BACKENDS) == 50


@pytest.mark.parametrize("name", BACKENDS)
def test_partition_listings(name):
    keys = listed_keys(name)
    for resource, partition, values, expected_ids in listings(name):
        prefix = partition_query_prefix(resource, partition, values, schema_for(name, resource))
        ids = [record_id_from_key(k) for k in keys if k.startswith(prefix)]
        assert None not in ids
        assert set(ids) == set(expected_ids), (resource, partition, values, prefix)
        assert len(ids) == len(expected_ids)  # s3db.js does not de-duplicate, nor did it need to
        # The generator sorted ids with JS .sort() (UTF-16 order); listing order itself is
        # the backend's key order (checked for list() in test_fixture_records.test_list_order).
        assert expected_ids == sorted(expected_ids)


def test_query_prefixes():
    users = schema_for("fs", "users")
    assert partition_query_prefix("users", "byCountry", {"country": "BR"}, users) == (
        "resource=users/partition=byCountry/country=BR"
    )
    # the date|maxlength:10 rule turns a full timestamp into the day
    assert partition_query_prefix("users", "byCreatedDate", {"createdAt": "2026-11-24T01:30:44.874Z"}, users) == (
        "resource=users/partition=byCreatedDate/createdAt=2026-11-24"
    )
    # no values: s3db.js 21.6.2 lists the data objects, not the partition
    assert partition_query_prefix("users", "byCity", {}, users) == "resource=users/data"
    assert partition_query_prefix("users", None, None, users) == "resource=users/data"
    # values present but all null: the whole partition
    assert partition_query_prefix("users", "byCity", {"profile.city": None}, users) == (
        "resource=users/partition=byCity"
    )
    with pytest.raises(NotFound):
        partition_query_prefix("users", "byNothing", {"x": 1}, users)


@pytest.mark.parametrize("name", BACKENDS)
def test_reference_keys_regenerate_the_fixture_references(name):
    objects = backend(name).objects
    for resource in backend(name).expected:
        schema = schema_for(name, resource)
        present = {k for k in objects if k.startswith(f"resource={resource}/partition=")}
        regenerated = set()
        for r, record_id, obj in data_objects(name):
            if r != resource:
                continue
            record = decode_record(schema, obj, passphrase=PASSPHRASE, mode="clean")
            regenerated.update(partition_reference_keys(schema, record, record_id))
        assert regenerated == present, resource


def test_reference_key_details():
    users = schema_for("fs", "users")
    record = {"id": "u9", "country": "BR", "profile": {"city": "São Paulo"}, "createdAt": "2026-01-02T03:04:05.000Z"}
    assert partition_reference_key(users, "byCity", record, "u9") == (
        "resource=users/partition=byCity/profile.city=São Paulo/id=u9"
    )
    assert partition_reference_key(users, "byCreatedDate", record, None) == (
        "resource=users/partition=byCreatedDate/createdAt=2026-01-02/id=u9"
    )
    assert partition_reference_key(users, "byUpdatedDate", record, "u9") is None  # field absent
    assert partition_reference_key(users, "byCountry", {**record, "country": None}, "u9") is None


def test_partition_rules():
    assert apply_partition_rule("abcdefghijkl", "string|maxlength:3") == "abc"
    assert apply_partition_rule("2024-05-06T07:08:09.000Z", "date") == "2024-05-06"
    assert apply_partition_rule("2024-05-06", "date") == "2024-05-06"
    assert apply_partition_rule("2024-05-06T23:30:00+02:00", "date") == "2024-05-06"
    assert apply_partition_rule("not a date", "date") == "not a date"
    assert apply_partition_rule(None, "string") is None
    assert posix_join("resource=a", "partition=b", "f=x/../y", "id=1") == "resource=a/partition=b/y/id=1"
