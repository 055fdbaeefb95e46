"""Helpers for engine tests: raw snapshots of a store, and a generated database."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import orjson

from backup_pipeline.store import RawObject, open_store

BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def base62(n: int) -> str:
    if n == 0:
        return "0"
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out


def snapshot(store, prefixes=("resource=",)) -> dict[str, tuple]:
    """key -> (metadata, content type, body) of every object under the prefixes, plus s3db.json."""
    out = {}
    db = store.read_database_json()
    for name in db["resources"]:
        for info in store.list_prefix(f"resource={name}/"):
            obj = store.get(info.key)
            out[info.key] = (obj.metadata, obj.content_type, obj.body)
    return out


ITEMS_DB_JSON = {
    "version": "1",
    "s3dbVersion": "21.6.2",
    "lastUpdated": "2026-11-24T00:00:00.000Z",
    "resources": {
        "items": {
            "currentVersion": "v1",
            "partitions": {"byColor": {"fields": {"color": "string"}}},
            "createdBy": "user",
            "versions": {
                "v1": {
                    "hash": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                    "attributes": {"name": "string", "n": "number|integer:true", "color": "string"},
                    "behavior": "user-managed",
                    "timestamps": False,
                    "partitions": {"byColor": {"fields": {"color": "string"}}},
                    "paranoid": True, "allNestedObjectsOptional": True, "autoDecrypt": True, "cache": False,
                    "idSize": 22, "idGenerator": "default", "createdAt": "2026-11-24T00:00:00.000Z",
                }
            },
            "schemaRegistry": {"nextIndex": 3, "mapping": {"name": 0, "n": 1, "color": 2}, "burned": []},
            "pluginSchemaRegistry": {},
        }
    },
}

COLORS = ["red", "green", "blue"]


def item_objects(start: int, stop: int):
    for i in range(start, stop):
        color = COLORS[i % 3]
        rid = f"item{i:07d}"
        yield RawObject(key=f"resource=items/data/id={rid}",
                        metadata={"0": f"item number {i}", "1": base62(i), "2": color, "_v": "v1"},
                        content_type="application/octet-stream", body=b"")
        yield RawObject(key=f"resource=items/partition=byColor/color={color}/id={rid}",
                        metadata={"_v": "v1"}, content_type="application/octet-stream", body=b"")


def make_items_db(path: Path, count: int):
    store = open_store(f"file://{path}", create=True)
    store.put(RawObject(key="s3db.json", metadata={}, content_type="application/json",
                        body=orjson.dumps(ITEMS_DB_JSON, option=orjson.OPT_INDENT_2)))
    store.put_many(item_objects(0, count))
    return store


def tamper_first_line(repo: Path, backup_id: str, resource: str, change) -> str:
    """Rewrite the first line of RESOURCE.jsonl.gz with `change(line)`, then make the manifest agree
    (sha256, bytes, lines), as a bad copy or a bad decoder would have left it. Returns the id."""
    data = repo / backup_id / f"{resource}.jsonl.gz"
    lines = gzip.decompress(data.read_bytes()).splitlines(keepends=True)
    line = orjson.loads(lines[0])
    change(line)
    lines[0] = orjson.dumps(line) + b"\n"
    body = gzip.compress(b"".join(lines))
    data.write_bytes(body)
    manifest_path = repo / backup_id / "s3db.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    manifest["resources"][resource].update(bytes=len(body), sha256=hashlib.sha256(body).hexdigest(), lines=len(lines))
    manifest_path.write_bytes(orjson.dumps(manifest))
    return line["id"]
