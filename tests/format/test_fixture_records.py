"""Every fixture record decodes to exactly what s3db.js list() returned (SPEC §15)."""

from __future__ import annotations

import copy

import pytest

from backup_pipeline.format import decode_record, locale_sort_key, record_id_from_key
from decoder_fixtures import (
    BACKENDS,
    PASSPHRASE,
    backend,
    case_id,
    data_objects,
    expected_record,
    fixture_cases,
    raw_object,
    schema_for,
)

CASES = fixture_cases()

# SPEC §11: the only places where the clean reader differs from s3db.js (pass-2 corruptions).
# (resource, id) -> field -> (clean value = what was written, s3db.js value)
CLEAN_DIFFERENCES = {
    ("quirks", "q1"): {
        "wake": ("06:30:00.000", "NaN:NaN:NaN.NaN"),
        "ip": ("10.0.0.10", "215.77.52.215"),
    },
}


def test_fixture_case_count():
    assert len(CASES) == 54
    assert sum(1 for c in CASES if c[0] == "fs") == 27
    assert sum(1 for c in CASES if c[0] == "s3") == 27


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_exact_matches_s3db(case):
    name, resource, record_id = case
    expected = expected_record(name, resource, record_id)
    got = decode_record(schema_for(name, resource), raw_object(name, resource, record_id), passphrase=PASSPHRASE)
    assert got == expected
    assert list(got.items()) == list(expected.items())  # key order as JSON.stringify prints it


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_clean_differs_only_where_documented(case):
    name, resource, record_id = case
    expected = expected_record(name, resource, record_id)
    got = decode_record(
        schema_for(name, resource), raw_object(name, resource, record_id), passphrase=PASSPHRASE, mode="clean"
    )
    diffs = CLEAN_DIFFERENCES.get((resource, record_id), {})
    assert list(got) == list(expected)
    for field, (clean_value, s3db_value) in diffs.items():
        assert got[field] == clean_value
        assert expected[field] == s3db_value
    assert {k: v for k, v in got.items() if k not in diffs} == {
        k: v for k, v in expected.items() if k not in diffs
    }


def test_clean_difference_is_exactly_the_documented_set():
    seen = {}
    for name, resource, record_id in CASES:
        schema, obj = schema_for(name, resource), raw_object(name, resource, record_id)
        exact = decode_record(schema, obj, passphrase=PASSPHRASE)
        clean = decode_record(schema, obj, passphrase=PASSPHRASE, mode="clean")
        changed = {k for k in exact if exact[k] != clean.get(k)} | (set(clean) - set(exact))
        if changed:
            seen[(name, resource, record_id)] = changed
    assert seen == {(b, "quirks", "q1"): {"wake", "ip"} for b in BACKENDS}


@pytest.mark.parametrize("name", BACKENDS)
def test_record_counts_per_resource(name):
    counts: dict[str, int] = {}
    for resource, _, _ in data_objects(name):
        counts[resource] = counts.get(resource, 0) + 1
    assert counts == {r: len(lines) for r, lines in backend(name).expected.items()}


@pytest.mark.parametrize("name", BACKENDS)
def test_list_order(name):
    """list() order = key order of the listing: S3 sorts UTF-8 bytes, the filesystem client
    sorts with localeCompare (approximated by locale_sort_key)."""
    sort_key = (lambda k: k.encode("utf-8")) if name == "s3" else locale_sort_key
    for resource, lines in backend(name).expected.items():
        keys = [o.key for r, _, o in data_objects(name) if r == resource]
        ids = [record_id_from_key(k) for k in sorted(keys, key=sort_key)]
        assert ids == [line["id"] for line in lines], resource


def test_secrets_stay_encrypted_without_passphrase():
    obj = raw_object("fs", "users", "u1")
    got = decode_record(schema_for("fs", "users"), obj)
    assert got["apiKey"] == obj.metadata["e"]  # ciphertext as stored
    assert got["name"] == "José Ñoño"
    wrong = decode_record(schema_for("fs", "users"), obj, passphrase="wrong")
    assert wrong["apiKey"] == obj.metadata["e"]


def test_secret_of_undefined_is_absent_and_secret_number_is_a_string():
    users = decode_record(schema_for("s3", "users"), raw_object("s3", "users", "u2"), passphrase=PASSPHRASE)
    assert "apiKey" not in users
    quirks = decode_record(schema_for("s3", "quirks"), raw_object("s3", "quirks", "q1"), passphrase=PASSPHRASE)
    assert quirks["secretNum"] == "42"


def test_decoding_does_not_mutate_the_object():
    for name, resource, record_id in CASES:
        obj = raw_object(name, resource, record_id)
        before = copy.deepcopy((obj.metadata, obj.body, obj.content_type, obj.etag))
        decode_record(schema_for(name, resource), obj, passphrase=PASSPHRASE)
        decode_record(schema_for(name, resource), obj, passphrase=PASSPHRASE, mode="clean")
        assert (obj.metadata, obj.body, obj.content_type, obj.etag) == before


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError):
        decode_record(schema_for("fs", "notes"), raw_object("fs", "notes", "n1"), mode="fast")
