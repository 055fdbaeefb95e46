"""JavaScript value semantics the s3db.js reader depends on (private helpers).

s3db.js is JavaScript; reproducing its output byte for byte needs a few of JS's rules:
`undefined` distinct from `null`, integer-like object keys iterating first, JS number
formatting, `String()` conversion, `JSON.parse`, truthiness, `Date.prototype.toISOString`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any


class _Undefined:
    """JS `undefined`: a present key whose value JSON.stringify omits (SPEC §5.3, §6.3)."""

    __slots__ = ()
    _instance: "_Undefined | None" = None

    def __new__(cls) -> "_Undefined":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Undefined, ())


UNDEFINED = _Undefined()

NAN = float("nan")
MAX_SAFE = 2**53

# Names JS objects inherit from Object.prototype: looking them up in s3db.js's plain-object
# maps returns a function, which makes unmapper() throw (see record.unmap).
PROTO_NAMES = frozenset(
    {
        "constructor", "__proto__", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
        "toString", "valueOf", "toLocaleString", "__defineGetter__", "__defineSetter__",
        "__lookupGetter__", "__lookupSetter__",
    }
)


class JSError(Exception):
    """Something that throws in JS (TypeError/RangeError/SyntaxError); carries the reason."""


# --- object keys -------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def is_index_key(k: str) -> bool:
    """True for canonical array-index strings ("0", "17"; not "01"), which JS orders first."""
    if not k or not k.isdigit() or not k.isascii():
        return False
    if len(k) > 1 and k[0] == "0":
        return False
    return int(k) < 4294967295


def _js_order(keys: tuple) -> tuple:
    idx = [k for k in keys if is_index_key(k)]
    if not idx:
        return keys
    idx.sort(key=int)
    if len(idx) == len(keys):
        return tuple(idx)
    return tuple(idx + [k for k in keys if not is_index_key(k)])


# Decoded records repeat a few key layouts (a resource's fields, its nested objects), so the
# order of small layouts is computed once: tuple() and one dict look-up beat testing each key.
_ORDER_CACHE: dict = {}


def js_keys(d: dict) -> tuple:
    """Keys of a dict in JS own-property order: integer-like keys ascending, then insertion."""
    keys = tuple(d)
    order = _ORDER_CACHE.get(keys)
    if order is None:
        order = _js_order(keys)
        if len(keys) <= 64 and len(_ORDER_CACHE) < 4096:
            _ORDER_CACHE[keys] = order
    return order


def js_items(d: dict) -> list:
    return [(k, d[k]) for k in js_keys(d)]


def entries_of(value: Any) -> list:
    """`Object.entries(cloneDeep(value))` as s3db.js's unmapper sees it; raises for null."""
    if isinstance(value, dict):
        return js_items(value)
    if value is None or value is UNDEFINED:
        raise JSError("Cannot convert undefined or null to object")
    if isinstance(value, list):
        return [(str(i), v) for i, v in enumerate(value) if v is not UNDEFINED]
    if isinstance(value, str):
        return [(str(i), c) for i, c in enumerate(utf16_units(value))]
    if isinstance(value, (bytes, bytearray)):
        return [(str(i), b) for i, b in enumerate(value)]
    return []


def spread(value: Any) -> dict:
    """`{...value}`: objects copy, arrays/strings give index keys, other primitives nothing."""
    if isinstance(value, dict):
        return value
    if value is None or value is UNDEFINED:
        return {}
    return dict(entries_of(value))


# --- types and truthiness ----------------------------------------------------------------


def is_number(v: Any) -> bool:
    return (type(v) is int) or (type(v) is float)


def truthy(v: Any) -> bool:
    if v is None or v is UNDEFINED or v is False:
        return False
    if type(v) is float:
        return not (v == 0 or v != v)
    if type(v) is int:
        return v != 0
    if type(v) is str:
        return v != ""
    return True


# --- numbers -----------------------------------------------------------------------------


def number_to_string(x: Any) -> str:
    """ECMAScript Number::toString(10)."""
    if type(x) is int:
        if -MAX_SAFE <= x <= MAX_SAFE:
            return str(x)
        x = float(x)
    elif type(x) is float and x.is_integer() and -MAX_SAFE <= x <= MAX_SAFE:
        # doubles are exact integers here, and JS prints their digits (-0 as "0")
        return str(int(x))
    if x != x:
        return "NaN"
    if x == math.inf:
        return "Infinity"
    if x == -math.inf:
        return "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # shortest round-trip digits, like JS
    if "e" in r:
        mant, exp_s = r.split("e")
        exp = int(exp_s)
    else:
        mant, exp = r, 0
    ip, _, fp = mant.partition(".")
    all_digits = ip + fp
    stripped = all_digits.lstrip("0")
    lead = len(all_digits) - len(stripped)
    digits = stripped.rstrip("0")
    n = len(ip) + exp - lead
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = digits + "e" + es if k == 1 else digits[0] + "." + digits[1:] + "e" + es
    return sign + out


def number_to_hex(x: float) -> str:
    """`Number.prototype.toString(16)` for the integral values base62 decoding yields."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if x < 0:
        return "-" + number_to_hex(-x)
    return format(int(x), "x")


def js_floor(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return float(math.floor(x))


def js_mod(a: float, b: float) -> float:
    """JS `%` (sign of the dividend, NaN for infinite dividends)."""
    if a != a or b != b or a in (math.inf, -math.inf) or b == 0:
        return NAN
    return math.fmod(a, b)


def to_uint32(x: float) -> int:
    if x != x or x in (math.inf, -math.inf):
        return 0
    return int(x) % 4294967296


def js_string(v: Any) -> str:
    """JS `String(v)` for the value kinds a decoded record can hold."""
    if type(v) is str:
        return v
    if v is None:
        return "null"
    if v is UNDEFINED:
        return "undefined"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if is_number(v):
        return number_to_string(v)
    if isinstance(v, list):
        return ",".join("" if (e is None or e is UNDEFINED) else js_string(e) for e in v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    return "[object Object]"


def pad_start(s: str, n: int, ch: str = "0") -> str:
    return s if len(s) >= n else ch * (n - len(s)) + s


_JS_WS = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_trim(s: str) -> str:
    return s.strip(_JS_WS)


_NUM_DEC = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_NUM_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def number_from_string(s: str) -> float:
    """JS `Number(string)`."""
    t = js_trim(s)
    if t == "":
        return 0.0
    if _NUM_DEC.fullmatch(t):
        return float(t)
    if _NUM_RADIX.fullmatch(t):
        return float(int(t, 0))
    return NAN


# --- strings ------------------------------------------------------------------------------


def utf16_units(s: str) -> list[str]:
    """Split into UTF-16 code units (astral characters become two lone surrogates)."""
    if s.isascii() or all(ord(c) < 0x10000 for c in s):
        return list(s)
    out: list[str] = []
    for c in s:
        o = ord(c)
        if o < 0x10000:
            out.append(c)
        else:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)))
            out.append(chr(0xDC00 + (o & 0x3FF)))
    return out


def utf16_len(s: str) -> int:
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utf16_substring(s: str, n: int) -> str:
    """`s.substring(0, n)` in UTF-16 units; a split pair becomes U+FFFD, as Node writes it."""
    if utf16_len(s) <= n:
        return s
    cut = "".join(utf16_units(s)[:n])
    cut = cut.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _LONE_SURROGATE.sub("\ufffd", cut)


# --- JSON.parse ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON.parse rejects {name}")


def _js_int(s: str) -> Any:
    v = int(s)
    return v if -MAX_SAFE <= v <= MAX_SAFE else float(v)  # JS numbers are doubles


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_js_int)
_scan_once = _decoder.scan_once
_skip_ws = json.decoder.WHITESPACE.match


def try_json_parse(text: str) -> tuple[bool, Any]:
    """`JSON.parse(text)` inside s3db.js's tryFn: (ok, value)."""
    # _decoder.decode(text) without its two Python-level frames: skip whitespace, scan one
    # value (StopIteration: none there, which decode reports as a ValueError), then only
    # whitespace may follow.
    try:
        value, end = _scan_once(text, _skip_ws(text, 0).end())
    except (StopIteration, ValueError, RecursionError):
        return False, None
    if _skip_ws(text, end).end() != len(text):
        return False, None
    return True, value


# --- dates --------------------------------------------------------------------------------


def _civil_from_days(z: int) -> tuple[int, int, int]:
    # Howard Hinnant's algorithm, valid over the whole JS date range.
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (1 if m <= 2 else 0), m, d)


_EPOCH = datetime(1970, 1, 1)
_MIN_DATETIME_MS = -62135596800000  # 0001-01-01T00:00:00.000
_MAX_DATETIME_MS = 253402300799999  # 9999-12-31T23:59:59.999


def iso_from_ms(ms: float) -> str:
    """`new Date(ms).toISOString()`; raises JSError (RangeError) for NaN/out-of-range."""
    if ms != ms or ms in (math.inf, -math.inf) or abs(ms) > 8.64e15:
        raise JSError("RangeError: Invalid time value")
    t = int(ms)  # TimeClip truncates towards zero
    if _MIN_DATETIME_MS <= t <= _MAX_DATETIME_MS:
        # Years 1-9999, where Python's datetime does the same calendar arithmetic (floor
        # division for times before 1970) and isoformat prints the same digits, faster.
        return (_EPOCH + timedelta(milliseconds=t)).isoformat(timespec="milliseconds") + "Z"
    days, rem = divmod(t, 86400000)
    y, mo, d = _civil_from_days(days)
    hh, rem = divmod(rem, 3600000)
    mi, rem = divmod(rem, 60000)
    ss, mss = divmod(rem, 1000)
    ys = f"{y:04d}" if 0 <= y <= 9999 else ("+" if y > 0 else "-") + f"{abs(y):06d}"
    return f"{ys}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}.{mss:03d}Z"
