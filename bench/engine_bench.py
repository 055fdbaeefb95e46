"""Engine benchmark: full backup, incremental after 1% changes, restore and verify, at 10,000
and 200,000 records in the filesystem layout, next to the ceiling measured in the same run.

    uv run python bench/engine_bench.py [--sizes 10000,200000] [--workdir DIR]

Ceiling = reading the same object files (body + sidecar) and gzip-compressing the same bytes
(isal level 1, what backups use) with no decoding. Each measured step runs in its own
process so that its peak RSS is its own. Goals (issue 4): full backup >= 50% of the ceiling;
peak RSS at 200,000 within 10% of that at 10,000; incremental after 1% changes < 10% of the
full backup's time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

ATTRIBUTES = {
    "name": "string|required", "email": "email", "age": "number|integer:true", "score": "number",
    "active": "boolean", "status": "string", "tags": "array|items:string", "website": "url",
    "profile": {"city": "string", "bio": "string"}, "settings": "json", "createdAt": "datetime|optional",
}
CITIES = ["São Paulo", "Lisboa", "Tokyo", "Boston", "Berlin", "Zürich", "Montréal"]


def _mapping():
    leaves = ["name", "email", "age", "score", "active", "status", "tags", "website", "profile.city",
              "profile.bio", "settings", "createdAt"]
    return {p: i for i, p in enumerate(leaves)} | {"profile": len(leaves)}


def database_json() -> dict:
    return {
        "version": "1", "s3dbVersion": "21.6.2", "lastUpdated": "2026-11-24T00:00:00.000Z",
        "resources": {"people": {
            "currentVersion": "v1", "partitions": {}, "createdBy": "user",
            "versions": {"v1": {
                "hash": "sha256:" + "0" * 64, "attributes": ATTRIBUTES, "behavior": "user-managed",
                "timestamps": False, "partitions": {}, "paranoid": True, "allNestedObjectsOptional": True,
                "autoDecrypt": True, "cache": False, "idSize": 22, "idGenerator": "default",
                "createdAt": "2026-11-24T00:00:00.000Z"}},
            "schemaRegistry": {"nextIndex": len(_mapping()), "mapping": _mapping(), "burned": []},
            "pluginSchemaRegistry": {}}},
    }


def make_record(i: int, rng: random.Random, generation: int = 0) -> dict:
    return {
        "name": f"Person {i} {'Ñoño' if i % 7 == 0 else 'Smith'}", "email": f"p{i}@example.com",
        "age": rng.randint(0, 99), "score": round(rng.uniform(-100, 100), 2), "active": i % 2 == 0,
        "status": rng.choice(["completed", "pending", "failed"]), "tags": [f"t{i % 5}", "a|b"],
        "website": f"https://www.example.com/p{i}", "profile": {"city": CITIES[i % len(CITIES)], "bio": f"bio {generation}"},
        "settings": {"theme": "dark", "n": i}, "createdAt": datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i),
    }


def build_db(path: Path, count: int) -> None:
    from backup_pipeline.format.encode import encode_record
    from backup_pipeline.store import RawObject, open_store

    db = database_json()
    store = open_store(f"file://{path}", create=True)
    store.put(RawObject(key="s3db.json", metadata={}, content_type="application/json",
                        body=orjson.dumps(db, option=orjson.OPT_INDENT_2)))
    rng = random.Random(42)
    mapping = _mapping()
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    store.put_many(RawObject(key=f"resource=people/data/id=p{i:07d}",
                             metadata=encode_record(ATTRIBUTES, mapping, "v1", make_record(i, rng)),
                             content_type="application/octet-stream", body=b"", last_modified=old)
                   for i in range(count))
    # a database at rest: its files were written an hour ago, not in the seconds before the
    # backup (objects written within 2 s of a listing are re-fetched as a safety measure)
    folder = path / "resource=people" / "data"
    stamp = old.timestamp()
    for entry in os.scandir(folder):
        os.utime(entry.path, (stamp, stamp))


def change_one_percent(path: Path, count: int, connection: str | None = None) -> int:
    """1 % of the records changed (a tenth of them deleted), in the folder `path` or in the
    database at `connection` (an S3 one)."""
    from backup_pipeline.format.encode import encode_record
    from backup_pipeline.store import RawObject, open_store

    store = open_store(connection or f"file://{path}")
    rng = random.Random(7)
    changed = max(1, count // 100)
    ids = rng.sample(range(count), changed)
    mapping = _mapping()
    for n, i in enumerate(ids):
        key = f"resource=people/data/id=p{i:07d}"
        if n % 10 == 0:
            store.delete(key)
        else:
            store.put(RawObject(key=key, metadata=encode_record(ATTRIBUTES, mapping, "v1", make_record(i, rng, 1)),
                                content_type="application/octet-stream", body=b""))
    return changed


# -- steps, each run in a child process ----------------------------------------------------
def step(args) -> dict:
    from backup_pipeline import Backups
    from backup_pipeline.store import open_store

    t0 = time.perf_counter()
    out: dict = {}
    if args.step == "ceiling":
        from isal import igzip

        folder = Path(args.db) / "resource=people" / "data"
        total = 0
        with open(os.devnull, "wb") as devnull, igzip.IGzipFile(fileobj=devnull, mode="wb", compresslevel=1) as gz:
            for entry in os.scandir(folder):
                data = Path(entry.path).read_bytes()
                total += len(data)
                gz.write(data)
                if entry.name.endswith(".meta.json"):
                    out["objects"] = out.get("objects", 0) + 1
        out["bytes_read"] = total
    elif args.step == "backup":
        m = Backups(f"file://{args.db}", args.repo).backup(args.type, verify=False)
        out = {"id": m["id"], "records": m["totals"]["records"], "tombstones": m["totals"]["tombstones"],
               "fetched": sum(r["fetched"] for r in m["resources"].values()), "bytes": m["totals"]["bytes"]}
    elif args.step == "restore":
        report = Backups(None, args.repo).restore(args.id, open_store(f"file://{args.target}", create=True),
                                                  verify=args.read_back)
        out = {"records": report.as_json()["totals"]["written"]}
    elif args.step == "verify":
        report = Backups(None, args.repo).verify(args.id)
        out = {"bytes": report.bytes}
    out["seconds"] = time.perf_counter() - t0
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # decoding workers
    return out


def run_step(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--step", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"step {argv} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_size(n: int, work: Path, backup_only: bool = False) -> dict:
    db, repo = work / f"db-{n}", work / f"repo-{n}"
    t = time.perf_counter()
    build_db(db, n)
    print(f"\n{n:,} records (database built in {time.perf_counter() - t:.1f} s)", flush=True)
    ceiling = run_step("ceiling", "--db", str(db))
    full = run_step("backup", "--db", str(db), "--repo", str(repo), "--type", "full")
    changed = change_one_percent(db, n)
    inc = run_step("backup", "--db", str(db), "--repo", str(repo), "--type", "incremental")
    ceil_rate = n / ceiling["seconds"]
    full_rate = n / full["seconds"]
    if backup_only:
        print(f"  ceiling (read files + gzip, no decoding) {ceil_rate:>10,.0f} rec/s")
        print(f"  full backup                              {full_rate:>10,.0f} rec/s  = {100 * full_rate / ceil_rate:5.1f}% "
              f"of ceiling   peak RSS {full['maxrss_mb']:.0f} MB (+ worker {full['worker_maxrss_mb']:.0f} MB)")
        print(f"  incremental after 1% ({changed:,} changed)   {inc['seconds']:.2f} s = "
              f"{100 * inc['seconds'] / full['seconds']:5.1f}% of full   peak RSS {inc['maxrss_mb']:.0f} MB")
        return {"n": n, "full": full, "inc": inc, "ceiling": ceiling}
    restore = run_step("restore", "--repo", str(repo), "--id", inc["id"], "--target", str(work / f"restored-{n}"))
    read_back = run_step("restore", "--repo", str(repo), "--id", inc["id"], "--target", str(work / f"read-back-{n}"),
                         "--read-back")
    verify = run_step("verify", "--repo", str(repo), "--id", full["id"])
    print(f"  ceiling (read files + gzip, no decoding) {ceil_rate:>10,.0f} rec/s")
    print(f"  full backup                              {full_rate:>10,.0f} rec/s  = {100 * full_rate / ceil_rate:5.1f}% of ceiling (goal >= 50%)   peak RSS {full['maxrss_mb']:.0f} MB (+ worker {full['worker_maxrss_mb']:.0f} MB)")
    print(f"  incremental after 1% ({changed:,} changed)   {n / inc['seconds']:>10,.0f} rec/s  {inc['seconds']:.2f} s = {100 * inc['seconds'] / full['seconds']:5.1f}% of full (goal < 10%)   fetched {inc['fetched']:,}, tombstones {inc['tombstones']:,}")
    print(f"  restore (full + incremental chain)       {restore['records'] / restore['seconds']:>10,.0f} rec/s   peak RSS {restore['maxrss_mb']:.0f} MB")
    print(f"  restore --verify (reads every object back) {read_back['records'] / read_back['seconds']:>8,.0f} rec/s   "
          f"= {100 * restore['seconds'] / read_back['seconds']:.0f}% of the speed without   peak RSS {read_back['maxrss_mb']:.0f} MB")
    print(f"  verify                                   {verify['bytes'] / 1e6 / verify['seconds']:>10,.1f} MB/s ({verify['bytes'] / 1e6:.1f} MB)")
    shutil.rmtree(work / f"restored-{n}", ignore_errors=True)
    shutil.rmtree(work / f"read-back-{n}", ignore_errors=True)
    return {"n": n, "full": full, "inc": inc, "ceiling": ceiling, "restore": restore, "verify": verify}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,200000")
    ap.add_argument("--workdir")
    ap.add_argument("--backup-only", action="store_true",
                    help="the ceiling, the full and the incremental only (no restore: 1M records are 2M files to create)")
    ap.add_argument("--step", choices=["ceiling", "backup", "restore", "verify"])
    ap.add_argument("--db"), ap.add_argument("--repo"), ap.add_argument("--type"), ap.add_argument("--id")
    ap.add_argument("--target"), ap.add_argument("--read-back", action="store_true")
    args = ap.parse_args()
    if args.step:
        print(json.dumps(step(args)))
        return
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="engine-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"engine benchmark on {os.cpu_count()} cores, work folder {work}")
    results = [bench_size(int(s), work, args.backup_only) for s in args.sizes.split(",")]
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = big["full"]["maxrss_mb"] / small["full"]["maxrss_mb"] - 1
        print(f"\npeak RSS of full backup: {small['full']['maxrss_mb']:.0f} MB at {small['n']:,} vs "
              f"{big['full']['maxrss_mb']:.0f} MB at {big['n']:,} records: {100 * growth:+.1f}% (goal within 10%); "
              f"decoding worker {small['full']['worker_maxrss_mb']:.0f} vs {big['full']['worker_maxrss_mb']:.0f} MB")
        inc_growth = big["inc"]["maxrss_mb"] / small["inc"]["maxrss_mb"] - 1
        print(f"peak RSS of incremental: {small['inc']['maxrss_mb']:.0f} MB vs {big['inc']['maxrss_mb']:.0f} MB "
              f"({100 * inc_growth:+.1f}%: bounded windows of the listing and of the parent's index)")
        if not args.backup_only:
            restore_growth = big["restore"]["maxrss_mb"] / small["restore"]["maxrss_mb"] - 1
            print(f"peak RSS of restore: {small['restore']['maxrss_mb']:.0f} MB vs {big['restore']['maxrss_mb']:.0f} MB "
                  f"({100 * restore_growth:+.1f}%)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
