"""Write side of the format for typical schemas (SPEC §13, §5.2, §6): turns a logical record
into the user metadata s3db.js would store. Used to build large benchmark databases and
checked by the real s3db.js reading a sample back (bench/engine_bench.py --check-with-s3db).

Covered: string-like types, `number` (base62 decimal), `number|integer` (base62), `boolean`,
`datetime`, `array|items:string`, `array|items:number[|integer]`, `json`/`object`, nested
objects; behaviour user-managed with everything in metadata. Not covered (refused): secrets,
passwords, special scalar codecs, body behaviours.
"""

from __future__ import annotations

import base64
import math
import re
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import orjson

from .transport import CONTENT_TYPE_DICT, STATUS_MESSAGE_DICT, URL_PREFIX_DICT

_B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PREFIXES = sorted(URL_PREFIX_DICT.items(), key=lambda kv: -len(kv[0]))
_VALUES = {**CONTENT_TYPE_DICT, **STATUS_MESSAGE_DICT}


def base62(n: int) -> str:
    if n < 0:
        return "-" + base62(-n)
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def js_number(x: float) -> str:
    """JS Number.prototype.toString for the range s3db.js can store (1e-6 <= |x| < 1e21)."""
    if isinstance(x, bool):
        raise TypeError("boolean is not a number")
    if float(x).is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(float(x))
    if "e" in text:
        raise ValueError(f"{x!r} needs exponent notation, which s3db.js cannot store")
    return text


def base62_decimal(x: float) -> str:
    sign = "-" if x < 0 else ""
    text = js_number(abs(x))
    whole, _, frac = text.partition(".")
    return sign + base62(int(whole)) + (f".{frac}" if frac else "")


def transport_encode(value: Any) -> str:
    """SPEC §5.2: make a metadata value ASCII-safe, first matching rule wins."""
    if value is None:
        return "null"
    s = value if isinstance(value, str) else _js_string(value)
    if s.startswith(("d:", "u:", "b:", "z:", "z85:")):
        return "b:" + base64.b64encode(s.encode()).decode()
    code = _VALUES.get(s)
    if code and len(code) + 2 < len(s):
        return "d:" + code
    for prefix, code in _PREFIXES:
        if s.startswith(prefix):
            candidate = "d:" + code + s[len(prefix):]
            if len(candidate) < len(s):
                return candidate
            break
    if all(0x20 <= ord(c) <= 0x7E for c in s):
        return s
    units = len(s.encode("utf-16-le")) // 2
    if any(ord(c) > 0xFF or ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        special = sum(1 for c in s if ord(c) > 0xFF or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)
        use_b64 = special / units > 0.3
    else:
        latin = sum(1 for c in s if ord(c) > 0x7F)
        use_b64 = latin / units > 0.5
    if use_b64:
        return "b:" + base64.b64encode(s.encode()).decode()
    return "u:" + urllib.parse.quote(s, safe="-_.!~*'()")


def _js_string(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    return str(v)


def _escape_item(item: Any) -> str:
    s = item if isinstance(item, str) else _js_string(item)
    return s.replace("\\", "\\\\").replace("|", "\\|")


def encode_value(definition: str, value: Any) -> str:
    d = definition
    if "array" in d:
        if "items:string" in d:
            return "|".join(_escape_item(v) for v in value)
        if "items:number" in d:
            integer = "integer:true" in d or "|integer:" in d or "|integer" in d
            return "|".join(base62(math.floor(v)) if integer else base62_decimal(v) for v in value)
        return orjson.dumps(value).decode()
    if any(t in d for t in ("secret", "password", "embedding", "ip4", "ip6", "money", "crypto", "decimal", "geo:")):
        raise ValueError(f"encoder does not support {definition!r}")
    if "number" in d:
        integer = "integer:true" in d or "|integer:" in d or "|integer" in d
        return base62(math.floor(value)) if integer else base62_decimal(value)
    if "boolean" in d or "bool" in d:
        return "1" if value else "0"
    if "json" in d or "object" in d:
        return orjson.dumps(value).decode()
    if "datetime" in d:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return base62(int(dt.astimezone(timezone.utc).timestamp() * 1000))
    return value if isinstance(value, str) else _js_string(value)


def _leaves(attributes: dict, prefix: str = ""):
    for name, d in attributes.items():
        path = f"{prefix}{name}"
        if isinstance(d, dict) and not ("type" in d and isinstance(d["type"], str)):
            yield from _leaves({k: v for k, v in d.items() if not k.startswith("$$")}, path + ".")
        else:
            yield path, d


def _get_path(record: dict, path: str) -> Any:
    cur: Any = record
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


_MISSING = object()
_KEY_SANITISE = re.compile(r"[^A-Za-z0-9_-]")


def encode_record(attributes: dict, mapping: dict[str, int], version: str, record: dict) -> dict[str, str]:
    """User metadata for `record` (without id) under a resource's current attributes and registry."""
    meta: dict[str, str] = {}
    for path, definition in _leaves(attributes):
        value = _get_path(record, path)
        if value is _MISSING:
            continue
        if isinstance(definition, dict):
            raise ValueError(f"object-form definition of {path!r} is not supported by the encoder")
        short = _base36(mapping[path])
        meta[short] = transport_encode(None if value is None else encode_value(definition, value))
    meta["_v"] = version
    return {_KEY_SANITISE.sub("_", k).lower(): v for k, v in meta.items()}


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))
