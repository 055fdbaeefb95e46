"""The column type of each s3db attribute, and whether a decoded value fits it (no pyarrow here).

One mapping for every reader that types columns: the Parquet mirror turns these types into
Arrow types (engine/parquet.py), and a backup line sets aside a value that does not fit its
field's type (engine/lines.py `_misfit`), so a plain DuckDB glob types every column from its
values the way the schema declares it. The choice follows the codec choice of SPEC §6.2
(substring tests, same order):

    number|integer… (integer:true, |integer)       int
    number, money, crypto, decimal, geo:lat/lon    float
    boolean / bool                                 bool
    datetime                                       timestamp (ISO 8601 text in JSON)
    dateonly                                       date (YYYY-MM-DD)
    geo:point                                      struct latitude: float, longitude: float
    embedding, array|items:number                  list of float
    array|items:number|integer…                    list of int
    array|items:string                             list of string
    nested object {a: …, b: …}                     struct (recursively)
    object-form {type:'array', items:'string'|…}   list of string / int / float
    json, object, any, other arrays                json (any JSON value: kept as it is)
    everything else (string, email, url, uuid,     string
    ip4/ip6, timeonly, secret*, password*, …)

A type is "string", "json", "int", "float", "bool", "timestamp", "date", ("list", item) or
("struct", ((name, type), ...)). The Parquet mirror stores json as its JSON text in a string
column; a backup line leaves json values as they are.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Callable, Union

import orjson

ColumnType = Union[str, tuple]
STRING, JSON, INT, FLOAT, BOOL, TIMESTAMP, DATE = "string", "json", "int", "float", "bool", "timestamp", "date"
GEO_POINT: ColumnType = ("struct", (("latitude", FLOAT), ("longitude", FLOAT)))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BAD = object()  # what a coercion returns for a value that does not fit


def list_of(item: ColumnType) -> ColumnType:
    return ("list", item)


def _is_integer(d: str) -> bool:
    return "integer:true" in d or "|integer:" in d or "|integer" in d


def _is_object_form(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("type"), str)


def column_type(definition: Any) -> ColumnType:
    """The type of one attribute definition (a string rule, an object-form rule, or a nested object)."""
    if _is_object_form(definition):
        t, items = definition["type"], str(definition.get("items", ""))
        if "array" in t:
            if "string" in items:
                return list_of(STRING)
            if "number" in items:
                return list_of(INT if "integer" in items else FLOAT)
        return STRING  # object-form scalars get no codec: stored with String(), read back as strings
    if isinstance(definition, dict):
        fields = tuple((k, column_type(v)) for k, v in definition.items() if not k.startswith("$$"))
        return ("struct", fields) if fields else JSON
    d = str(definition)
    if "embedding" in d:
        return list_of(FLOAT)
    if "array" in d:
        if "items:string" in d:
            return list_of(STRING)
        if "items:number" in d:
            return list_of(INT if _is_integer(d) else FLOAT)
        return JSON  # other arrays are stored as JSON
    if any(t in d for t in ("secret", "password", "ip4", "ip6", "buffer", "bits")):
        return STRING
    if any(t in d for t in ("money", "crypto", "decimal")):
        return FLOAT
    if d == "text" or d.startswith("text|"):
        return STRING
    if "geo:point" in d:
        return GEO_POINT
    if "geo:lat" in d or "geo:lon" in d:
        return FLOAT
    if "number" in d:
        return INT if _is_integer(d) else FLOAT
    if "boolean" in d or "bool" in d:
        return BOOL
    if "json" in d or "object" in d or d.split("|", 1)[0] == "any":
        return JSON
    if "datetime" in d:
        return TIMESTAMP
    if d == "dateonly" or d.startswith("dateonly|"):
        return DATE
    return STRING


# -- coercions: the value a typed column holds, or BAD ---------------------------------------
def to_string(v):
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def to_int(v):
    if isinstance(v, bool):
        return BAD
    if isinstance(v, int):
        return v if INT64_MIN <= v <= INT64_MAX else BAD
    if isinstance(v, float) and v.is_integer() and INT64_MIN <= v <= INT64_MAX:
        return int(v)
    return BAD


def to_float(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return BAD
    try:
        return float(v)
    except OverflowError:  # an int beyond float range
        return BAD


def to_bool(v):
    return v if isinstance(v, bool) else BAD


def to_timestamp_ms(v):
    if not isinstance(v, str):
        return BAD
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return BAD
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_date(v):
    if not isinstance(v, str):
        return BAD
    try:
        return date.fromisoformat(v)
    except ValueError:
        return BAD


SCALARS: dict[str, Callable[[Any], Any]] = {STRING: to_string, JSON: to_string, INT: to_int, FLOAT: to_float, BOOL: to_bool,
                                            TIMESTAMP: to_timestamp_ms, DATE: to_date}


def _int_ok(v) -> bool:
    t = type(v)
    return (t is int and INT64_MIN <= v <= INT64_MAX) or (t is float and v.is_integer() and INT64_MIN <= v <= INT64_MAX)


def _float_ok(v) -> bool:
    t = type(v)
    return t is float or (t is int and -_FLOAT_MAX <= v <= _FLOAT_MAX)


_FLOAT_MAX = 2**1024  # an int beyond it has no float
_SCALAR_OK: dict[str, Callable[[Any], bool]] = {  # None fits too (checked here: one call per value)
    STRING: lambda v: v is None or type(v) is str, INT: lambda v: v is None or _int_ok(v),
    FLOAT: lambda v: v is None or _float_ok(v), BOOL: lambda v: v is None or type(v) is bool,
    TIMESTAMP: lambda v: v is None or _parses(datetime.fromisoformat, v),
    DATE: lambda v: v is None or _parses(date.fromisoformat, v),
}


def _parses(parse: Callable[[str], Any], v) -> bool:
    if type(v) is not str:
        return False
    try:
        parse(v)
    except ValueError:
        return False
    return True


def checker(t: ColumnType) -> Callable[[Any], bool]:
    """A function telling whether a decoded value fits column type `t` whole (None fits
    anything; a list only if every item does; a struct only if it is an object whose declared
    fields all fit). Built once per field: backups call it for every record."""
    if t == JSON:
        return lambda v: True
    if isinstance(t, str):
        return _SCALAR_OK[t]
    if t[0] == "list":
        item = checker(t[1])
        return lambda v: v is None or (isinstance(v, list) and all(map(item, v)))
    subs = [(name, checker(sub)) for name, sub in t[1] if sub != JSON]
    return lambda v: v is None or (isinstance(v, dict) and all(ok(v.get(name)) for name, ok in subs))


def _null(_v) -> None:
    return None


def typed_fields(attributes: dict) -> list[tuple[str, Callable[[Any], bool], Callable[[Any], Any]]]:
    """(name, checker, stand-in) of the attributes whose values must fit their type: every one
    not typed json (which keeps any JSON value). The stand-in is what a column shows for a
    value that does not fit: its JSON text in a string column (as the Parquet mirror keeps it),
    null in any other."""
    return [(name, checker(t), to_string if t == STRING else _null) for name, definition in attributes.items()
            if not name.startswith("$$") and (t := column_type(definition)) != JSON]
