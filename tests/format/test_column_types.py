"""Column types of s3db attributes (format/column_types.py): one mapping for the Parquet mirror
and the backup lines, and the checkers a backup runs on every record to set aside values that
do not fit (engine/lines.py `_misfit`)."""

from __future__ import annotations

import pickle

import orjson
import pytest

from backup_pipeline.engine.lines import record_fields, record_line
from backup_pipeline.format import ResourceSchema
from backup_pipeline.format.column_types import (BOOL, DATE, FLOAT, GEO_POINT, INT, JSON, STRING, TIMESTAMP, checker,
                                                 column_type, list_of, typed_fields)
from backup_pipeline.store import RawObject


@pytest.mark.parametrize("definition, expected", [
    ("number|integer:true", INT), ("number", FLOAT), ("money", FLOAT), ("boolean", BOOL), ("datetime|optional", TIMESTAMP),
    ("dateonly", DATE), ("geo:point", GEO_POINT), ("embedding:3", list_of(FLOAT)), ("array|items:string", list_of(STRING)),
    ("array|items:number|integer:true", list_of(INT)), ("json", JSON), ("object|optional", JSON), ("any|optional", JSON),
    ("array|items:object", JSON), ("secret", STRING), ("string|required", STRING), ("string|default:company", STRING),
    ({"city": "string", "n": "number"}, ("struct", (("city", STRING), ("n", FLOAT)))),
    ({"type": "array", "items": "number"}, list_of(FLOAT)),
])
def test_each_definition_has_the_type_of_its_codec(definition, expected):
    assert column_type(definition) == expected


@pytest.mark.parametrize("t, fit, misfit", [
    (INT, [None, 0, -5, 2.0, 2**63 - 1], ["", 2.5, True, 2**63, "3"]),
    (FLOAT, [None, 1.5, 3, -1e-300], ["", True, "1.5", 2**1100]),
    (BOOL, [None, True, False], [0, "true"]),
    (TIMESTAMP, [None, "2026-01-02T03:04:05.006Z", "2026-01-02"], ["yesterday", 17, ""]),
    (DATE, [None, "2026-01-02"], ["02/01/2026", 20260102]),
    (list_of(INT), [None, [], [1, 2]], [[1, "x"], "1,2", [1.5]]),
    (list_of(STRING), [None, [], ["a"]], ["a", ["a", 1]]),
    (GEO_POINT, [None, {"latitude": 1.5, "longitude": -3}], [{"latitude": "n"}, [1, 2]]),
    (STRING, [None, "x", ""], [{"a": 1}, [1, 2, 3], 5]),
    (JSON, [None, "x", {"a": 1}, [1], 5], []),
])
def test_a_checker_tells_what_fits(t, fit, misfit):
    ok = checker(t)
    assert all(ok(v) for v in fit), [v for v in fit if not ok(v)]
    assert not any(ok(v) for v in misfit), [v for v in misfit if ok(v)]


def test_a_line_sets_aside_what_does_not_fit_and_gives_it_back_after_a_process_pool_pickles_the_schema():
    db = {"resources": {"people": {"currentVersion": "v1", "versions": {"v1": {
        "attributes": {"name": "string", "score": "number", "born": "datetime", "tags": "array|items:string"},
        "behavior": "user-managed", "timestamps": False, "partitions": {}}},
        "schemaRegistry": {"nextIndex": 4, "mapping": {"name": 0, "score": 1, "born": 2, "tags": 3}, "burned": []}}}}
    schema = ResourceSchema.from_database_json("people", db)
    assert [n for n, _, _ in schema.typed_fields] == ["name", "score", "born", "tags"]
    schema = pickle.loads(pickle.dumps(schema))  # how decoding workers receive it: checkers rebuilt there
    decoded = {"id": "p1", "name": [1, 2], "score": "", "born": "last spring", "tags": ["a"], "1": "old", "_v": "v1"}
    line = orjson.loads(record_line(decoded, RawObject(key="resource=people/data/id=p1", metadata={}, content_type=None, body=b""),
                                    schema.typed_fields, schema.declared_fields))
    assert (line["name"], line["score"], line["born"]) == ("[1,2]", None, None)  # a string column: the JSON text
    assert line["_misfit"] == {"name": [1, 2], "score": "", "born": "last spring"}
    assert line["_extra"] == {"1": "old"} and "1" not in line and line["_v"] == "v1"  # system fields stay
    assert record_fields(line) == decoded
    clean = orjson.loads(record_line({**decoded, "name": "Ann", "score": 1.5, "born": None}, RawObject(key="k", metadata={}, content_type=None, body=b""),
                                     schema.typed_fields))
    assert "_misfit" not in clean and clean["score"] == 1.5
