"""DuckDB benchmark: scan speed over a backup's JSONL (gzip, zstd) and over its Parquet mirror,
and the size of each next to the raw source size, at 200,000 records.

    uv run python bench/duckdb_bench.py [--records 200000] [--workdir DIR] [--repeat 3]

Builds the source database with bench/engine_bench.py's build_db (resource `people`, metadata-
only records), backs it up in full with gzip and with zstd (Python API), writes the typed Parquet
mirror of the gzip backup (backup_pipeline.engine.parquet), then times, best of --repeat, the query

    SELECT count(*), sum(age), count(DISTINCT status) FROM <file>

over: the JSONL files read with just the two columns declared (read_json, typed), the
analytics view `people__backup` (every schema column read as JSON and converted), and the
Parquet mirror. Raw size = the source objects' user metadata (keys + values) and body bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

QUERY = "SELECT count(*), sum(age), count(DISTINCT status) FROM {src}"


def raw_size(db: Path) -> tuple[int, int]:
    from backup_pipeline.store import open_store

    store = open_store(f"file://{db}")
    total = n = 0
    for obj in store.get_many(store.list_data_keys("people")):
        total += len(obj.body) + sum(len(k.encode()) + len(v.encode()) for k, v in obj.metadata.items())
        n += 1
    store.close()
    return n, total


def best_of(con, sql: str, repeat: int) -> tuple[float, tuple]:
    best, row = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        row = con.execute(sql).fetchone()
        best = min(best, time.perf_counter() - t0)
    return best, row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workdir", default=None, help="kept afterwards (default: a temporary folder, removed)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import duckdb

    from backup_pipeline import Backups
    from backup_pipeline.query.duckdb_views import connect, create_views
    from backup_pipeline.engine.parquet import resource_attributes, write_parquet_mirror
    from engine_bench import build_db

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="duckdb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        db, repo = work / "db", work / "repo"
        t0 = time.perf_counter()
        build_db(db, args.records)
        print(f"source: {args.records:,} records built in {time.perf_counter() - t0:.1f}s ({db})", flush=True)
        n, raw = raw_size(db)
        assert n == args.records

        b = Backups(f"file://{db}", str(repo))
        files, timings = {}, {}
        for codec in ("gzip", "zstd"):
            t0 = time.perf_counter()
            m = b.backup("full", compression=codec)
            timings[codec] = time.perf_counter() - t0
            files[codec] = (m, m["resources"]["people"])
            print(f"full backup, {codec}: {timings[codec]:.1f}s", flush=True)
        m, entry = files["gzip"]
        t0 = time.perf_counter()
        info = write_parquet_mirror(b.repo, m["id"], entry, resource_attributes(m, "people"))
        timings["parquet"] = time.perf_counter() - t0
        print(f"parquet mirror of the gzip backup: {timings['parquet']:.1f}s, {info['row_groups']} row groups, "
              f"{info['coerced_nulls']} coerced nulls", flush=True)

        con = connect(b.repo)
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        typed = "format='newline_delimited', compression='auto_detect', columns={'age': 'BIGINT', 'status': 'VARCHAR'}"
        runs = []
        for codec in ("gzip", "zstd"):
            mm, e = files[codec]
            path = b.repo.describe(mm["id"], e["file"])
            runs.append((f"JSONL {codec}, read_json 2 typed columns", e["bytes"],
                         QUERY.format(src=f"read_json('{path}', {typed})")))
            create_views(con, b.repo, backup_id=mm["id"], state=False)
            runs.append((f"JSONL {codec}, people__backup view (all columns)", e["bytes"],
                         QUERY.format(src="people__backup")))
        pq_path = b.repo.describe(m["id"], info["file"])
        runs.append(("Parquet mirror (zstd), read_parquet", info["bytes"], QUERY.format(src=f"read_parquet('{pq_path}')")))

        results = []
        expect = None
        for label, size, sql in runs:
            seconds, row = best_of(con, sql, args.repeat)
            expect = expect or row
            assert row == expect, (label, row, expect)
            results.append((label, size, seconds))
        con.close()

        print(f"\nDuckDB {duckdb.__version__}, {threads} threads, {os.cpu_count()} cores; "
              f"{args.records:,} records; query: {QUERY.format(src='...')} -> {expect}")
        print(f"raw source (metadata + body bytes): {raw:,} B\n")
        print(f"{'scan':<48} {'file bytes':>13} {'vs raw':>7} {'best s':>8} {'rows/s':>12}")
        for label, size, seconds in results:
            print(f"{label:<48} {size:>13,} {size / raw:>6.1%} {seconds:>8.3f} {args.records / seconds:>12,.0f}")
        print(f"\nbackup time: gzip {timings['gzip']:.1f}s, zstd {timings['zstd']:.1f}s; "
              f"parquet mirror {timings['parquet']:.1f}s")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
