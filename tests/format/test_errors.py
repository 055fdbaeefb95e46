"""Values that do not decode: DecodeError where s3db.js get() throws, its documented lenient
behaviour everywhere else (SPEC §5.3, §11)."""

from __future__ import annotations

import dataclasses

import pytest

from backup_pipeline.errors import DecodeError
from backup_pipeline.format import decode_record
from decoder_fixtures import PASSPHRASE, raw_object, schema_for


def tampered(name, resource, record_id, **metadata):
    obj = raw_object(name, resource, record_id)
    return dataclasses.replace(obj, metadata={**obj.metadata, **metadata})


@pytest.mark.parametrize("mode", ["exact", "clean"])
def test_non_base62_datetime_raises(mode):
    obj = tampered("fs", "users", "u1", h="2024-01-01T00:00:00Z")  # createdAt, written by another tool
    with pytest.raises(DecodeError) as info:
        decode_record(schema_for("fs", "users"), obj, passphrase=PASSPHRASE, mode=mode)
    err = info.value
    assert (err.resource, err.record_id, err.field) == ("users", "u1", "createdAt")
    assert "users" in str(err) and "u1" in str(err) and "createdAt" in str(err)


def test_non_base62_dateonly_raises():
    obj = tampered("s3", "types", "t1", a="1990-05-17")  # born (dateonly)
    with pytest.raises(DecodeError) as info:
        decode_record(schema_for("s3", "types"), obj)
    assert (info.value.resource, info.value.record_id, info.value.field) == ("types", "t1", "born")


def test_out_of_range_datetime_raises():
    obj = tampered("fs", "events", "e1", **{"3": "zzzzzzzzzz"})  # `at`: beyond year 275760
    with pytest.raises(DecodeError) as info:
        decode_record(schema_for("fs", "events"), obj)
    assert info.value.field == "at"


def test_corrupted_base64_value_is_decoded_leniently():
    """Node's base64 decoder skips foreign characters and never throws; invalid UTF-8
    becomes U+FFFD. s3db.js returns that, so do we."""
    schema = schema_for("fs", "users")
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "b:/w=="}))
    assert got["name"] == "\ufffd"
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "b:***"}))
    assert got["name"] == ""
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "b:SGV s bG8"}))  # no padding, junk
    assert got["name"] == "Hello"


def test_corrupted_url_and_deflate_values_are_kept_as_stored():
    schema = schema_for("fs", "users")
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "u:%E0%A4%A"}))
    assert got["name"] == "u:%E0%A4%A"  # decodeURIComponent throws -> value kept
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "u:%FF"}))
    assert got["name"] == "u:%FF"
    got = decode_record(schema, tampered("fs", "users", "u1", **{"0": "z:bm90IGRlZmxhdGU="}))
    assert got["name"] == "z:bm90IGRlZmxhdGU="  # inflate fails -> value kept


def test_undecodable_number_is_dropped():
    """A base62 decimal that does not decode is undefined, i.e. absent (SPEC §6.3)."""
    got = decode_record(schema_for("fs", "users"), tampered("fs", "users", "u1", **{"3": "not*b62"}))
    assert "score" not in got


@pytest.mark.parametrize("mode", ["exact", "clean"])
def test_body_only_with_broken_body_falls_back_to_metadata(mode):
    obj = dataclasses.replace(raw_object("fs", "docs", "d1"), body=b"{not json")
    got = decode_record(schema_for("fs", "docs"), obj, passphrase=PASSPHRASE, mode=mode)
    assert got["id"] == "d1"
    assert not [k for k in got if not k.startswith("_") and k != "id"]


def test_key_without_id_raises():
    obj = dataclasses.replace(raw_object("fs", "notes", "n1"), key="resource=notes/data/n1")
    with pytest.raises(DecodeError) as info:
        decode_record(schema_for("fs", "notes"), obj)
    assert info.value.field == "id"
