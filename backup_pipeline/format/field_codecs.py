"""Per-attribute type codecs, read side (SPEC §6.2, §6.3, §6.4).

s3db.js picks, per flattened attribute name, a list of "afterUnmap hooks" (its
`generateAutoHooks`); attributes without a hook may instead get a "mapper" decoder
(uuid, datetime, …). `build_hooks` reproduces that selection once per schema; `FieldCodec`
bundles what the reader needs for one name. All decoders follow the JS originals, including
what they do with values that are already decoded (the §11 pass 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ._js import (
    NAN,
    UNDEFINED,
    is_number,
    js_items,
    iso_from_ms,
    js_floor,
    js_mod,
    js_string,
    js_trim,
    number_to_hex,
    number_to_string,
    pad_start,
    to_uint32,
    truthy,
    try_json_parse,
)
from .numbers import (
    base62_decode,
    decode_decimal,
    decode_fixed_point,
    decode_fixed_point_batch,
)
from .secrets import decrypt_secret
from .transport import decompress_text, node_base64_decode

ARRAY_SEPARATOR = "|"


@dataclass(slots=True)
class DecodeContext:
    """Per-record state shared by the decoders."""

    passphrase: str | None
    second_pass: bool = False
    # Plaintexts produced by decryption in pass 1. Pass 2 would try to decrypt them again;
    # a plaintext that is itself a valid AES-GCM ciphertext under the same key is not a
    # practical possibility, so it is skipped instead of paying PBKDF2 for nothing.
    plaintexts: set = field(default_factory=set)


Hook = Callable[[Any, DecodeContext], Any]


# --- helpers ---------------------------------------------------------------------------------


def split_escaped(s: str, sep: str = ARRAY_SEPARATOR) -> list[str]:
    """String-array rule: a backslash copies the next character, an unescaped sep splits."""
    if "\\" not in s:
        return s.split(sep)
    items: list[str] = []
    cur: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            cur.append(s[i + 1])
            i += 2
        elif c == sep:
            items.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    items.append("".join(cur))
    return items


def _is_nullish(v: Any) -> bool:
    return v is None or v is UNDEFINED


# --- hook actions (SchemaActions.* afterUnmap) ---------------------------------------------


def act_decrypt(value: Any, ctx: DecodeContext) -> Any:
    if _is_nullish(value) or type(value) is not str or ctx.passphrase is None:
        return value  # non-strings make Buffer.from throw -> value kept
    if ctx.second_pass and value in ctx.plaintexts:
        return value
    raw = decrypt_secret(value, ctx.passphrase)
    if raw is None:
        return value
    ctx.plaintexts.add(raw)
    if raw == "null":
        return None
    if raw == "undefined":
        return UNDEFINED
    return raw


def to_array(value: Any, ctx: DecodeContext | None = None) -> Any:
    if isinstance(value, list) or _is_nullish(value):
        return value
    if value == "":
        return []
    return split_escaped(js_string(value))


def act_from_json(value: Any, ctx: DecodeContext) -> Any:
    if type(value) is not str or value == "":
        return value
    ok, parsed = try_json_parse(value)
    return parsed if ok else value


def act_to_bool(value: Any, ctx: DecodeContext) -> Any:
    # [true, 1, 'true', '1', 'yes', 'y'].includes(value)
    if value is True:
        return True
    if is_number(value):
        return value == 1
    return type(value) is str and value in ("true", "1", "yes", "y")


def act_from_base62(value: Any, ctx: DecodeContext) -> Any:
    if _is_nullish(value) or value == "" or is_number(value):
        return value
    if type(value) is str:
        n = base62_decode(value)
        return UNDEFINED if n != n else n
    return UNDEFINED


def act_from_base62_decimal(value: Any, ctx: DecodeContext) -> Any:
    if _is_nullish(value) or value == "" or is_number(value):
        return value
    if type(value) is str:
        n = decode_decimal(value)
        return UNDEFINED if n != n else n
    return UNDEFINED


def _array_items(value: Any) -> list[str]:
    return split_escaped(js_string(value))


def act_to_array_of_numbers(value: Any, ctx: DecodeContext) -> Any:
    if isinstance(value, list):
        return [v if is_number(v) else (base62_decode(v) if type(v) is str else NAN) for v in value]
    if _is_nullish(value):
        return value
    if value == "":
        return []
    return [base62_decode(v) if v != "" else NAN for v in _array_items(value)]


def act_to_array_of_decimals(value: Any, ctx: DecodeContext) -> Any:
    if isinstance(value, list):
        return [v if is_number(v) else decode_decimal(v) for v in value]
    if _is_nullish(value):
        return value
    if value == "":
        return []
    return [decode_decimal(v) if v != "" else NAN for v in _array_items(value)]


def make_to_array_of_embeddings(precision: int) -> Hook:
    def act(value: Any, ctx: DecodeContext) -> Any:
        if isinstance(value, list) or _is_nullish(value):
            return value
        if value == "" or value == "^[]":
            return []
        s = js_string(value)
        if s.startswith("^["):
            return decode_fixed_point_batch(s, precision)
        return [decode_fixed_point(v, precision) if v != "" else NAN for v in split_escaped(s)]

    return act


def act_decode_ipv4(value: Any, ctx: DecodeContext) -> Any:
    if type(value) is not str:
        return value
    b = node_base64_decode(value)  # lenient: '10.0.0.10' -> '100010' -> 4 bytes (SPEC §11)
    return ".".join(str(x) for x in b) if len(b) == 4 else value


_IPV6_RE = re.compile(
    r"(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}"
    r"|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}"
    r"|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}"
    r"|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)"
    r"|fe80:(:[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]+"
    r"|::(ffff(:0{1,4})?:)?((25[0-5]|(2[0-4]|1?[0-9])?[0-9])\.){3}(25[0-5]|(2[0-4]|1?[0-9])?[0-9])"
    r"|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1?[0-9])?[0-9])\.){3}(25[0-5]|(2[0-4]|1?[0-9])?[0-9]))",
    re.ASCII,
)


def compress_ipv6(groups: list[int]) -> str:
    """SPEC §6.4: lowercase hex, longest run (first on ties) of >= 2 zero groups -> '::'."""
    parts = [format(g, "x") for g in groups]
    best_start, best_len, i = -1, 0, 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i >= 2 and j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_start < 0:
        return ":".join(parts)
    before = ":".join(parts[:best_start])
    after = ":".join(parts[best_start + best_len :])
    return f"{before}::{after}"


def act_decode_ipv6(value: Any, ctx: DecodeContext) -> Any:
    if type(value) is not str:
        return value
    if len(value) != 24 and _IPV6_RE.fullmatch(value):
        return value
    b = node_base64_decode(value)
    if len(b) != 16:
        return value
    return compress_ipv6([(b[i] << 8) | b[i + 1] for i in range(0, 16, 2)])


def act_decode_buffer(value: Any, ctx: DecodeContext) -> Any:
    if type(value) is not str:
        return value
    return node_base64_decode(value)


def make_decode_bits(bit_count: int | None) -> Hook:
    def act(value: Any, ctx: DecodeContext) -> Any:
        if type(value) is not str:
            return value
        b = node_base64_decode(value)
        if bit_count is not None and len(b) != (bit_count + 7) >> 3:
            return value
        return b

    return act


def make_decode_money(decimals: int) -> Hook:
    divisor = float(10**decimals)

    def act(value: Any, ctx: DecodeContext) -> Any:
        if type(value) is not str or not value.startswith("$"):
            return value
        n = base62_decode(value[1:])
        return value if n != n else n / divisor

    return act


def make_decode_decimal_fixed(precision: int) -> Hook:
    def act(value: Any, ctx: DecodeContext) -> Any:
        if type(value) is not str:
            return value
        return decode_fixed_point(value, precision)  # NaN (not the value) without '^'

    return act


def _geo(value: str, precision: int, offset: float) -> Any:
    if not value.startswith("~"):
        return value
    n = base62_decode(value[1:])
    if n != n:
        return NAN
    return n / float(10**precision) - offset


def make_decode_geo(precision: int, offset: float) -> Hook:
    def act(value: Any, ctx: DecodeContext) -> Any:
        return value if type(value) is not str else _geo(value, precision, offset)

    return act


def make_decode_geo_point(precision: int) -> Hook:
    def act(value: Any, ctx: DecodeContext) -> Any:
        if type(value) is not str:
            return value
        parts = [p for p in value.split("~") if p]
        if len(parts) != 2:
            return {"latitude": NAN, "longitude": NAN}
        return {
            "latitude": _geo("~" + parts[0], precision, 90.0),
            "longitude": _geo("~" + parts[1], precision, 180.0),
        }

    return act


def act_decompress_text(value: Any, ctx: DecodeContext) -> Any:
    if type(value) is not str:
        return value
    try:
        return decompress_text(value)
    except Exception:
        return value


# --- mapper decoders (attributes without a hook; SPEC §11 step 2a) -------------------------


def _map_uuid(v: Any) -> Any:
    if type(v) is str and len(v) == 24 and "-" not in v:
        h = "".join(pad_start(number_to_hex(base62_decode(v[i : i + 6])), 8) for i in (0, 6, 12, 18))
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    return v


def _map_datetime(v: Any) -> Any:
    if type(v) is str and v != "":
        return iso_from_ms(base62_decode(v))  # raises like `new Date(NaN).toISOString()`
    return v


def _map_dateonly(v: Any) -> Any:
    if type(v) is str and v != "":
        return iso_from_ms(base62_decode(v) * 86_400_000)[:10]
    return v


def _map_timeonly(v: Any) -> Any:
    if type(v) is str and v != "":
        total = base62_decode(v)
        ms = js_mod(total, 1000)
        secs = js_floor(total / 1000)
        s = js_mod(secs, 60)
        mins = js_floor(secs / 60)
        m = js_mod(mins, 60)
        h = js_floor(mins / 60)
        n2s = number_to_string
        return f"{pad_start(n2s(h), 2)}:{pad_start(n2s(m), 2)}:{pad_start(n2s(s), 2)}.{pad_start(n2s(ms), 3)}"
    return v


def _map_mac(v: Any) -> Any:
    if type(v) is str and len(v) == 9 and ":" not in v:
        h = pad_start(number_to_hex(base62_decode(v)), 12)
        return ":".join(h[i : i + 2] for i in range(0, len(h) - 1, 2))
    return v


def _map_cidr(v: Any) -> Any:
    if type(v) is str and len(v) == 7 and "." not in v:
        ip = to_uint32(base62_decode(v[:6]))
        prefix = base62_decode(v[6:])
        return f"{(ip >> 24) & 255}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}/{number_to_string(prefix)}"
    return v


def _map_semver(v: Any) -> Any:
    if type(v) is str and v != "" and "." not in v:
        p = base62_decode(v)
        major = js_floor(p / 1_000_000)
        minor = js_floor(js_mod(p, 1_000_000) / 1000)
        patch = js_mod(p, 1000)
        return f"{number_to_string(major)}.{number_to_string(minor)}.{number_to_string(patch)}"
    return v


def _map_phone(v: Any) -> Any:
    if type(v) is str and v != "" and not v.startswith("+"):
        return "+" + number_to_string(base62_decode(v))
    return v


def _map_color(v: Any) -> Any:
    if type(v) is str and len(v) == 5 and not v.startswith("#"):
        return "#" + pad_start(number_to_hex(base62_decode(v)), 6)
    return v


def _map_duration(v: Any) -> Any:
    if type(v) is str and v != "" and not v.startswith("P"):
        ms = base62_decode(v)
        days = js_floor(ms / 86400000)
        hours = js_floor(js_mod(ms, 86400000) / 3600000)
        minutes = js_floor(js_mod(ms, 3600000) / 60000)
        seconds = js_floor(js_mod(ms, 60000) / 1000)
        millis = js_mod(ms, 1000)
        n2s = number_to_string
        out = "P"
        if truthy(days):
            out += n2s(days) + "D"
        if truthy(hours) or truthy(minutes) or truthy(seconds) or truthy(millis):
            out += "T"
            if truthy(hours):
                out += n2s(hours) + "H"
            if truthy(minutes):
                out += n2s(minutes) + "M"
            if truthy(seconds) and truthy(millis):
                out += n2s(seconds) + "." + pad_start(n2s(millis), 3) + "S"
            elif truthy(seconds):
                out += n2s(seconds) + "S"
            elif truthy(millis):
                out += "0." + pad_start(n2s(millis), 3) + "S"
        return "PT0S" if out == "P" else out
    return v


_EAN_DIGITS = re.compile(r"[0-9]{8,14}")
_EAN_LEN = {"0": 8, "1": 13, "2": 12, "3": 14}


def _map_ean(v: Any) -> Any:
    if type(v) is str and v != "" and v[0] in _EAN_LEN and not _EAN_DIGITS.fullmatch(v):
        return pad_start(number_to_string(base62_decode(v[1:])), _EAN_LEN[v[0]])
    return v


def _map_number(v: Any) -> Any:
    if type(v) is str and v != "":
        return base62_decode(v)  # NaN stays NaN here (no hook path)
    if is_number(v):
        return v
    return UNDEFINED


def mapper_for(defn: str) -> Callable[[Any], Any] | None:
    """The mapper decoder s3db.js applies to a string definition without hooks."""

    def typed(t: str) -> bool:
        return defn == t or defn.startswith(t + "|")

    if typed("uuid"):
        return _map_uuid
    if "datetime" in defn:
        return _map_datetime
    if "dateonly" in defn:
        return _map_dateonly
    for t, fn in (
        ("timeonly", _map_timeonly), ("mac", _map_mac), ("cidr", _map_cidr),
        ("semver", _map_semver), ("phone", _map_phone), ("color", _map_color),
        ("duration", _map_duration), ("ean", _map_ean),
    ):
        if typed(t):
            return fn
    if "number" in defn and "array" not in defn and "decimal" not in defn:
        return _map_number
    return None


# --- hook selection (Schema.generateAutoHooks) ---------------------------------------------


def flatten_definitions(obj: Any) -> dict:
    """s3db.js `flatten(attributes, {safe: true})`: arrays and empty objects are leaves."""
    out: dict = {}

    def rec(cur: Any, path: str) -> None:
        if isinstance(cur, dict):
            if not cur:
                out[path] = {}
                return
            for k, v in js_items(cur):
                rec(v, f"{path}.{k}" if path else k)
        else:
            out[path] = cur

    rec(obj, "")
    return out


def _add(hooks: dict, name: str, action: tuple) -> None:
    lst = hooks.setdefault(name, [])
    if action not in lst:  # addHook dedupes with uniq()
        lst.append(action)


def _hooks_from_object_forms(attributes: dict, hooks: dict, prefix: str = "") -> None:
    for key, value in js_items(attributes):
        if key.startswith("$$"):
            continue
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and truthy(value.get("type", UNDEFINED)):
            items = value.get("items")
            if value.get("type") == "array" and truthy(items):
                length = value.get("length")
                length = length if is_number(length) else None
                if isinstance(items, str) and "string" in items:
                    _add(hooks, full, ("toArray",))
                elif isinstance(items, str) and "number" in items:
                    if "integer" in items:
                        _add(hooks, full, ("toArrayOfNumbers",))
                    elif length is not None and length >= 256:
                        _add(hooks, full, ("toArrayOfEmbeddings", 6))
                    else:
                        _add(hooks, full, ("toArrayOfDecimals",))
        elif isinstance(value, dict):
            _hooks_from_object_forms(value, hooks, full)


def _int_param(pattern: str, s: str, default: int) -> int:
    m = re.search(pattern, s)
    return int(m.group(1)) if m else default


def build_hooks(attributes: dict, auto_decrypt: bool = True) -> dict[str, list[tuple]]:
    """afterUnmap hooks per flattened attribute name, as (action, *params) tuples."""
    hooks: dict[str, list[tuple]] = {}
    _hooks_from_object_forms(attributes, hooks)
    for name, definition in flatten_definitions(attributes).items():
        if "$$" in name or name in hooks:
            continue
        d = definition if isinstance(definition, str) else ""
        dtype = definition.get("type") if isinstance(definition, dict) else None
        if "embedding" in d or dtype == "embedding":
            _add(hooks, name, ("toArrayOfEmbeddings", 6))
            continue
        if "array" in d or dtype == "array":
            items = None
            if isinstance(definition, dict) and truthy(definition.get("items")):
                items = definition["items"]
            elif "items:string" in d:
                items = "string"
            elif "items:number" in d:
                items = "number"
            if isinstance(items, str) and "string" in items:
                _add(hooks, name, ("toArray",))
            elif isinstance(items, str) and "number" in items:
                integer = "integer:true" in d or "|integer:" in d or "|integer" in d or "integer" in items
                length = None
                if isinstance(definition, dict) and is_number(definition.get("length")):
                    length = definition["length"]
                elif "length:" in d:
                    m = re.search(r"length:(\d+)", d)
                    if m:
                        length = int(m.group(1))
                if integer:
                    _add(hooks, name, ("toArrayOfNumbers",))
                elif length is not None and length >= 256:
                    _add(hooks, name, ("toArrayOfEmbeddings", 6))
                else:
                    _add(hooks, name, ("toArrayOfDecimals",))
            continue
        if "secret" in d or dtype == "secret":
            if auto_decrypt:
                _add(hooks, name, ("decrypt",))
            continue
        if "password" in d or dtype in ("password", "password:bcrypt", "password:argon2id"):
            continue
        if "ip4" in d or dtype == "ip4":
            _add(hooks, name, ("decodeIPv4",))
            continue
        if "ip6" in d or dtype == "ip6":
            _add(hooks, name, ("decodeIPv6",))
            continue
        if "buffer" in d or dtype == "buffer":
            _add(hooks, name, ("decodeBuffer",))
            continue
        if "bits" in d or dtype == "bits":
            m = re.search(r"bits:(\d+)", d)
            _add(hooks, name, ("decodeBits", int(m.group(1)) if m else None))
            continue
        if "money" in d or dtype == "money" or "crypto" in d or dtype == "crypto":
            decimals = 8 if ("crypto" in d or dtype == "crypto") else 2
            m = re.search(r"(?:money|crypto):(\d+)", d, re.IGNORECASE)
            _add(hooks, name, ("decodeMoney", int(m.group(1)) if m else decimals))
            continue
        if "decimal" in d or dtype == "decimal":
            _add(hooks, name, ("decodeDecimalFixed", _int_param(r"decimal:(\d+)", d, 2)))
            continue
        if d == "text" or d.startswith("text|") or dtype == "text":
            m = re.search(r"compress:(\w+)", d)
            disabled = False
            if m and m.group(1) != "true":
                v = m.group(1)
                if v in ("false", "0"):
                    disabled = True
                else:
                    digits = re.match(r"[+-]?\d+", v)  # parseInt
                    disabled = bool(digits) and int(digits.group(0)) == 0
            if not disabled:
                _add(hooks, name, ("decompressText",))
            continue
        if "geo:lat" in d or (dtype == "geo" and "lat" in d):
            _add(hooks, name, ("decodeGeoLatitude", _int_param(r"geo:lat:(\d+)", d, 6)))
            continue
        if "geo:lon" in d or (dtype == "geo" and "lon" in d):
            _add(hooks, name, ("decodeGeoLongitude", _int_param(r"geo:lon:(\d+)", d, 6)))
            continue
        if "geo:point" in d or dtype == "geo:point":
            _add(hooks, name, ("decodeGeoPointPair", _int_param(r"geo:point:(\d+)", d, 6)))
            continue
        if "number" in d or dtype == "number":
            integer = "integer:true" in d or "|integer:" in d or "|integer" in d
            _add(hooks, name, ("fromBase62",) if integer else ("fromBase62Decimal",))
            continue
        if "boolean" in d or "bool" in d or dtype in ("boolean", "bool"):
            _add(hooks, name, ("toBool",))
            continue
        if "json" in d or dtype == "json":
            _add(hooks, name, ("fromJSON",))
            continue
        if definition == "object" or "object" in d or dtype == "object":
            _add(hooks, name, ("fromJSON",))
            continue
    return hooks


def hook_function(action: tuple) -> Hook:
    name, *params = action
    if name == "decrypt":
        return act_decrypt
    if name == "toArray":
        return to_array
    if name == "fromJSON":
        return act_from_json
    if name == "toBool":
        return act_to_bool
    if name == "fromBase62":
        return act_from_base62
    if name == "fromBase62Decimal":
        return act_from_base62_decimal
    if name == "toArrayOfNumbers":
        return act_to_array_of_numbers
    if name == "toArrayOfDecimals":
        return act_to_array_of_decimals
    if name == "toArrayOfEmbeddings":
        return make_to_array_of_embeddings(params[0])
    if name == "decodeIPv4":
        return act_decode_ipv4
    if name == "decodeIPv6":
        return act_decode_ipv6
    if name == "decodeBuffer":
        return act_decode_buffer
    if name == "decodeBits":
        return make_decode_bits(params[0])
    if name == "decodeMoney":
        return make_decode_money(params[0])
    if name == "decodeDecimalFixed":
        return make_decode_decimal_fixed(params[0])
    if name == "decodeGeoLatitude":
        return make_decode_geo(params[0], 90.0)
    if name == "decodeGeoLongitude":
        return make_decode_geo(params[0], 180.0)
    if name == "decodeGeoPointPair":
        return make_decode_geo_point(params[0])
    if name == "decompressText":
        return act_decompress_text
    raise ValueError(f"unknown s3db.js action {name!r}")


# --- what the reader needs per attribute name ---------------------------------------------


def parse_loose(value: Any) -> Any:
    """Unmap step 2b for names without a mapper: '[object Object]' -> {}, JSON-looking
    strings ('{…', '[…') parsed when they parse, anything else unchanged."""
    if type(value) is str and value:
        if value == "[object Object]":
            return {}
        if value[0] in "{[":
            ok, parsed = try_json_parse(value)
            if ok:
                return parsed
    return value


def array_fallback(value: Any) -> Any:
    """Unmap step 2c ('array' definitions without a hook)."""
    if isinstance(value, list):
        return value
    if type(value) is str and js_trim(value).startswith("["):
        ok, arr = try_json_parse(value)
        return arr if ok and isinstance(arr, list) else value
    return to_array(value)


def _decode_plain(value: Any, ctx: DecodeContext) -> Any:
    # parse_loose inlined: most values are strings that do not start with '{' or '['.
    if type(value) is not str or not value or (value[0] not in "{[" and value != "[object Object]"):
        return value
    return parse_loose(value)


def make_decoder(mapper: Callable[[Any], Any] | None, fallback: bool, hooks: tuple) -> Hook:
    """Unmap steps 2a-2d for one name as a single function (value, ctx) -> decoded value.
    Only a mapper raises (JSError); hooks never do."""
    if mapper is None and not fallback:
        if not hooks:
            return _decode_plain
        if len(hooks) == 1:
            hook = hooks[0]

            def decode_one_hook(value: Any, ctx: DecodeContext) -> Any:
                # the same test as _decode_plain: parse_loose only changes such strings
                if type(value) is str and value and (value[0] in "{[" or value == "[object Object]"):
                    value = parse_loose(value)
                return hook(value, ctx)

            return decode_one_hook
    if mapper is not None and not fallback and not hooks:
        return lambda value, ctx: mapper(value)

    def decode(value: Any, ctx: DecodeContext) -> Any:
        parsed = mapper(value) if mapper is not None else parse_loose(value)  # step 2a / 2b
        if fallback:  # step 2c
            parsed = array_fallback(parsed)
        for hook in hooks:  # step 2d
            parsed = hook(parsed, ctx)
        return parsed

    return decode


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """Decoding recipe for one (flattened) attribute name; see record.unmap."""

    name: str
    definition: Any  # the attribute definition (str, dict, None when not an attribute)
    mapper: Callable[[Any], Any] | None  # only when there is no hook
    array_fallback: bool  # 'array' in a string definition without hook (step 2c)
    hooks: tuple  # afterUnmap decoders, applied in order
    actions: tuple  # the hook names, for introspection and tests
    # steps 2a-2d composed (make_decoder): what record.unmap calls
    decode: Hook = field(default=_decode_plain, compare=False, repr=False)


def make_codec(name: str, definition: Any, actions: list[tuple] | None) -> FieldCodec:
    has_hook = actions is not None  # s3db.js tests the hook list's existence, not its length
    is_str = isinstance(definition, str)
    mapper = mapper_for(definition) if (is_str and not has_hook) else None
    fallback = is_str and "array" in definition and not has_hook
    hooks = tuple(hook_function(a) for a in (actions or ()))
    return FieldCodec(
        name=name,
        definition=definition,
        mapper=mapper,
        array_fallback=fallback,
        hooks=hooks,
        actions=tuple(actions or ()),
        decode=make_decoder(mapper, fallback, hooks),
    )
