"""Unit checks of the building blocks against the examples in SPEC §4-§6 and §9."""

from __future__ import annotations

import math

import pytest

from backup_pipeline.format import (
    ResourceSchema,
    decode_metadata_value,
    locale_sort_key,
    record_id_from_key,
    to_json_compatible,
)
from backup_pipeline.format._js import UNDEFINED, iso_from_ms, number_to_string
from backup_pipeline.format.field_codecs import DecodeContext, compress_ipv6, make_codec, split_escaped
from backup_pipeline.format.numbers import (
    base62_decode,
    decode_decimal,
    decode_fixed_point,
    decode_fixed_point_batch,
    encode_key,
)
from backup_pipeline.format.schema import stable_json
from backup_pipeline.format.secrets import decrypt_secret
from backup_pipeline.format.transport import node_base64_decode
from decoder_fixtures import PASSPHRASE, backend, raw_object, schema_for


@pytest.mark.parametrize(
    "raw, value",
    [
        ("u:Jos%C3%A9%20%C3%91o%C3%B1o", "José Ñoño"),
        ("b:w4DDicOOw5XDnA==", "ÀÉÎÕÜ"),
        ("b:5pel5pys6Kqe44Gu44OG44Kt44K544OI", "日本語のテキスト"),
        ("b:ejpub3QtY29tcHJlc3NlZA==", "z:not-compressed"),
        ("d:c", "completed"),
        ("d:f", "failed"),  # font/woff2 is stored d:f too (SPEC §5.3)
        ("d:@Wexample.com/jose", "https://www.example.com/jose"),
        ("d:@L8080/x", "http://localhost:8080/x"),
        ("d:?", "d:?"),
        ("null", None),
        ("undefined", UNDEFINED),
        ("plain ascii", "plain ascii"),
        ("", ""),
        ("u:", "u:"),
    ],
)
def test_transport_decoding(raw, value):
    assert decode_metadata_value(raw) == value


def test_compressed_text():
    import base64
    import zlib

    text = "compressible " * 20
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = c.compress(text.encode()) + c.flush()
    assert decode_metadata_value("z:" + base64.b64encode(raw).decode()) == text


def test_node_base64_is_lenient():
    assert node_base64_decode("10.0.0.10") == bytes([215, 77, 52, 215])  # SPEC §11
    assert len(node_base64_decode("192.168.1.20")) == 6
    assert node_base64_decode("wKgBFA==") == bytes([192, 168, 1, 20])
    assert node_base64_decode("SGVsbG8") == b"Hello"
    assert node_base64_decode("AA==AAAA") == b"\x00"


@pytest.mark.parametrize(
    "s, n",
    [("G", 42), ("10", 62), ("100", 3844), ("5ban", 1234567), ("-G", -42), ("4c92", 1000000), ("", 0)],
)
def test_base62(s, n):
    assert base62_decode(s) == n


def test_base62_invalid_is_nan():
    assert math.isnan(base62_decode("a.b"))


def test_base36_keys():
    assert [encode_key(i) for i in (0, 9, 10, 35, 36, 40)] == ["0", "9", "a", "z", "10", "14"]


@pytest.mark.parametrize("s, x", [("1z.5", 97.5), ("-3.75", -3.75), ("c.25", 12.25), ("-0.001", -0.001), ("3", 3)])
def test_decimal(s, x):
    assert decode_decimal(s) == x


def test_fixed_point():
    assert decode_fixed_point("^8aI", 4) == 3.1416
    assert decode_fixed_point("^-1iE", 4) == -0.5
    assert decode_fixed_point("^0", 2) == 0
    assert decode_fixed_point_batch("^[q0U,-132g,1oIl,4c92,0,-4c92,264w,1]", 6) == [
        0.1, -0.25, 0.333333, 1, 0, -1, 0.5, 0.000001
    ]
    assert decode_fixed_point_batch("^[]", 6) == []


def test_js_number_formatting():
    cases = {1e-7: "1e-7", 0.000001: "0.000001", 1e21: "1e+21", 123.0: "123", 2.5: "2.5", -0.0: "0"}
    for x, s in cases.items():
        assert number_to_string(x) == s
    assert number_to_string(float(2**60)) == "1152921504606847000"


def test_iso_dates():
    assert iso_from_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_from_ms(base62_decode("uErUkIG")) == "2025-03-04T05:06:07.890Z"
    assert iso_from_ms(-1) == "1969-12-31T23:59:59.999Z"


def test_string_arrays():
    assert split_escaped("admin|a\\|b|back\\\\slash") == ["admin", "a|b", "back\\slash"]
    assert split_escaped("x||y\\|z") == ["x", "", "y|z"]


def test_ipv6_compression():
    assert compress_ipv6([0, 0, 0, 0, 0, 0, 0, 1]) == "::1"
    assert compress_ipv6([0x2001, 0xDB8, 0, 0, 0, 0xFF00, 0x42, 0x8329]) == "2001:db8::ff00:42:8329"
    assert compress_ipv6([1, 0, 0, 2, 0, 0, 0, 3]) == "1:0:0:2::3"
    assert compress_ipv6([0] * 8) == "::"


def test_secret_decryption():
    obj = raw_object("fs", "users", "u1")
    assert decrypt_secret(obj.metadata["e"], PASSPHRASE) == "sk_live_0123456789"
    assert decrypt_secret(obj.metadata["e"], "secret") is None
    assert decrypt_secret("sk_live", PASSPHRASE) is None


def test_codec_selection():
    types = schema_for("fs", "types")
    actions = {name: [a[0] for a in types.hooks.get(name, [])] for name in ("vec", "ints", "pw2", "price", "btc", "ratio", "point", "meta", "cur")}
    assert actions == {
        "vec": ["toArrayOfEmbeddings"], "ints": ["toArrayOfNumbers"], "pw2": [], "price": ["decodeMoney"],
        "btc": ["decodeMoney"], "ratio": ["decodeDecimalFixed"], "point": ["decodeGeoPointPair"],
        "meta": ["fromJSON"], "cur": [],
    }
    assert types.hooks["btc"] == [("decodeMoney", 8)]
    assert types.hooks["ratio"] == [("decodeDecimalFixed", 4)]
    assert types.codec("seen").mapper is not None  # datetime: no hook, mapper decoder
    assert types.codec("color2").mapper is None  # object-form definitions get no codec
    assert make_codec("x", "array|items:object", None).array_fallback


def test_short_keys_from_registry():
    types = schema_for("s3", "types")
    assert types.key_to_attribute["14"] == "color2"
    assert types.attribute_to_key["color2.type"] == "12"
    evolving = schema_for("s3", "evolving")  # S3 keeps `legacy: 1` in mapping although burned
    assert "1" not in evolving.key_to_attribute
    assert evolving.key_to_attribute == {"0": "title", "2": "count", "3": "rating"}


def test_definition_hashes():
    db = backend("fs").db_json
    for name, res in db["resources"].items():
        schema = ResourceSchema.from_database_json(name, db)
        assert schema.version_hash == res["versions"][res["currentVersion"]]["hash"]
    for name, lines in backend("fs").expected.items():
        assert schema_for("fs", name).definition_hash == lines[0]["_definitionHash"]
    assert stable_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_record_ids():
    assert record_id_from_key("resource=users/data/id=u1") == "u1"
    assert record_id_from_key("resource=users/partition=byCity/profile.city=São Paulo/id=u1") == "u1"
    assert record_id_from_key("resource=counters/sequence=id/value") is None


def test_locale_sort_key():
    words = ["b", "A", "a", "_x", "-x", "1", "B", "é", "e", "f"]
    assert sorted(words, key=locale_sort_key) == ["_x", "-x", "1", "a", "A", "b", "B", "e", "é", "f"]


def test_to_json_compatible():
    value = {"b": float("nan"), "1": 2.0, "a": [UNDEFINED, float("inf")], "u": UNDEFINED, "x": b"\x00\x01"}
    assert list(to_json_compatible(value).items()) == [
        ("1", 2), ("b", None), ("a", [None, None]), ("x", {"$base64": "AAE="})
    ]


def test_context_is_per_record():
    ctx = DecodeContext(PASSPHRASE)
    assert ctx.plaintexts == set() and not ctx.second_pass


def test_big_integral_numbers_print_like_js():
    assert to_json_compatible(float(2**60)) == 1152921504606847000
    assert to_json_compatible(1e21) == 1e21
    assert to_json_compatible(-0.0) == 0 and isinstance(to_json_compatible(-0.0), int)
