"""The real s3db.js fixtures (../shared/s3db-format/fixtures): where they are and how to load them."""

from __future__ import annotations

import base64
import os
import shutil
from functools import lru_cache
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
# A copy of ../shared/s3db-format is vendored so a clean checkout tests on its own.
FORMAT_DIR = Path(os.environ.get("S3DB_FORMAT_DIR", REPO / "vendor" / "s3db-format")).resolve()
FIXTURES = FORMAT_DIR / "fixtures"
FS_DB = FIXTURES / "fs-db"
S3_DUMP = FIXTURES / "s3-dump.json"
EXPECTED = FIXTURES / "expected"
PASSPHRASE = "fixture-passphrase-2024"


@lru_cache
def s3_dump() -> dict:
    return orjson.loads(S3_DUMP.read_bytes())


def dump_body(obj: dict) -> bytes:
    if obj.get("bodyEncoding") == "base64":
        return base64.b64decode(obj["body"])
    return (obj.get("body") or "").encode("utf-8")


def expected_records(flavour: str) -> dict[str, list[dict]]:
    """{resource: [record, ...]} in list order, from expected/{fs,s3}/*.jsonl."""
    out = {}
    for path in sorted((EXPECTED / flavour).glob("*.jsonl")):
        out[path.stem] = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return out


def expected_partitions(flavour: str) -> dict:
    return orjson.loads((EXPECTED / flavour / "_partitions.json").read_bytes())


def copy_fs_db(dest: Path) -> Path:
    shutil.copytree(FS_DB, dest)
    return dest


def load_dump_into_bucket(client, bucket: str, prefix: str = "") -> None:
    """Put every object of s3-dump.json raw (key, metadata, content type, body), as restore would."""
    client.create_bucket(Bucket=bucket)
    for obj in s3_dump()["objects"]:
        key = f"{prefix}/{obj['key']}" if prefix else obj["key"]
        extra = {"ContentType": obj["contentType"]} if obj.get("contentType") else {}
        client.put_object(Bucket=bucket, Key=key, Body=dump_body(obj), Metadata=obj.get("metadata") or {}, **extra)


def load_fs_db_into_bucket(client, bucket: str, prefix: str = "") -> None:
    """The filesystem fixture as S3 objects (SPEC §12: key = path, sidecar metadata and type)."""
    client.create_bucket(Bucket=bucket)
    for side in FS_DB.rglob("*.meta.json"):
        body_path = side.with_name(side.name[: -len(".meta.json")])
        meta = orjson.loads(side.read_bytes())
        rel = body_path.relative_to(FS_DB).as_posix()
        key = f"{prefix}/{rel}" if prefix else rel
        extra = {"ContentType": meta["contentType"]} if meta.get("contentType") else {}
        client.put_object(Bucket=bucket, Key=key, Body=body_path.read_bytes(), Metadata=meta.get("metadata") or {}, **extra)
