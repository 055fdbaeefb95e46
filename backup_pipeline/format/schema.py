"""One resource of `s3db.json`, prepared for decoding (SPEC §2, §4, §8 `_definitionHash`).

Built once per resource: short key -> attribute name tables (schema registry, legacy `map`,
plugin registry), the per-attribute codecs of §6.2, the partitions and both hashes. Decoding
200 000 records then costs dictionary look-ups only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from . import column_types
from ..errors import MetadataFileError, NotFound

DATABASE_JSON_VERSIONS = ("1",)  # the "version" of s3db.json this reader knows (SPEC §2)


def check_database_json(data, where: str) -> dict:
    """A parsed s3db.json, refused with a named error when it is not one this reader knows."""
    if not isinstance(data, dict) or not isinstance(data.get("resources", {}), dict):
        raise MetadataFileError(f"{where}: s3db.json has no 'resources' object")
    version = data.get("version", "1")
    if str(version) not in DATABASE_JSON_VERSIONS:
        raise MetadataFileError(f"{where}: s3db.json format version {version!r} is unknown (this reader knows "
                                f"{', '.join(DATABASE_JSON_VERSIONS)}); it was written by a newer s3db.js")
    return data
from ._js import entries_of, is_number, js_items, js_string, truthy
from .field_codecs import FieldCodec, build_hooks, flatten_definitions, make_codec
from .keys import locale_sort_key
from .numbers import BASE62_ALPHABET, decode_key, encode_key

BEHAVIORS = ("user-managed", "enforce-limits", "truncate-data", "body-overflow", "body-only")
TIMESTAMP_ATTRIBUTES = ("createdAt", "updatedAt")


def stable_json(obj: Any) -> str:
    """json-stable-stringify: sorted keys, no whitespace, non-ASCII unescaped (SPEC §2.2)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(stable_json(obj).encode("utf-8")).hexdigest()


def version_hash(version_entry: dict) -> str:
    """The `hash` of a version entry of s3db.json (SPEC §2.2)."""
    attributes = dict(version_entry.get("attributes") or {})
    if version_entry.get("timestamps"):
        for attr in TIMESTAMP_ATTRIBUTES:
            attributes.pop(attr, None)
    return _sha256(
        {
            "attributes": attributes,
            "behavior": version_entry.get("behavior") or "user-managed",
            "partitions": version_entry.get("partitions") or {},
        }
    )


def js_ordered(value: Any) -> Any:
    """Re-key dicts the way JSON.parse builds JS objects (integer-like keys first)."""
    if isinstance(value, dict):
        return {k: js_ordered(v) for k, v in js_items(value)}
    if isinstance(value, list):
        return [js_ordered(v) for v in value]
    return value


def js_invert(obj: Any) -> dict:
    """lodash `invert`: value (as a property key) -> key; later duplicates win."""
    if not isinstance(obj, (dict, list, str)):
        return {}
    return {js_string(v): k for k, v in entries_of(obj)}


def _schema_keys(attributes: dict) -> list[str]:
    """Leaf paths then object paths, deduplicated (SPEC §4.2)."""
    leaves = [k for k in flatten_definitions(attributes) if "$$" not in k]

    objects: list[str] = []

    def rec(obj: dict, prefix: str) -> None:
        for k, v in js_items(obj):
            if k.startswith("$$"):
                continue
            full = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                objects.append(full)
                if v.get("$$type") == "object":
                    rec(v, full)

    rec(attributes, "")
    return list(dict.fromkeys(leaves + objects))


def get_attribute_definition(attributes: dict, key: str) -> Any:
    """Walk the attribute tree by '.', like Schema.getAttributeDefinition (None = absent)."""
    d: Any = attributes
    for part in key.split("."):
        if not truthy(d):
            return None
        if isinstance(d, dict):
            d = d.get(part)
        elif isinstance(d, str):  # JS reads properties of strings too ("x.length", "x.0")
            if part == "length":
                d = len(d)
            elif part.isdigit() and part.isascii() and int(part) < len(d):
                d = d[int(part)]
            else:
                return None
        else:
            return None
    return d


def _plugin_hash_key(plugin: str, attribute: str) -> str:
    n = int.from_bytes(hashlib.sha256(f"{plugin}:{attribute}".encode()).digest()[:4], "big")
    s = ""
    while n:
        s = BASE62_ALPHABET[n % 62] + s
        n //= 62
    return "p" + (s or "0").rjust(3, "0")[:3].lower()


def _registry_mapping(keys: list[str], registry: dict) -> dict[str, str]:
    """generateMappingFromRegistry: keep registered indices, new keys get nextIndex, …"""
    mapping_in = registry.get("mapping") or {}
    burned = registry.get("burned") or []
    used = [v for v in mapping_in.values() if is_number(v)]
    used += [b.get("index") for b in burned if isinstance(b, dict) and is_number(b.get("index"))]
    next_index = registry.get("nextIndex") or 0
    next_index = max([next_index, *(int(u) + 1 for u in used)]) if used else next_index
    out: dict[str, str] = {}
    for key in keys:
        if key in mapping_in:  # a JSON null gives the key "undefined", as in JS
            out[key] = encode_key(mapping_in[key])
        else:
            out[key] = encode_key(next_index)
            next_index += 1
    return out


@dataclass
class ResourceSchema:
    """Everything needed to decode the objects of one resource (current version)."""

    name: str
    version: str  # current version id, e.g. "v2"
    attributes: dict  # current attributes incl. createdAt/updatedAt when timestamps
    behavior: str
    timestamps: bool
    partitions: dict  # name -> {"fields": {path: rule}}
    attribute_to_key: dict  # attribute path -> short key
    key_to_attribute: dict  # short key -> attribute path (reversedMap)
    plugin_attribute_to_key: dict
    key_to_plugin_attribute: dict
    plugin_attribute_names: frozenset
    hooks: dict  # attribute path -> list of afterUnmap actions (tuples)
    definition_hash: str  # what get() returns as _definitionHash (SPEC §8)
    version_hash: str  # the `hash` of the version entry (SPEC §2.2)
    auto_decrypt: bool = True
    _codecs: dict = field(default_factory=dict, repr=False)
    # record.unmap's decoding plans, one per distinct key layout of the input (see there)
    _unmap_plans: dict = field(default_factory=dict, repr=False, compare=False)
    _typed_fields: list | None = field(default=None, repr=False, compare=False)
    _declared_fields: frozenset | None = field(default=None, repr=False, compare=False)

    @property
    def declared_fields(self) -> frozenset:
        """The top-level names a decoded record's fields are declared under (attributes and
        plugin attributes); other names (s3db.js artefacts, fields of older versions) are not."""
        if self._declared_fields is None:
            self._declared_fields = frozenset(a.split(".", 1)[0]
                                              for a in (*self.attributes, *self.plugin_attribute_names))
        return self._declared_fields

    @property
    def typed_fields(self) -> list:
        """The attributes whose values must fit a column type (column_types.typed_fields)."""
        if self._typed_fields is None:
            self._typed_fields = column_types.typed_fields(self.attributes)
        return self._typed_fields

    @classmethod
    def from_database_json(cls, name: str, db_json: dict) -> "ResourceSchema":
        resources = db_json.get("resources") if isinstance(db_json, dict) else None
        if not isinstance(resources, dict):
            raise MetadataFileError("s3db.json has no 'resources' object")
        res = resources.get(name)
        if not isinstance(res, dict):
            raise NotFound(f"resource {name!r} is not defined in s3db.json")
        return cls.from_resource_entry(name, res)

    @classmethod
    def from_resource_entry(cls, name: str, res: dict) -> "ResourceSchema":
        version = res.get("currentVersion") or "v1"
        vdata = (res.get("versions") or {}).get(version)
        if not isinstance(vdata, dict):
            raise MetadataFileError(f"resource {name!r}: version {version!r} missing in s3db.json")
        attributes = js_ordered(vdata.get("attributes") or {})
        behavior = vdata.get("behavior") or "user-managed"
        timestamps = bool(vdata.get("timestamps", False))
        partitions = res.get("partitions")
        if partitions is None:
            partitions = vdata.get("partitions") or {}
        partitions = _normalize_partitions(partitions, attributes)
        if timestamps:  # Resource.applyConfiguration
            for attr in TIMESTAMP_ATTRIBUTES:
                if not truthy(attributes.get(attr)):
                    attributes[attr] = "datetime|optional"
            partitions.setdefault("byCreatedDate", {"fields": {"createdAt": "date|maxlength:10"}})
            partitions.setdefault("byUpdatedDate", {"fields": {"updatedAt": "date|maxlength:10"}})
        auto_decrypt = truthy(vdata.get("autoDecrypt", True))

        # user vs plugin attributes (SPEC §4.3)
        user_keys: list[str] = []
        plugin_attrs: list[tuple[str, str]] = []
        for key in _schema_keys(attributes):
            d = get_attribute_definition(attributes, key)
            if isinstance(d, dict) and truthy(d.get("__plugin__")):
                plugin_attrs.append((key, d["__plugin__"]))
            else:
                user_keys.append(key)

        legacy_map = vdata.get("map") or {}
        registry = res.get("schemaRegistry")
        if isinstance(legacy_map, dict) and legacy_map:  # SPEC §4.4: legacy map wins
            attr_to_key = {k: str(v) for k, v in legacy_map.items()}
            key_to_attr = js_invert(attr_to_key)
            if isinstance(registry, dict):
                merged = dict(registry)
                merged["mapping"] = dict(registry.get("mapping") or {})
                for attr, enc in legacy_map.items():
                    merged["mapping"].setdefault(attr, decode_key(str(enc)))
                extra = _registry_mapping(user_keys, merged)
                for key in user_keys:
                    if key not in attr_to_key and key in extra:
                        attr_to_key[key] = extra[key]
                        key_to_attr[extra[key]] = key
        elif isinstance(registry, dict):
            attr_to_key = _registry_mapping(user_keys, registry)
            key_to_attr = {v: k for k, v in attr_to_key.items()}
        else:
            attr_to_key = {k: encode_key(i) for i, k in enumerate(user_keys)}
            key_to_attr = {v: k for k, v in attr_to_key.items()}

        plugin_to_key = _plugin_mapping(plugin_attrs, res.get("pluginSchemaRegistry"))
        key_to_plugin = {v: k for k, v in plugin_to_key.items()}

        schema = cls(
            name=name,
            version=version,
            attributes=attributes,
            behavior=behavior,
            timestamps=timestamps,
            partitions=partitions,
            attribute_to_key=attr_to_key,
            key_to_attribute=key_to_attr,
            plugin_attribute_to_key=plugin_to_key,
            key_to_plugin_attribute=key_to_plugin,
            plugin_attribute_names=frozenset(a for a, _ in plugin_attrs),
            hooks=build_hooks(attributes, auto_decrypt),
            definition_hash=_sha256({"attributes": attributes, "behavior": behavior}),
            version_hash=version_hash(vdata),
            auto_decrypt=auto_decrypt,
        )
        schema._precompute()
        return schema

    # -- per-name look-ups, cached ------------------------------------------------------------

    def _precompute(self) -> None:
        """Codecs for every known name up front; unknown (unmapped) names are added lazily."""
        names = set(_schema_keys(self.attributes)) | set(self.hooks) | set(self.key_to_attribute.values())
        for name in names:
            self.codec(name)

    def __getstate__(self) -> dict:  # picklable for process pools: codecs hold closures
        state = dict(self.__dict__)
        state["_codecs"] = {}
        state["_unmap_plans"] = {}
        state["_typed_fields"] = None  # checkers are closures too: rebuilt where used
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._precompute()

    def codec(self, name: str) -> FieldCodec:
        c = self._codecs.get(name)
        if c is None:
            c = make_codec(name, get_attribute_definition(self.attributes, name), self.hooks.get(name))
            if len(self._codecs) < 100_000:  # unmapped keys are unbounded in theory
                self._codecs[name] = c
        return c

    @property
    def data_prefix(self) -> str:
        return f"resource={self.name}/data"

    def partition_fields(self, partition: str) -> list[tuple[str, Any]]:
        """Fields of a partition sorted like `localeCompare` (SPEC §10)."""
        fields = (self.partitions.get(partition) or {}).get("fields") or {}
        return sorted(js_items(fields), key=lambda kv: locale_sort_key(kv[0]))


def _normalize_partitions(partitions: Any, attributes: dict) -> dict:
    """`partitions: ['status']` shorthand -> {byStatus: {fields: {status: <base type>}}}."""
    if isinstance(partitions, dict):
        return js_ordered(partitions)
    out: dict = {}
    if isinstance(partitions, list):
        for f in partitions:
            if not isinstance(f, str) or not f:
                continue
            d = attributes.get(f)
            t = "string"
            if isinstance(d, str):
                t = d.split("|")[0].strip()
            elif isinstance(d, dict) and d.get("type"):
                t = d["type"]
            out[f"by{f[0].upper()}{f[1:]}"] = {"fields": {f: t}}
    return out


def _plugin_mapping(plugin_attrs: list[tuple[str, str]], registries: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    if isinstance(registries, dict):
        for reg in registries.values():
            if isinstance(reg, dict):
                used.update(v for v in (reg.get("mapping") or {}).values() if isinstance(v, str))
                used.update(b.get("key") for b in (reg.get("burned") or []) if isinstance(b, dict))
    for attr, plugin in plugin_attrs:
        reg = registries.get(plugin) if isinstance(registries, dict) else None
        existing = ((reg or {}).get("mapping") or {}).get(attr)
        if existing:
            out[attr] = existing
            continue
        base = _plugin_hash_key(plugin, attr)
        key, counter = base, 1
        while key in used:
            key, counter = f"{base}{counter}", counter + 1
        used.add(key)
        out[attr] = key
    return out


