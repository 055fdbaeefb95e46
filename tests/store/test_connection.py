"""Connection strings parsed as s3db.js 21.x parses them (SPEC §1.1)."""

from __future__ import annotations

import os

import pytest

from backup_pipeline.errors import ConnectionStringError
from backup_pipeline.store import parse_connection_string


def test_file_absolute():
    info = parse_connection_string("file:///var/data/db")
    assert (info.kind, info.base_path, info.bucket, info.key_prefix) == ("file", "/var/data/db", "s3db", "")


def test_file_relative_resolves_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_connection_string("file://./rel/db").base_path == str(tmp_path / "rel" / "db")
    assert parse_connection_string("file://../up").base_path == str(tmp_path.parent / "up")


def test_file_url_encoded_path():
    assert parse_connection_string("file:///data/my%20db").base_path == "/data/my db"


def test_http_endpoint_path_style_with_prefix_and_encoded_credentials():
    info = parse_connection_string("http://AK%2Fx:se%40cr%2Bet@127.0.0.1:9000/my-bucket/some/prefix?region=eu-west-1")
    assert info.kind == "s3"
    assert info.endpoint == "http://127.0.0.1:9000"
    assert (info.bucket, info.key_prefix) == ("my-bucket", "some/prefix")
    assert (info.access_key_id, info.secret_access_key) == ("AK/x", "se@cr+et")
    assert info.region == "eu-west-1"
    assert info.force_path_style is True


def test_http_without_bucket_defaults_to_s3db():
    info = parse_connection_string("https://k:s@127.0.0.1:9000")
    assert (info.bucket, info.key_prefix, info.endpoint) == ("s3db", "", "https://127.0.0.1:9000")


def test_http_virtual_hosted_when_asked():
    assert parse_connection_string("http://k:s@127.0.0.1:9000/b?forcePathStyle=false").force_path_style is False


def test_s3_scheme_is_aws_virtual_hosted(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    info = parse_connection_string("s3://KEY:SEC%2Fret@MyBucket/db/one")
    assert (info.bucket, info.key_prefix, info.endpoint) == ("MyBucket", "db/one", None)
    assert (info.access_key_id, info.secret_access_key, info.region) == ("KEY", "SEC/ret", "us-east-1")
    assert info.force_path_style is False


def test_query_options_nest_and_coerce():
    info = parse_connection_string("http://k:s@h:1/b?a.b=true&n=5&f=1.5&s=x")
    assert info.client_options == {"a": {"b": True}, "n": 5, "f": 1.5, "s": "x"}


def test_masked_form_hides_the_secret():
    assert "sekret" not in parse_connection_string("http://k:sekret@h:1/b/p").masked()


@pytest.mark.parametrize(
    ("conn", "part"),
    [
        ("no-scheme-here", "scheme"),
        ("ftp://x/y", "scheme"),
        ("file://", "path"),
        ("file:///", "path"),
        ("file://server/share", "host"),
        ("http://k:s@host:notaport/b", "port"),
        ("http://k%ZZ:s@host:9000/b", "access key"),
        ("http://k:s%E0%A4%A@host:9000/b", "secret"),
        ("s3://k:s@/prefix", "bucket"),
    ],
)
def test_unparsable_strings_say_which_part(conn, part):
    with pytest.raises(ConnectionStringError, match=part):
        parse_connection_string(conn)
