"""Store benchmark: objects listed/s and fetched/s through our stores, next to the raw ceiling.

    uv run python bench/store_bench.py [--records 10000] [--concurrency 32]

Filesystem: our FilesystemStore vs plain file reads of the same files.
S3 (SeaweedFS started on 127.0.0.1): our S3Store (obstore) vs raw obstore requests with no
RawObject building, and raw boto3 for reference. CPU seconds are this process's (user+sys).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from backup_pipeline.store import RawObject, open_store  # noqa: E402
from backup_pipeline.format.keys import data_prefix  # noqa: E402

RESOURCE = "users"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.t0, cpu() - self.c0


def sample_objects(n: int):
    """n user-like records: metadata as s3db.js stores it (~15 fields), empty bodies."""
    for i in range(n):
        yield RawObject(
            key=f"resource={RESOURCE}/data/id=user{i:07d}",
            metadata={
                "0": f"User number {i}", "1": f"user{i}@example.com", "2": "G", "3": "1z.5", "4": "1",
                "5": "d:c", "6": "BR", "7": "admin|a\\|b", "8": "7|d|4c92", "a": "u:S%C3%A3o%20Paulo",
                "d": '{"theme":"dark","langs":["pt","en"]}', "h": "vBQLe6Z", "i": "vBQLe6Z", "_v": "v1",
            },
            content_type="application/octet-stream",
            body=b"",
        )


def row(label: str, n: int, t: Timer, ceiling: Timer | None = None) -> str:
    rate = n / t.wall
    text = f"  {label:<44} {rate:>10,.0f} obj/s   {1000 * t.cpu / n:6.3f} ms CPU/obj"
    if ceiling is not None:
        text += f"   = {100 * ceiling.wall / t.wall:5.1f}% of ceiling"
    return text


def bench_fs(n: int, conc: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"file://{tmp}/db", create=True)
        (Path(tmp) / "db" / "s3db.json").write_text('{"version":"1","resources":{"users":{}}}')
        store.put_many(sample_objects(n), concurrency=4)
        folder = Path(tmp) / "db" / f"resource={RESOURCE}" / "data"
        print(f"filesystem, {n:,} records")
        with Timer() as ceil_list:
            names = [e.name for e in os.scandir(folder) if e.name.endswith(".meta.json")]
            for name in names:
                orjson.loads((folder / name).read_bytes())
        with Timer() as t_list:
            keys = [i.key for i in store.list_data(RESOURCE)]
        assert len(keys) == n
        print(row("ceiling: scandir + read/parse sidecars", n, ceil_list))
        print(row("store.list_data (sorted, ObjectInfo)", n, t_list, ceil_list))
        with Timer() as ceil_get:
            for name in names:
                (folder / name).read_bytes()
                (folder / name[: -len(".meta.json")]).read_bytes()
        with Timer() as t_get:
            count = sum(1 for _ in store.get_many(keys, concurrency=1))
        assert count == n
        with Timer() as t_get_thr:
            count = sum(1 for _ in store.get_many(keys, concurrency=conc))
        print(row("ceiling: plain reads of body + sidecar", n, ceil_get))
        print(row("store.get_many (1 thread)", n, t_get, ceil_get))
        print(row(f"store.get_many ({conc} threads)", n, t_get_thr, ceil_get))


async def _raw_obstore_gets(obs_store, keys, conc):
    import obstore

    sem = asyncio.Semaphore(conc)

    async def one(k):
        async with sem:
            r = await obstore.get_async(obs_store, k)
            await r.bytes_async()
            r.attributes

    await asyncio.gather(*(one(k) for k in keys))


def bench_s3(n: int, conc: int) -> None:
    import obstore
    import servers

    server = servers.start_seaweedfs()
    try:
        client = server.boto_client()
        client.create_bucket(Bucket="bench")
        store = open_store(server.connection_string("bench"))
        with Timer() as t_put:
            store.put_many(sample_objects(n), concurrency=conc)
        print(f"S3 (SeaweedFS weed mini on 127.0.0.1), {n:,} records")
        print(row(f"(setup) store.put_many ({conc} in flight)", n, t_put))
        prefix = data_prefix(RESOURCE)
        with Timer() as ceil_list:
            raw = sum(len(page) for page in obstore.list(store._obs, prefix.rstrip("/"), chunk_size=1000))
        with Timer() as boto_list:
            braw = sum(len(p.get("Contents", [])) for p in client.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix))
        with Timer() as t_list:
            keys = [i.key for i in store.list_data(RESOURCE)]
        assert raw == braw == len(keys) == n
        print(row("ceiling: raw obstore.list pages", n, ceil_list))
        print(row("reference: raw boto3 list_objects_v2", n, boto_list))
        print(row("store.list_data (ObjectInfo)", n, t_list, ceil_list))
        with Timer() as ceil_get:
            asyncio.run(_raw_obstore_gets(store._obs, keys, conc))
        with Timer() as t_get:
            count = sum(1 for _ in store.get_many(keys, concurrency=conc))
        assert count == n
        sample = keys[: min(n, 2000)]
        from concurrent.futures import ThreadPoolExecutor

        with Timer() as boto_get:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda k: client.get_object(Bucket="bench", Key=k)["Body"].read(), sample))
        print(row(f"ceiling: raw obstore get_async ({conc} in flight)", n, ceil_get))
        print(row(f"reference: raw boto3 get_object (16 threads, {len(sample)})", len(sample), boto_get))
        print(row(f"store.get_many ({conc} in flight)", n, t_get, ceil_get))
        store.close()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--only", choices=["fs", "s3"])
    args = ap.parse_args()
    print(f"store benchmark on {os.cpu_count()} cores (figures: objects/s, CPU ms per object, share of ceiling)")
    if args.only in (None, "fs"):
        bench_fs(args.records, min(args.concurrency, 8))
    if args.only in (None, "s3"):
        bench_s3(args.records, args.concurrency)


if __name__ == "__main__":
    main()
