"""The typed Parquet mirror (backup_pipeline.engine.parquet): schema mapping, coercion, bounded row
groups, and — simulating the engine's --parquet hook — a mirror of every fixture resource of a
full and two incremental backups compared in DuckDB with the JSONL it comes from."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
import tracemalloc
from datetime import date, datetime, timezone

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backup_pipeline import Backups
from backup_pipeline.compression import open_writer
from backup_pipeline.repository.files import file_context
from backup_pipeline.repository.manifest import FileEntry, ResourceEntry
from backup_pipeline.engine.verify import verify_file
from backup_pipeline.errors import IntegrityError
from backup_pipeline.engine.parquet import (DROPPED_FIELDS, arrow_schema, attribute_type, converter, resource_attributes,
                                     write_parquet_mirror)
from backup_pipeline.repository import open_repository
from s3db_fixtures import copy_fs_db
from test_duckdb_views import full_and_two_incrementals

TS = pa.timestamp("ms", tz="UTC")


def test_schema_mapping_follows_the_s3db_codecs():
    attrs = {
        "n": "number|integer:true", "n2": "number|integer|optional", "x": "number|optional", "ok": "boolean",
        "at": "datetime|optional", "born": "dateonly|optional", "wake": "timeonly|optional",
        "tags": "array|items:string", "ints": "array|items:number|integer:true", "ws": "array|items:number",
        "objs": "array|items:object", "vec": "embedding:4", "price": "money", "btc": "crypto", "ratio": "decimal:4",
        "lat": "geo:lat", "lon": "geo:lon", "pt": "geo:point", "js": "json|optional", "ob": "object", "any": "any",
        "sec": "secret|optional", "pw": "password", "ip": "ip4", "uid": "uuid", "mail": "email", "weird": "whatever",
        "profile": {"$$type": "object|optional", "city": "string", "geo": {"lat": "geo:lat"}},
        "of": {"type": "number", "optional": True}, "ofarr": {"type": "array", "items": "string"},
        "ofnums": {"type": "array", "items": "number|integer:true"}, "empty": {},
        "ID": "string", "_lastModified": "string", "N": "string",  # collide (case-insensitively): left out
    }
    s = arrow_schema(attrs)
    assert s.names[0] == "id" and s.names[-7:] == ["_deleted", "_lastModified", "_etag", "_contentLength",
                                                   "_mimeType", "_originalVersion", "_extra"]
    t = {f.name: f.type for f in s}
    assert "ID" not in t and "N" not in t and t["_lastModified"] == TS
    expect = {
        "n": pa.int64(), "n2": pa.int64(), "x": pa.float64(), "ok": pa.bool_(), "at": TS, "born": pa.date32(),
        "wake": pa.string(), "tags": pa.list_(pa.string()), "ints": pa.list_(pa.int64()), "ws": pa.list_(pa.float64()),
        "objs": pa.string(), "vec": pa.list_(pa.float64()), "price": pa.float64(), "btc": pa.float64(),
        "ratio": pa.float64(), "lat": pa.float64(), "lon": pa.float64(),
        "pt": pa.struct([("latitude", pa.float64()), ("longitude", pa.float64())]),
        "js": pa.string(), "ob": pa.string(), "any": pa.string(), "sec": pa.string(), "pw": pa.string(),
        "ip": pa.string(), "uid": pa.string(), "mail": pa.string(), "weird": pa.string(),
        "profile": pa.struct([("city", pa.string()), ("geo", pa.struct([("lat", pa.float64())]))]),
        "of": pa.string(), "ofarr": pa.list_(pa.string()), "ofnums": pa.list_(pa.int64()), "empty": pa.string(),
    }
    assert {k: t[k] for k in expect} == expect
    assert attribute_type("array|items:number|integer") == pa.list_(pa.int64())


def test_values_that_do_not_fit_become_null_and_are_counted():
    bad = []
    count = lambda: bad.append(1)  # noqa: E731
    assert converter(pa.float64())("", count) is None  # s3db.js stores tiny numbers as ""
    assert converter(pa.float64())(3, count) == 3.0
    assert converter(pa.int64())(2.0, count) == 2 and converter(pa.int64())(2.5, count) is None
    assert converter(pa.int64())(True, count) is None and converter(pa.int64())(2**64, count) is None
    assert converter(pa.bool_())("true", count) is None
    assert converter(TS)("2026-11-24T01:30:43.974Z", count) == int(datetime(2026, 11, 24, 1, 30, 43, 974000,
                                                                            tzinfo=timezone.utc).timestamp() * 1000)
    assert converter(TS)("yesterday", count) is None
    assert converter(pa.date32())("1969-12-31", count) == date(1969, 12, 31)
    assert converter(pa.list_(pa.float64()))([1, None, 2.5], count) == [1.0, None, 2.5]
    assert converter(pa.list_(pa.float64()))([1, "x"], count) is None  # no silent holes
    st = pa.struct([("a", pa.int64()), ("b", pa.string())])
    assert converter(st)({"a": "x", "b": [1]}, count) == {"a": None, "b": "[1]"}
    assert converter(st)("not an object", count) is None
    assert len(bad) == 9
    # strings: kept as is; any other JSON value as its JSON text (never counted)
    assert converter(pa.string())({"k": [1, "two"]}, count) == '{"k":[1,"two"]}' and len(bad) == 9


# -- the mirror of every fixture resource, compared with its JSONL in DuckDB ------------------
_MISFIT = object()


def expected_value(v, t: pa.DataType, misfits: list, where):
    """What the mirror must hold for JSON value v in a column of type t (the deliberate
    conversions: ISO text -> timestamp/date, ints -> double, non-string JSON -> JSON text in
    string columns, a misfit -> null)."""
    if v is None:
        return None
    out = _MISFIT
    if pa.types.is_string(t):
        out = v if isinstance(v, str) else orjson.dumps(v).decode()
    elif pa.types.is_int64(t):
        if isinstance(v, int) and not isinstance(v, bool):
            out = v
        elif isinstance(v, float) and v.is_integer():
            out = int(v)
    elif pa.types.is_float64(t):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out = float(v)
    elif pa.types.is_boolean(t):
        out = v if isinstance(v, bool) else _MISFIT
    elif pa.types.is_timestamp(t) and isinstance(v, str):
        try:
            out = datetime.fromisoformat(v).astimezone(timezone.utc)
        except ValueError:
            pass
    elif pa.types.is_date32(t) and isinstance(v, str):
        try:
            out = date.fromisoformat(v)
        except ValueError:
            pass
    elif pa.types.is_list(t) and isinstance(v, list):
        items = [expected_value(x, t.value_type, [], where) for x in v]
        ok = all(not (x is None and y is not None) for x, y in zip(items, v))
        out = items if ok else _MISFIT
    elif pa.types.is_struct(t) and isinstance(v, dict):
        out = {f.name: expected_value(v.get(f.name), f.type, misfits, where + (f.name,)) for f in t}
    if out is _MISFIT:
        misfits.append(where)
        return None
    return out


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def as_read(line: dict) -> dict:
    """A line's fields as s3db.js read them: values set aside under _misfit and _extra back in
    their fields."""
    misfit, extra = line.pop("_misfit", None) or {}, line.pop("_extra", None) or {}
    return {**line, **misfit, **extra}


def test_mirror_of_every_fixture_resource_has_the_rows_and_values_of_the_jsonl(tmp_path):
    b = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", str(tmp_path / "repo"))
    manifests = full_and_two_incrementals(b)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    misfits: list[tuple] = []
    checked = set()
    for m in manifests:
        for name, entry in m.resources.items():
            # exactly what the engine does with --parquet after each resource
            attrs = resource_attributes(m, name)
            info = write_parquet_mirror(b.repo, m["id"], entry, attrs, row_group_size=2)
            entry.parquet = info
            path = b.repo.describe(m["id"], info["file"])
            data = open(path, "rb").read()
            assert (info["file"], info["bytes"], info["sha256"]) == (f"{name}.parquet", len(data),
                                                                    hashlib.sha256(data).hexdigest())
            assert info["rows"] == entry.data.lines and info["row_groups"] == math.ceil(entry.data.lines / 2)
            assert pq.ParquetFile(path).metadata.num_row_groups == info["row_groups"]
            schema = arrow_schema(attrs)
            assert pq.read_schema(path).remove_metadata() == schema
            jsonl = b.repo.describe(m["id"], entry.data.file)
            # same rows: ids both ways, in DuckDB
            for a, z in (("p", "j"), ("j", "p")):
                diff = con.execute(f"""
                    WITH p AS (SELECT id FROM read_parquet('{path}')),
                         j AS (SELECT json->>'id' AS id FROM read_ndjson_objects('{jsonl}'))
                    SELECT count(*) FROM (SELECT id FROM {a} EXCEPT ALL SELECT id FROM {z})""").fetchone()[0]
                assert diff == 0, f"{m['id']}/{name}"
            lines = {r["id"]: r for r in (as_read(orjson.loads(j)) for (j,) in
                                          con.execute(f"SELECT json FROM read_ndjson_objects('{jsonl}')").fetchall())}
            cur = con.execute(f"SELECT * FROM read_parquet('{path}')")
            cols = [d[0] for d in cur.description]
            per_column: dict[str, int] = {}
            for row in cur.fetchall():
                got = dict(zip(cols, row))
                line = lines[got["id"]]
                for f in schema:
                    if f.name == "_extra":
                        extra = {k: v for k, v in line.items() if k not in set(schema.names) | DROPPED_FIELDS}
                        assert (orjson.loads(got["_extra"]) if got["_extra"] else {}) == extra
                        continue
                    if f.name == "_deleted":
                        assert got["_deleted"] is bool(line.get("_deleted")), f"{name}/{got['id']}"
                        continue
                    before = len(misfits)
                    want = expected_value(line.get(f.name), f.type, misfits, (name, got["id"], f.name))
                    per_column[f.name] = per_column.get(f.name, 0) + len(misfits) - before
                    assert _equal(got[f.name], want), f"{m['id']}/{name}/{got['id']}/{f.name}: {got[f.name]!r} != {want!r}"
                    checked.add((name, f.name))
            assert info["coerced_nulls"] == sum(per_column.values())
            assert info["coerced_columns"] == {k: v for k, v in per_column.items() if v}
    # every fixture resource was mirrored, tombstones included, and the only misfit of the
    # fixtures is the "" s3db.js stores for score 1e-7 (SPEC §6.1), once per backup holding it
    assert {n for n, _ in checked} == set(manifests[0]["resources"])
    assert sum(m["resources"]["quirks"]["parquet"]["rows"] for m in manifests) == 5
    assert set(misfits) == {("users", "bwRaU-hDXLDP8gpx8WBzZT", "score")}
    # tombstones are rows with _deleted and only an id
    q = manifests[1]["resources"]["quirks"]["parquet"]
    tomb = con.execute(f"SELECT id, _deleted, note FROM read_parquet('{b.repo.describe(manifests[1]['id'], q['file'])}')").fetchall()
    assert tomb == [("q4", True, None)]


def _synthetic_repo(tmp_path, n: int):
    repo = open_repository(str(tmp_path / "synth"))
    bid = "full-2026-01-01T000000Z-0000"
    with repo.create_file(bid, "people.jsonl.gz") as raw:
        w = open_writer(raw, "gzip")
        for i in range(n):
            w.write(orjson.dumps({"id": f"p{i:06d}", "name": f"Person {i} " + "x" * 40, "age": i % 90,
                                  "tags": ["a", "b", str(i)], "profile": {"city": "Tokyo", "bio": "b" * 60},
                                  "createdAt": "2026-01-01T00:00:00.000Z", "_s3db": {"key": "k", "body": "y" * 200}},
                                 option=orjson.OPT_APPEND_NEWLINE))
        w.close()
    attrs = {"name": "string", "age": "number|integer:true", "tags": "array|items:string",
             "profile": {"city": "string", "bio": "string"}, "createdAt": "datetime"}
    return repo, bid, ResourceEntry(FileEntry("people.jsonl.gz", "gzip", n, 0, ""), None, records=n), attrs


def _peak(tmp_path, n: int, row_group_size: int) -> int:
    repo, bid, entry, attrs = _synthetic_repo(tmp_path / f"{n}-{row_group_size}", n)
    tracemalloc.start()
    try:
        info = write_parquet_mirror(repo, bid, entry, attrs, row_group_size=row_group_size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info["rows"] == n and info["row_groups"] == math.ceil(n / row_group_size)
    return peak


def test_memory_is_flat_bounded_by_the_row_group(tmp_path):
    small, large = _peak(tmp_path, 5_000, 500), _peak(tmp_path, 20_000, 500)
    whole = _peak(tmp_path, 20_000, 20_000)
    assert large < small * 1.5, (small, large)  # 4x the rows, same memory
    assert large * 3 < whole, (large, whole)  # what one row group of everything would take


def test_encrypted_repository_gets_a_sealed_mirror(tmp_path):
    repo = open_repository(str(tmp_path / "enc"), passphrase="pw", encrypt=True)
    m = Backups(f"file://{copy_fs_db(tmp_path / 'src')}", repo).backup("full", resources=["users"])
    info = write_parquet_mirror(repo, m["id"], m["resources"]["users"], resource_attributes(m, "users"))
    stored = open(repo.describe(m["id"], info["file"]), "rb").read()
    assert not stored.startswith(b"PAR1") and hashlib.sha256(stored).hexdigest() == info["sha256"]
    with repo.open_file(m["id"], info["file"]) as f:
        plain = repo.encryption.unseal(f, info["file"], file_context(m.id, info.file)).read()
    table = pq.read_table(pa.BufferReader(plain))
    assert table.num_rows == info["rows"] == 4 and table.schema.names[0] == "id"
    # verify decrypts it through temporary files and checks the footer's row count
    assert verify_file(repo, m["id"], info.as_file()) is True
    with pytest.raises(IntegrityError, match="4 rows, the manifest records 3"):
        verify_file(repo, m["id"], replace(info, rows=3).as_file())


def test_bad_row_group_size_is_refused(tmp_path):
    repo, bid, entry, attrs = _synthetic_repo(tmp_path, 1)
    with pytest.raises(ValueError):
        write_parquet_mirror(repo, bid, entry, attrs, row_group_size=0)
