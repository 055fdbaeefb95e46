"""The decoder's fast paths give exactly what the general code gives (types and key order
included): unmap plans vs the generic unmapper, and each inlined or shortcut helper vs a
reference written the slow way."""

from __future__ import annotations

import dataclasses
import math
import random
import urllib.parse
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backup_pipeline.errors import DecodeError
from backup_pipeline.format import decode_metadata, decode_metadata_value, decode_record, record, to_json_compatible
from backup_pipeline.format._js import (
    _civil_from_days,
    _js_order,
    JSError,
    iso_from_ms,
    js_keys,
    number_from_string,
    number_to_string,
)
from backup_pipeline.format.field_codecs import DecodeContext
from backup_pipeline.format.keys import record_id_from_key
from backup_pipeline.format.numbers import base62_decode, decode_decimal
from backup_pipeline.format.transport import BASE85_ALPHABET, decode_uri_component
from decoder_fixtures import PASSPHRASE, fixture_cases, raw_object, schema_for


def strict(value):
    """A form of `value` that == compares with types and key order (1 != 1.0 != True)."""
    if type(value) is dict:
        return ("dict", [(k, strict(v)) for k, v in value.items()])
    if type(value) in (list, tuple):
        return (type(value).__name__, [strict(v) for v in value])
    if type(value) is float and value != value:
        return ("nan",)
    return (type(value).__name__, repr(value))


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", strict(fn(*args, **kwargs)))
    except (DecodeError, record.UnmapError) as exc:
        return ("error", type(exc).__name__, str(exc))


PIECES = list("abcXYZ019-_.:|\\{}[]\"$^~@%/+=, ") + [
    "é", "日", "😀", "null", "undefined", "d:", "u:", "b:", "z:", "z85:", "u:%C3%A9", "u:%E9", "d:@W",
    "[object Object]", "_v", "constructor", "a.b", "a.0", "a.b.c", "0", "10", "01", "$x", "profile",
]


def damaged_objects(seed: int, count: int):
    rnd = random.Random(seed)
    cases = fixture_cases()

    def junk() -> str:
        return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 8)))

    for name, resource, record_id in cases:
        yield name, resource, raw_object(name, resource, record_id)
    for _ in range(count):
        name, resource, record_id = rnd.choice(cases)
        obj = raw_object(name, resource, record_id)
        metadata = dict(obj.metadata)
        for _ in range(rnd.randint(1, 4)):
            if rnd.random() < 0.3 and metadata:
                metadata.pop(rnd.choice(list(metadata)))
            else:
                metadata[rnd.choice([*metadata, junk()])] = junk()
        if rnd.random() < 0.3:
            body = rnd.choice([b"", b"null", b'{"0":"x","a.b":1,"a":"s"}', junk().encode()])
        else:
            body = obj.body
        yield name, resource, dataclasses.replace(obj, metadata=metadata, body=body)


def _z85(text: str) -> str:
    """s3db.js `z85:` compressed text (the inverse of transport.base85_decode)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = c.compress(text.encode()) + c.flush()
    out = []
    for i in range(0, len(data), 4):
        chunk = data[i : i + 4]
        n = int.from_bytes(chunk.ljust(4, b"\0"), "big")
        digits = []
        for _ in range(5):
            n, r = divmod(n, 85)
            digits.append(BASE85_ALPHABET[r])
        out.append("".join(reversed(digits))[: len(chunk) + 1])
    return "z85:" + "".join(out)


def layout_objects(seed: int, count: int):
    """Objects whose metadata mixes a resource's short keys (so 'a' next to 'a.b', index-like
    and unmapped names, `$`-keys) with stored values of that resource and transport forms."""
    rnd = random.Random(seed)
    cases = fixture_cases()
    extra_values = ["", "null", "undefined", "x", "{}", "[1]", "[object Object]", "u:%C3%A9t%C3%A9", "d:c", "b:YQ==",
                    _z85("compressed text"), _z85("{\"a\":1}"), "z85:", "1W1", "v70my2A", "2.5", "a|b"]
    extra_keys = ["a.b", "a", "0", "10", "$x", "x.0", "x.y.z", "zz"]
    for _ in range(count):
        name, resource, record_id = rnd.choice(cases)
        schema = schema_for(name, resource)
        pool = [v for n, r, i in cases if (n, r) == (name, resource) for v in raw_object(n, r, i).metadata.values()]
        keys = list(schema.key_to_attribute) + ["_v"] + rnd.sample(extra_keys, rnd.randint(0, 3))
        keys = rnd.sample(keys, rnd.randint(1, len(keys)))
        metadata = {k: rnd.choice(pool + extra_values) for k in keys}
        if "_v" in metadata:
            metadata["_v"] = rnd.choice(["v1", "v0", "", "null"])
        yield name, resource, dataclasses.replace(raw_object(name, resource, record_id), metadata=metadata)


def test_decoding_without_plans_gives_the_same_records(monkeypatch):
    """Plans (per key layout) are an optimisation only: the generic unmapper agrees."""
    objects = list(damaged_objects(7, 600)) + list(layout_objects(8, 1500))
    fast = [
        outcome(decode_record, schema_for(n, r), obj, passphrase=PASSPHRASE, mode=mode)
        for n, r, obj in objects
        for mode in ("exact", "clean")
    ]
    monkeypatch.setattr(record, "_unmap_plan", lambda schema, keys: None)
    slow = [
        outcome(decode_record, schema_for(n, r), obj, passphrase=PASSPHRASE, mode=mode)
        for n, r, obj in objects
        for mode in ("exact", "clean")
    ]
    assert fast == slow
    assert sum(o[0] == "ok" for o in fast) > sum(o[0] == "error" for o in fast) > 0


def test_unmap_plan_matches_generic_unmap_in_both_passes():
    for name, resource, obj in [*damaged_objects(11, 400), *layout_objects(12, 1500)]:
        schema = schema_for(name, resource)
        metadata = decode_metadata(obj.metadata)
        ctx = DecodeContext(PASSPHRASE)
        first = outcome(record.unmap, schema, metadata, ctx)
        assert first == outcome(record._unmap_generic, schema, metadata, ctx, record._MISSING, record._MISSING)
        if first[0] == "ok":
            p1 = record.unmap(schema, metadata, ctx)
            ctx.second_pass = True
            assert outcome(record.unmap, schema, p1, ctx) == outcome(
                record._unmap_generic, schema, p1, ctx, record._MISSING, record._MISSING
            )


def test_decode_metadata_fast_path():
    rnd = random.Random(3)
    for _ in range(3000):
        raw = {str(i): "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 5))) for i in range(5)}
        assert strict(decode_metadata(raw)) == strict({k: decode_metadata_value(v) for k, v in raw.items()})


def test_decode_uri_component_matches_unquote():
    rnd = random.Random(5)
    pieces = ["%C3", "%A9", "%41", "%", "a", "\\", "%e2%82%ac", "%F0%9F%98%80", "%ED%A0%80", "%FF", "%00", "%25", "é"]

    def malformed(s: str) -> bool:
        hexdigits = "0123456789abcdefABCDEF"
        return any(c == "%" and not (len(s[i + 1 : i + 3]) == 2 and all(h in hexdigits for h in s[i + 1 : i + 3]))
                   for i, c in enumerate(s))

    def reference(s: str):
        if "%" not in s:
            return s
        if malformed(s):
            raise ValueError("URIError")
        return urllib.parse.unquote(s, encoding="utf-8", errors="strict")

    def result(fn, s):
        try:
            return fn(s)
        except ValueError:
            return ValueError

    for _ in range(20000):
        s = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
        assert result(decode_uri_component, s) == result(reference, s), s


def _iso_reference(ms: float) -> str:
    t = int(ms)
    days, rem = divmod(t, 86400000)
    y, mo, d = _civil_from_days(days)
    hh, rem = divmod(rem, 3600000)
    mi, rem = divmod(rem, 60000)
    ss, mss = divmod(rem, 1000)
    ys = f"{y:04d}" if 0 <= y <= 9999 else ("+" if y > 0 else "-") + f"{abs(y):06d}"
    return f"{ys}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}.{mss:03d}Z"


def test_iso_from_ms_fast_range_matches_calendar_arithmetic():
    rnd = random.Random(1)
    edges = [-62135596800001, -62135596800000, 253402300799999, 253402300800000, -1, 0, -0.5, 0.9, 8.64e15]
    values = edges + [rnd.uniform(-8.64e15, 8.64e15) for _ in range(20000)]
    values += [rnd.uniform(-1e14, 3e14) for _ in range(20000)]  # years 1-9999 and around
    for ms in values:
        assert iso_from_ms(ms) == _iso_reference(ms), ms
    for bad in (math.nan, math.inf, 8.64e15 + 1):
        with pytest.raises(JSError):
            iso_from_ms(bad)


def test_record_iso_matches_strftime():
    for dt in (
        datetime(2026, 11, 24, 0, 0, 7, 123999, tzinfo=timezone.utc),
        datetime(1000, 1, 1),
        datetime(2021, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5))),
        datetime(999, 12, 31, tzinfo=timezone.utc),
    ):
        utc = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        assert record._iso(dt) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def test_integral_number_to_string_and_decimals():
    rnd = random.Random(2)
    for x in (0.0, -0.0, 2.0**53, -(2.0**53), 123.0):
        assert number_to_string(x) == str(int(x))
    assert number_to_string(2.0**60) == "1152921504606847000"
    assert number_to_string(2.0**53 + 2) == "9007199254740994"
    assert number_to_string(1e21) == "1e+21"
    alphabet = "0123456789abcXYZ"
    for _ in range(20000):
        whole = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 11)))
        frac = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 18)))
        s = rnd.choice(["", "-"]) + whole + "." + frac
        body = s[1:] if s.startswith("-") else s
        int_part = base62_decode(body.split(".")[0])
        expected = number_from_string(number_to_string(int_part) + "." + frac)
        expected = -expected if s.startswith("-") else expected
        assert strict(decode_decimal(s)) == strict(expected), s
    # integral doubles of every size below 1e21: the digits of the shortest repr, zero-padded
    for _ in range(20000):
        x = float(rnd.randint(-(10 ** rnd.randint(1, 21)), 10 ** rnd.randint(1, 21)))
        if abs(x) < 1e21:
            assert number_to_string(x) == str(int(Decimal(repr(x)))), x


def test_to_json_compatible_inlined_items():
    big = 1152921504606847000  # 2**60 as JS prints it
    value = {"l": [1.0, -0.0, 2.5, math.nan, math.inf, 2.0**60, "s", True, None], "f": 3.0, "g": 2.0**60, "h": math.nan}
    expected = {"l": [1, 0, 2.5, None, None, big, "s", True, None], "f": 3, "g": big, "h": None}
    assert strict(to_json_compatible(value)) == strict(expected)


def test_js_keys_cache_keeps_js_order():
    for keys in (("b", "1", "a", "0"), ("x", "y"), ("10", "2", "01", "z"), ()):
        d = dict.fromkeys(keys)
        assert list(js_keys(d)) == list(_js_order(keys))
        assert list(js_keys(d)) == list(js_keys(dict(d)))  # cached answer
    assert list(js_keys({"b": 1, "1": 2, "a": 3, "0": 4})) == ["0", "1", "b", "a"]


def test_record_id_from_key_matches_segment_scan():
    rnd = random.Random(4)
    pieces = ["id=", "/", "a", "id", "=", "resource=x", "data", "/id=", "i", "d"]
    for _ in range(20000):
        key = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
        expected = next((part[3:] for part in key.split("/") if part.startswith("id=")), None)
        assert record_id_from_key(key) == expected, key


def test_unflatten_copies_the_callers_containers():
    inner, items = {"x": 1}, ["p"]
    flat = {"a": inner, "a.b": 2, "l": items, "l.1": "q", "c.d": 3, "c.e": 4}
    assert strict(record.unflatten(flat)) == strict({"a": {"x": 1, "b": 2}, "l": ["p", "q"], "c": {"d": 3, "e": 4}})
    assert inner == {"x": 1} and items == ["p"]
