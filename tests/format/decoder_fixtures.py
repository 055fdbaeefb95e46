"""Loading the s3db.js fixtures (vendor/s3db-format/fixtures) as RawObjects.

The fixture root is the vendored copy of ../shared/s3db-format; the environment variable
S3DB_FORMAT_DIR points elsewhere.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from backup_pipeline.format.raw import RawObject

REPO = Path(__file__).resolve().parents[2]
FORMAT_DIR = Path(os.environ.get("S3DB_FORMAT_DIR") or (REPO / "vendor" / "s3db-format")).resolve()
FIXTURES = FORMAT_DIR / "fixtures"
PASSPHRASE = "fixture-passphrase-2024"
BACKENDS = ("fs", "s3")


def parse_time(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


@dataclass(frozen=True)
class Backend:
    name: str
    objects: dict  # key -> RawObject, in the backend's own order
    db_json: dict
    expected: dict  # resource -> list of records (list order)
    partitions: dict  # parsed _partitions.json


def _load_fs() -> tuple[dict, dict]:
    root = FIXTURES / "fs-db"
    objects: dict[str, RawObject] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.endswith(".meta.json"):
            continue
        sidecar_path = path.with_name(path.name + ".meta.json")
        if not sidecar_path.exists():  # the filesystem client skips files without sidecar
            continue
        sidecar = json.loads(sidecar_path.read_text("utf-8"))
        body = path.read_bytes()
        if sidecar.get("compressed"):
            body = gzip.decompress(body)
        key = path.relative_to(root).as_posix()
        objects[key] = RawObject(
            key=key,
            metadata=sidecar.get("metadata") or {},
            content_type=sidecar.get("contentType"),
            body=body,
            etag='"' + sidecar["etag"] + '"' if sidecar.get("etag") else "",
            last_modified=parse_time(sidecar.get("lastModified")),
            extra={"sidecar": {k: v for k, v in sidecar.items() if k != "body"}},
        )
    db_json = json.loads(objects["s3db.json"].body)
    return objects, db_json


def _load_s3() -> tuple[dict, dict]:
    dump = json.loads((FIXTURES / "s3-dump.json").read_text("utf-8"))
    objects: dict[str, RawObject] = {}
    for o in dump["objects"]:
        body = base64.b64decode(o["body"]) if o["bodyEncoding"] == "base64" else o["body"].encode("utf-8")
        objects[o["key"]] = RawObject(
            key=o["key"],
            metadata=dict(o["metadata"]),
            content_type=o.get("contentType"),
            body=body,
            etag=o["etag"],
            last_modified=parse_time(o.get("lastModified")),
        )
    db_json = json.loads(objects["s3db.json"].body)
    return objects, db_json


@lru_cache(maxsize=None)
def backend(name: str) -> Backend:
    objects, db_json = _load_fs() if name == "fs" else _load_s3()
    exp_dir = FIXTURES / "expected" / name
    expected = {}
    for f in sorted(exp_dir.glob("*.jsonl")):
        expected[f.stem] = [json.loads(line) for line in f.read_text("utf-8").splitlines() if line.strip()]
    partitions = json.loads((exp_dir / "_partitions.json").read_text("utf-8"))
    return Backend(name, objects, db_json, expected, partitions)


def data_objects(name: str) -> list[tuple[str, str, RawObject]]:
    """(resource, id, object) for every `resource=*/data/id=*` object."""
    out = []
    for key, obj in backend(name).objects.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0].startswith("resource=") and parts[1] == "data" and parts[2].startswith("id="):
            out.append((parts[0][len("resource="):], parts[2][3:], obj))
    return out


def expected_record(name: str, resource: str, record_id: str) -> dict:
    matches = [r for r in backend(name).expected[resource] if r["id"] == record_id]
    assert len(matches) == 1, (name, resource, record_id)
    return matches[0]


def fixture_cases() -> list[tuple[str, str, str]]:
    """(backend, resource, id) for every data object of both backends."""
    if not FIXTURES.exists():
        return []
    return [(b, r, i) for b in BACKENDS for r, i, _ in data_objects(b)]


def case_id(case: tuple[str, str, str]) -> str:
    return "-".join(case)


@lru_cache(maxsize=None)
def schema_for(name: str, resource: str):
    from backup_pipeline.format import ResourceSchema

    return ResourceSchema.from_database_json(resource, backend(name).db_json)


def raw_object(name: str, resource: str, record_id: str) -> RawObject:
    return backend(name).objects[f"resource={resource}/data/id={record_id}"]
