"""Partition references and partition queries (SPEC §10, §1.2).

Reference key: `resource=<R>/partition=<P>/<f1>=<v1>[/<f2>=<v2>…]/id=<ID>`, fields sorted
like JS `localeCompare`, values = the record's decoded values transformed by the field rule.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ..errors import NotFound
from ._js import UNDEFINED, JSError, iso_from_ms, is_index_key, js_string, truthy, utf16_len, utf16_substring
from .schema import ResourceSchema

_MAXLENGTH = re.compile(r"maxlength:(\d+)")
_ISO_DATE = re.compile(
    r"([+-]\d{6}|\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)


def _parse_js_date(s: str) -> float | None:
    """`new Date(s).getTime()` for the ECMAScript date-time string format, else None.

    Approximations: a date-time without offset is taken as UTC (V8 would use the local time
    zone), and V8's legacy non-ISO formats are not recognised (the value is left unchanged).
    """
    m = _ISO_DATE.fullmatch(s)
    if not m:
        return None
    y_s, mo_s, d_s, hh, mi, ss, frac, tz = m.groups()
    if y_s == "-000000":
        return None
    try:
        year = int(y_s)
        month = int(mo_s or 1)
        day = int(d_s or 1)
        hour, minute, second = int(hh or 0), int(mi or 0), int(ss or 0)
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 24 and minute < 60 and second < 60):
            return None
        if hour == 24 and (minute or second or (frac and int(frac))):
            return None
        ms = int((frac or "0")[:3].ljust(3, "0"))
        # days from civil, proleptic Gregorian (works outside datetime's year range)
        y = year - (1 if month <= 2 else 0)
        era = (y if y >= 0 else y - 399) // 400
        yoe = y - era * 400
        doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        days = era * 146097 + doe - 719468
        t = days * 86400000 + ((hour * 60 + minute) * 60 + second) * 1000 + ms
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            t -= sign * (int(tz[1:3]) * 60 + int(tz[4:6])) * 60000
    except ValueError:
        return None
    return float(t) if abs(t) <= 8.64e15 else None


def apply_partition_rule(value: Any, rule: Any) -> Any:
    """ResourcePartitions.applyRule: `maxlength:N` cuts strings, `date` keeps YYYY-MM-DD."""
    if value is None or value is UNDEFINED:
        return value
    t = value
    if isinstance(rule, str) and "maxlength:" in rule:
        m = _MAXLENGTH.search(rule)
        if m:
            n = int(m.group(1))
            if type(t) is str and utf16_len(t) > n:
                t = utf16_substring(t, n)
    if isinstance(rule, str) and "date" in rule:
        if isinstance(t, datetime):
            dt = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
            t = dt.astimezone(timezone.utc).strftime("%Y-%m-%d")
        elif type(t) is str:
            if "T" in t and "Z" in t:
                t = t.split("T")[0]
            else:
                ms = _parse_js_date(t)
                if ms is not None:
                    try:
                        t = iso_from_ms(ms).split("T")[0]
                    except JSError:
                        pass
    return t


def get_nested_field_value(data: Any, path: str) -> Any:
    """ResourcePartitions.getNestedFieldValue (UNDEFINED when a segment is missing)."""
    if "." not in path:
        return data.get(path, UNDEFINED) if isinstance(data, dict) else UNDEFINED
    cur = data
    for key in path.split("."):
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif isinstance(cur, list) and is_index_key(key) and int(key) < len(cur):
            cur = cur[int(key)]
        else:
            return UNDEFINED
    return cur


def posix_join(*parts: str) -> str:
    """Node `path.posix.join`: join non-empty parts, then normalise `.`/`..`/`//`."""
    path = "/".join(p for p in parts if p)
    if not path:
        return "."
    absolute = path.startswith("/")
    trailing = path.endswith("/")
    segs: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segs and segs[-1] != "..":
                segs.pop()
            elif not absolute:
                segs.append("..")
        else:
            segs.append(seg)
    out = "/".join(segs)
    if not out and not absolute:
        out = "."
    if out and trailing:
        out += "/"
    return ("/" if absolute else "") + out


def _require(schema: ResourceSchema, partition_name: str) -> None:
    if partition_name not in schema.partitions:
        raise NotFound(f"resource {schema.name!r} has no partition {partition_name!r}")


def partition_reference_key(
    schema: ResourceSchema, partition_name: str, record: dict, record_id: str | None = None
) -> str | None:
    """Key of the reference object s3db.js writes for `record` in `partition_name`, or None
    when a field is null/absent (then no reference exists). `record` is a decoded record."""
    _require(schema, partition_name)
    segments = []
    for field, rule in schema.partition_fields(partition_name):
        v = apply_partition_rule(get_nested_field_value(record, field), rule)
        if v is None or v is UNDEFINED:
            return None
        segments.append(f"{field}={js_string(v)}")
    if not segments:
        return None
    rid = record_id or (record.get("id") if isinstance(record, dict) else None)
    if not truthy(rid):
        return None
    return posix_join(f"resource={schema.name}", f"partition={partition_name}", *segments, f"id={rid}")


def partition_reference_keys(schema: ResourceSchema, record: dict, record_id: str | None = None) -> list[str]:
    """Every reference key of a record, one per partition that applies (restore helper)."""
    keys = []
    for name in schema.partitions:
        k = partition_reference_key(schema, name, record, record_id)
        if k is not None:
            keys.append(k)
    return keys


def partition_query_prefix(
    resource: str, partition_name: str | None, values: dict | None, schema: ResourceSchema
) -> str:
    """The prefix `listIds({partition, partitionValues})` lists (no trailing slash).

    As in s3db.js 21.6.2, a query without values lists the data objects
    (`resource=<R>/data`), not the partition; values that are null/absent are skipped, and
    if none remain the whole partition (`resource=<R>/partition=<P>`) is listed.
    """
    if not partition_name or not values:
        return f"resource={resource}/data"
    _require(schema, partition_name)
    segments = []
    for field, rule in schema.partition_fields(partition_name):
        v = values.get(field, UNDEFINED)
        if v is not None and v is not UNDEFINED:
            segments.append(f"{field}={js_string(apply_partition_rule(v, rule))}")
    prefix = f"resource={resource}/partition={partition_name}"
    return prefix + "/" + "/".join(segments) if segments else prefix


def partition_prefix(resource: str, partition_name: str) -> str:
    """All reference objects of one partition (for copying or checking references)."""
    return f"resource={resource}/partition={partition_name}/"
