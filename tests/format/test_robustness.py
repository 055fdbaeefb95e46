"""Damaged objects never crash the decoder: it returns a record or raises DecodeError."""

from __future__ import annotations

import dataclasses
import random

from backup_pipeline.errors import DecodeError
from backup_pipeline.format import decode_record
from decoder_fixtures import fixture_cases, raw_object, schema_for

PIECES = list("abcXYZ019-_.:|\\{}[]\"$^~@%/+=, ") + [
    "é", "日", "😀", "\x00", "null", "undefined", "d:", "u:", "b:", "z:", "z85:", "[object Object]",
]
BODIES = [b"", b"  ", b"null", b"[1,2]", b'"str"', b"5", b'{"0":"x","h":"zz","a.b":1,"a":"s"}', b'{"__proto__":1}']


def test_random_damage_is_decoded_or_reported():
    rnd = random.Random(20241124)
    cases = fixture_cases()

    def junk() -> str:
        return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 12)))

    outcomes = {"record": 0, "DecodeError": 0}
    for _ in range(1500):
        name, resource, record_id = rnd.choice(cases)
        obj = raw_object(name, resource, record_id)
        metadata = dict(obj.metadata)
        for _ in range(rnd.randint(1, 4)):
            metadata[rnd.choice([*metadata, junk()])] = junk()
        body = rnd.choice([*BODIES, junk().encode()]) if rnd.random() < 0.3 else obj.body
        damaged = dataclasses.replace(obj, metadata=metadata, body=body)
        for mode in ("exact", "clean"):
            try:
                record = decode_record(schema_for(name, resource), damaged, mode=mode)
            except DecodeError as exc:
                assert exc.resource == resource and exc.record_id == record_id
                outcomes["DecodeError"] += 1
            else:
                assert record["id"] == record_id
                outcomes["record"] += 1
    assert outcomes["record"] > outcomes["DecodeError"] > 0
