"""Decoding one data object into the record s3db.js `get()`/`list()` returns (SPEC §7, §8, §11).

`decode_record(..., mode="exact")` follows s3db.js 21.6.2 step by step, including the
second decoding pass of §11 and the corruptions it causes. `mode="clean"` is the recommended
reader of §11: no second pass, body entries decoded once. Both return JSON-ready dicts
(`to_json_compatible` already applied) whose key order is the one JSON.stringify would print.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import DecodeError
from .raw import RawObject
from ._js import (
    MAX_SAFE,
    PROTO_NAMES,
    UNDEFINED,
    JSError,
    entries_of,
    is_index_key,
    js_keys,
    js_trim,
    number_to_string,
    spread,
    truthy,
    try_json_parse,
)
from .field_codecs import DecodeContext
from .keys import record_id_from_key
from .schema import ResourceSchema, js_invert
from .transport import decode_metadata, decode_metadata_value, utf8_decode

MODES = ("exact", "clean")

# Fields get() sets on every record (SPEC §8), in the order it sets them.
SYSTEM_FIELDS = (
    "_contentLength", "_lastModified", "_hasContent", "_mimeType", "_etag", "_v",
    "_versionId", "_expiresAt", "_definitionHash", "_originalVersion", "_versionMapped",
)

_MISSING = object()
_EMPTY: dict = {}  # read-only


@dataclass(frozen=True, slots=True)
class _BodyJSON:
    nonblank: bool  # body.trim() !== ''
    ok: bool  # JSON.parse succeeded
    value: Any


# What composing sees for an empty body. Shared: nothing writes into a body's value.
_NO_BODY = _BodyJSON(nonblank=False, ok=True, value={})


class UnmapError(Exception):
    """s3db.js's unmapper() would throw; `field` names the attribute (or stored key)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


# --- unmap (Schema.unmapper) -----------------------------------------------------------------


def unmap(
    schema: ResourceSchema,
    obj: Any,
    ctx: DecodeContext,
    *,
    map_override: Any = _MISSING,
    plugin_override: Any = _MISSING,
) -> dict:
    """Short keys -> names, per-type decoding, unflatten (SPEC §11 step 2)."""
    if (
        type(obj) is dict
        and (map_override is _MISSING or not truthy(map_override))
        and (plugin_override is _MISSING or not truthy(plugin_override))
    ):
        # The schema's own maps: everything but the values depends on the key layout alone,
        # and the records of a resource nearly all share one layout.
        plan = _unmap_plan(schema, tuple(obj))
        if plan is not None:
            return _run_plan(plan, obj, ctx)
    return _unmap_generic(schema, obj, ctx, map_override, plugin_override)


def _unmap_generic(
    schema: ResourceSchema, obj: Any, ctx: DecodeContext, map_override: Any, plugin_override: Any
) -> dict:
    try:
        entries = entries_of(obj)
    except JSError as exc:
        raise UnmapError("(record)", str(exc)) from None
    rev_map = (
        js_invert(map_override)
        if map_override is not _MISSING and truthy(map_override)
        else schema.key_to_attribute
    )
    rev_plugin = (
        js_invert(plugin_override)
        if plugin_override is not _MISSING and truthy(plugin_override)
        else schema.key_to_plugin_attribute
    )
    rest: dict = {}
    for key, value in entries:
        if key == "_v":
            continue
        if key in PROTO_NAMES:
            # JS finds Object.prototype members in its plain-object maps and throws.
            raise UnmapError(key, "key collides with a JavaScript Object.prototype member")
        name = rev_plugin.get(key) or rev_map.get(key) or key
        if name in PROTO_NAMES and name not in schema.hooks:
            raise UnmapError(name, "attribute name collides with a JavaScript Object.prototype member")
        try:
            rest[name] = schema.codec(name).decode(value, ctx)  # steps 2a-2d
        except JSError as exc:  # only a mapper (step 2a) raises
            raise UnmapError(name, f"stored value {value!r} (key {key!r}) does not decode: {exc}") from None
    result = unflatten(rest)
    for key, value in entries:  # unmapper copies `$`-keys through untouched
        if key.startswith("$"):
            result[key] = value
    return result


@dataclass(frozen=True, slots=True)
class _UnmapPlan:
    """What _unmap_generic does for one key layout with the schema's maps, minus the values."""

    steps: tuple  # (key, name, decode) in JS key order, `_v` left out
    dotted: bool  # a name contains '.': unflatten has work to do
    nesting: tuple | None  # (name, parent, child) per name when unflatten is simple (below)
    dollar_keys: tuple  # `$`-keys, copied through untouched after unflatten


_MAX_PLANS = 512  # per schema; layouts beyond that are decoded the generic way


def _unmap_plan(schema: ResourceSchema, keys: tuple) -> _UnmapPlan | None:
    plans = schema._unmap_plans
    plan = plans.get(keys, _MISSING)
    if plan is _MISSING:
        plan = _build_plan(schema, keys)
        if len(plans) < _MAX_PLANS:
            plans[keys] = plan
    return plan


def _build_plan(schema: ResourceSchema, keys: tuple) -> _UnmapPlan | None:
    """None when unmapping these keys throws: the generic path then raises at the same entry."""
    rev_map, rev_plugin = schema.key_to_attribute, schema.key_to_plugin_attribute
    ordered = js_keys(keys)
    steps = []
    for key in ordered:
        if key == "_v":
            continue
        if key in PROTO_NAMES:
            return None
        name = rev_plugin.get(key) or rev_map.get(key) or key
        if name in PROTO_NAMES and name not in schema.hooks:
            return None
        steps.append((key, name, schema.codec(name).decode))
    names = list(dict.fromkeys(name for _, name, _ in steps))  # the decoded dict's key order
    return _UnmapPlan(
        steps=tuple(steps),
        dotted=any("." in name for name in names),
        nesting=_simple_nesting(names),
        dollar_keys=tuple(k for k in ordered if k.startswith("$")),
    )


def _simple_nesting(names: list) -> tuple | None:
    """(name, parent, child) for each name (parent None for plain names) when unflatten's
    work is simple: every dotted name is 'parent.child' with a non-numeric child (an object,
    not an array), no parent is also a plain name and no segment is a prototype name. With no
    index-like name, unflatten's JS key order is the insertion order too. None otherwise."""
    if not any("." in name for name in names) or any(is_index_key(name) for name in names):
        return None
    nesting = []
    for name in names:
        parts = name.split(".")
        if len(parts) == 1:
            nesting.append((name, None, None))
            continue
        if len(parts) != 2 or not PROTO_NAMES.isdisjoint(parts) or parts[0] in names:
            return None
        if parts[1].isdigit() and parts[1].isascii():
            return None
        nesting.append((name, parts[0], parts[1]))
    return tuple(nesting)


def _run_plan(plan: _UnmapPlan, obj: dict, ctx: DecodeContext, stored: bool = False) -> dict:
    """`stored`: `obj` is the raw user metadata, so decode_metadata is done here on the way."""
    rest: dict = {}
    try:
        for key, name, decode in plan.steps:
            value = obj[key]
            # decode_metadata's test: anything but a plain string goes through the transport
            if stored and not (
                type(value) is str and value[1:2] != ":" and value != "null"
                and value != "undefined" and not value.startswith("z85:")
            ):
                value = decode_metadata_value(value)
            rest[name] = decode(value, ctx)
    except JSError as exc:  # only a mapper (step 2a) raises
        raise UnmapError(name, f"stored value {value!r} (key {key!r}) does not decode: {exc}") from None
    if plan.nesting is not None:
        # unflatten for the simple layouts: each parent object is made at its first child
        result: dict = {}
        for name, parent, child in plan.nesting:
            if parent is None:
                result[name] = rest[name]
            else:
                inner = result.get(parent)
                if inner is None:
                    inner = result[parent] = {}
                inner[child] = rest[name]
    elif plan.dotted:
        result = unflatten(rest)
    else:
        result = rest  # ours: unflatten would only copy it
    for key in plan.dollar_keys:
        result[key] = decode_metadata_value(obj[key]) if stored else obj[key]
    return result


def _get(container: Any, part: str) -> Any:
    if isinstance(container, dict):
        return container.get(part, UNDEFINED)
    if isinstance(container, list):
        if is_index_key(part):
            i = int(part)
            return container[i] if i < len(container) else UNDEFINED
        return len(container) if part == "length" else UNDEFINED
    return UNDEFINED


def _set(container: Any, part: str, value: Any, field: str) -> None:
    if isinstance(container, dict):
        container[part] = value
    elif isinstance(container, list):
        if is_index_key(part):
            i = int(part)
            if i >= len(container):
                if i - len(container) > 1_000_000:
                    raise UnmapError(field, "array index too large")
                container.extend([UNDEFINED] * (i + 1 - len(container)))  # holes
            container[i] = value
        # other properties of arrays are invisible to JSON.stringify
    else:
        raise UnmapError(field, f"Cannot create property {part!r} on a {type(container).__name__}")


def unflatten(flat: dict) -> dict:
    """s3db.js `unflatten`: 'a.b' -> nested objects; an all-digit next segment makes an array.

    Containers that came from the input are copied before being written into, so decoding
    never mutates a caller's values (JS works on a deep clone)."""
    if not any("." in k for k in flat):
        return dict(flat)
    result: dict = {}
    owned = {id(result)}
    for key in js_keys(flat):
        value = flat[key]
        if "." not in key:
            result[key] = value
            continue
        parts = key.split(".")
        if not PROTO_NAMES.isdisjoint(parts):
            raise UnmapError(key, "path segment collides with a JavaScript Object.prototype member")
        cur: Any = result
        for i in range(len(parts) - 1):
            part = parts[i]
            nxt = cur.get(part, UNDEFINED) if type(cur) is dict else _get(cur, part)
            if type(nxt) is dict and id(nxt) in owned:
                pass  # made or copied for an earlier key: write into it (what the branches below do)
            elif truthy(nxt):
                if isinstance(nxt, (dict, list)) and id(nxt) not in owned:
                    nxt = dict(nxt) if isinstance(nxt, dict) else list(nxt)
                    owned.add(id(nxt))
                    _set(cur, part, nxt, key)
            else:
                following = parts[i + 1]
                nxt = [] if (following.isdigit() and following.isascii()) else {}
                owned.add(id(nxt))
                _set(cur, part, nxt, key)
            if not isinstance(nxt, (dict, list)):
                raise UnmapError(key, f"Cannot create property on {type(nxt).__name__} value of {part!r}")
            cur = nxt
        _set(cur, parts[-1], value, key)
    return result


# --- helpers for composing the result --------------------------------------------------------


def _fix_value(v: Any) -> Any:
    """Top-level string fix-up of SPEC §11 step 5."""
    if type(v) is str and v:
        if v == "[object Object]":
            return {}
        if v[0] in "{[":
            ok, parsed = try_json_parse(v)
            return parsed if ok else v
    return v


def _fixed(d: dict) -> dict:
    return {k: _fix_value(v) for k, v in d.items()}


def _public(schema: ResourceSchema, d: dict, keep: frozenset = frozenset()) -> dict:
    """`_fixed` then the filter of internal `_`-keys, in one pass."""
    plugin_names = schema.plugin_attribute_names
    out: dict = {}
    for k, v in d.items():
        if (
            k.startswith("_")
            and k != "_geohash"
            and not k.startswith("_geohash_zoom")
            and k not in plugin_names
            and k not in keep
        ):
            continue
        # _fix_value changes only non-empty strings starting with '{'/'[' or '[object Object]'
        if type(v) is str and v and (v[0] in "{[" or v == "[object Object]"):
            v = _fix_value(v)
        out[k] = v
    return out


def _json_from(value: Any) -> tuple[bool, Any]:
    """`_map`/`_pluginmap` as composeFullObjectFromWrite reads them from the merged metadata."""
    if type(value) is str:
        return try_json_parse(value)
    return True, value


def _body_only_maps(schema: ResourceSchema, h: dict) -> tuple[Any, Any]:
    map_from_meta: Any = schema.attribute_to_key
    if truthy(h.get("_map")):
        ok, parsed = _json_from(h["_map"])
        map_from_meta = parsed if ok else schema.attribute_to_key
    return map_from_meta, _plugin_map_from(h)


def _plugin_map_from(h: dict) -> Any:
    if truthy(h.get("_pluginmap")):
        ok, parsed = _json_from(h["_pluginmap"])
        if ok and truthy(parsed):
            return parsed
    return _MISSING


# --- the reader --------------------------------------------------------------------------------


def decode_record(
    schema: ResourceSchema,
    obj: RawObject,
    *,
    passphrase: str | None = None,
    mode: str = "exact",
) -> dict:
    """Decode one `resource=<R>/data/id=<ID>` object.

    Returns the JSON-ready record (to_json_compatible already applied): the user fields in
    s3db.js order, `id`, then the system fields of SPEC §8. `passphrase=None` leaves secret
    fields as stored (ciphertext). Raises DecodeError where s3db.js's get() would throw.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    rid = record_id_from_key(obj.key)
    if rid is None:
        raise DecodeError(schema.name, obj.key, "id", "the key has no 'id=' segment")

    ctx = DecodeContext(passphrase)
    stored = obj.metadata
    plan = _unmap_plan(schema, tuple(stored)) if type(stored) is dict else None
    try:
        if plan is not None:  # §11 steps 1 and 2 (pass 1) in one go
            p1 = _run_plan(plan, stored, ctx, stored=True)
        else:  # decode_metadata never throws, so doing it first changes no outcome
            p1 = unmap(schema, decode_metadata(stored), ctx)
    except UnmapError as exc:
        raise DecodeError(schema.name, rid, exc.field, exc.reason) from None

    body = utf8_decode(obj.body) if obj.body else ""
    body_ok, body_value = False, None
    nonblank = bool(body) and js_trim(body) != ""
    if nonblank:
        body_ok, body_value = try_json_parse(body)

    behavior = schema.behavior
    if behavior == "user-managed":  # §11 step 3: behaviour handleGet
        h = {**spread(body_value), **p1} if body_ok else p1
    elif behavior in ("body-overflow", "body-only"):
        h = {**(spread(body_value) if body_ok else {}), **p1}
        if behavior == "body-overflow":
            h.pop("$overflow", None)
    else:
        h = p1

    object_version = _object_version(schema, decode_metadata_value(stored.get("_v")))
    # composeFullObjectFromWrite parses the body again (`body ? JSON.parse(body) : {}` for
    # body-only, JSON.parse of a non-blank body otherwise); reuse the parse from above.
    body_json = _BodyJSON(nonblank=nonblank, ok=body_ok, value=body_value) if body else _NO_BODY
    if mode == "exact":
        data = _compose_exact(schema, rid, h, body_json, ctx)
    else:
        data = _compose_clean(schema, rid, p1, h, body_json, ctx, obj, object_version)
    return to_json_compatible(_add_system_fields(schema, obj, object_version, data))


def _compose_exact(schema: ResourceSchema, rid: str, h: dict, body: _BodyJSON, ctx: DecodeContext) -> dict:
    """composeFullObjectFromWrite, including pass 2 (§11 steps 4-5)."""
    ctx.second_pass = True
    try:
        u = unmap(schema, h, ctx)
    except UnmapError:
        u = h  # a throwing pass 2 falls back to the merged pass-1 values
    ctx.second_pass = False
    behavior = schema.behavior

    if behavior == "body-overflow":
        # handleGet already dropped `$overflow`, so the body is never unmapped here.
        return _public(schema, {**u, "id": rid})

    if behavior == "body-only":
        map_from_meta, plugin_from_meta = _body_only_maps(schema, h)
        try:
            b = unmap(
                schema, body.value if body.ok else UNDEFINED, ctx,
                map_override=map_from_meta, plugin_override=plugin_from_meta,
            )
        except UnmapError:
            b = {}
        if any(not k.startswith("_") and k != "id" for k in b):
            return _fixed({**b, "id": rid})  # metadata ignored, `_` leftovers not filtered
        return _public(schema, {**u, **b, "id": rid})

    if behavior == "user-managed" and body.nonblank and body.ok:
        try:
            b = unmap(schema, body.value, ctx, plugin_override=_plugin_map_from(h))
        except UnmapError:
            b = {}
        return _public(schema, {**b, **u, "id": rid})

    result = _public(schema, {**u, "id": rid})
    return _with_flags(result, h)


def _with_flags(result: dict, h: dict) -> dict:
    if h.get("$truncated") == "true":
        result["$truncated"] = "true"
    if h.get("$overflow") == "true":
        result["$overflow"] = "true"
    return result


def _compose_clean(
    schema: ResourceSchema,
    rid: str,
    p1: dict,
    h: dict,
    body: _BodyJSON,
    ctx: DecodeContext,
    obj: RawObject,
    object_version: Any,
) -> dict:
    """The recommended reader of §11: pass 1 only, body entries decoded once."""
    behavior = schema.behavior
    if behavior == "body-only":
        map_from_meta, plugin_from_meta = _body_only_maps(schema, h)
        try:
            b = unmap(
                schema, body.value if body.ok else {}, ctx,
                map_override=map_from_meta, plugin_override=plugin_from_meta,
            )
        except UnmapError as exc:
            raise DecodeError(schema.name, rid, exc.field, exc.reason) from None
        if any(not k.startswith("_") and k != "id" for k in b):
            # Same layout as s3db.js; leftovers that get() overwrites keep their position.
            system_fields = _system_field_names(schema, obj, object_version)
            return _public(schema, {**b, "id": rid}, system_fields)
        return _public(schema, {**p1, **b, "id": rid})

    if behavior in ("user-managed", "body-overflow") and body.nonblank and body.ok:
        plugin_override = _plugin_map_from(h)
        rev_plugin = (
            js_invert(plugin_override) if plugin_override is not _MISSING else schema.key_to_plugin_attribute
        )
        short: dict = {}
        other: dict = {}
        for k, v in entries_of(body.value) if body.value is not None else []:
            if rev_plugin.get(k) or schema.key_to_attribute.get(k):
                short[k] = v  # a stored (encoded) entry: decode it
            else:
                other[k] = v  # written under its attribute name: already decoded
        try:
            decoded = unmap(schema, short, ctx, plugin_override=plugin_override) if short else {}
        except UnmapError as exc:
            raise DecodeError(schema.name, rid, exc.field, exc.reason) from None
        return _public(schema, {**decoded, **other, **p1, "id": rid})

    return _with_flags(_public(schema, {**p1, "id": rid}), h)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if dt.tzinfo is not timezone.utc:  # astimezone(utc) of a UTC datetime changes nothing
        dt = dt.astimezone(timezone.utc)
    if dt.year >= 1000:
        # the same text as strftime below (which does not pad years < 1000), in half the time;
        # a UTC datetime's isoformat ends in "+00:00"
        return dt.isoformat(timespec="milliseconds")[:-6] + "Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _object_version(schema: ResourceSchema, raw_version: Any) -> Any:
    """The object's `_v` (transport-decoded) without its leading 'v' (the resource version
    when missing)."""
    if not truthy(raw_version):
        raw_version = schema.version
    return raw_version[1:] if type(raw_version) is str and raw_version.startswith("v") else raw_version


def _system_field_names(schema: ResourceSchema, obj: RawObject, object_version: Any) -> frozenset:
    extra = obj.extra or {}
    names = {"_contentLength", "_lastModified", "_hasContent", "_mimeType", "_etag", "_v", "_definitionHash"}
    if truthy(extra.get("version_id")):
        names.add("_versionId")
    if truthy(extra.get("expiration")):
        names.add("_expiresAt")
    if object_version != schema.version:
        names |= {"_originalVersion", "_versionMapped"}
    return frozenset(names)


def _add_system_fields(schema: ResourceSchema, obj: RawObject, object_version: Any, data: dict) -> dict:
    """What get() adds after composing (SPEC §8), in its order."""
    length = len(obj.body)
    extra = obj.extra or _EMPTY
    data["_contentLength"] = length
    data["_lastModified"] = obj.last_modified if obj.last_modified is not None else UNDEFINED
    data["_hasContent"] = length > 0
    data["_mimeType"] = obj.content_type or None
    data["_etag"] = obj.etag or UNDEFINED
    data["_v"] = object_version
    if truthy(extra.get("version_id")):
        data["_versionId"] = extra["version_id"]
    if truthy(extra.get("expiration")):
        data["_expiresAt"] = extra["expiration"]
    data["_definitionHash"] = schema.definition_hash
    if object_version != schema.version:  # always true for "v<n>" objects: see SPEC §8
        # `data` is the composer's fresh dict: updating "_v" in place keeps its position,
        # as the copy `{**data, "_v": …}` did
        data["_v"] = schema.version
        data["_originalVersion"] = object_version
        data["_versionMapped"] = True
    return data


# --- JSON conversion ---------------------------------------------------------------------------


def to_json_compatible(value: Any) -> Any:
    """Convert a decoded value the way the fixtures' JSON conversion does: JS key order,
    undefined omitted (null inside arrays), NaN/±Infinity -> None, datetimes -> ISO strings
    with milliseconds and Z, bytes -> {"$base64": …}, integral floats -> int (with the digits
    JS would print), so json/orjson output matches JSON.stringify for every fixture value."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value
    if t is float:
        if value != value or value in (math.inf, -math.inf):
            return None
        if value.is_integer():
            if -MAX_SAFE <= value <= MAX_SAFE:
                return int(value)
            if abs(value) < 1e21:  # the digits JS prints (2**60 -> 1152921504606847000)
                return int(number_to_string(value))
        return value
    # Containers inline the two commonest cases of this function for their items, without
    # the call: JSON-ready scalars, and floats in the safe integer range (finite, not NaN).
    if t is dict:
        out = {}
        for k in js_keys(value):
            v = value[k]
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                out[k] = v
            elif tv is float and -MAX_SAFE <= v <= MAX_SAFE:
                out[k] = int(v) if v.is_integer() else v
            elif v is not UNDEFINED and not callable(v):
                out[k] = to_json_compatible(v)
        return out
    if t is list or t is tuple:
        items = []
        for v in value:
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                items.append(v)
            elif tv is float and -MAX_SAFE <= v <= MAX_SAFE:
                items.append(int(v) if v.is_integer() else v)
            else:
                items.append(None if v is UNDEFINED else to_json_compatible(v))
        return items
    if value is UNDEFINED:
        return None
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return to_json_compatible(dict(value))
    return value
