"""S3 benchmark: backup and restore through a local SeaweedFS, next to the raw GET/PUT ceiling
of the same objects measured in the same run; multi-destination and encryption costs.

    uv run python bench/repository_bench.py [--records 20000]

Source: an s3db.js database (our encoder, SPEC §13) in a SeaweedFS bucket. Repository: another
bucket. Ceiling for backup: raw obstore GETs of the same objects (32 in flight, no decoding);
for restore: raw obstore PUTs of the same objects. Goals (issue 5): multi with 2 destinations
within 1.3x the time of one; encryption's cost printed as a ratio to the unencrypted run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from engine_bench import ATTRIBUTES, _mapping, database_json, make_record  # noqa: E402


def populate(store, n: int) -> int:
    from backup_pipeline.format.encode import encode_record
    from backup_pipeline.store import RawObject

    store.put(RawObject("s3db.json", {}, "application/json", orjson.dumps(database_json(), option=orjson.OPT_INDENT_2)))
    rng, mapping = random.Random(1), _mapping()
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    objs = [RawObject(f"resource=people/data/id=p{i:07d}", encode_record(ATTRIBUTES, mapping, "v1", make_record(i, rng)),
                      "application/octet-stream", b"", last_modified=old) for i in range(n)]
    store.put_many(iter(objs), concurrency=32)
    return sum(len(k) + len(v) for o in objs for k, v in o.metadata.items())


async def _raw(obs_store, keys, conc, put: bool):
    import obstore

    sem = asyncio.Semaphore(conc)

    async def one(k):
        async with sem:
            if put:
                await obstore.put_async(obs_store, "copy/" + k, b"", attributes={"_v": "v1", "0": "x" * 200})
            else:
                r = await obstore.get_async(obs_store, k)
                await r.bytes_async()

    await asyncio.gather(*(one(k) for k in keys))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    args = ap.parse_args()
    n = args.records

    import servers

    from backup_pipeline import Backups
    from backup_pipeline.repository import open_repository
    from backup_pipeline.repository.s3 import S3Options
    from backup_pipeline.store import open_store

    server = servers.start_seaweedfs()
    try:
        client = server.boto_client()
        for b in ("src", "bk1", "bk2", "bk3", "dst", "dst2"):
            client.create_bucket(Bucket=b)
        src = open_store(server.connection_string("src"))
        meta_bytes = populate(src, n)
        opts = S3Options(endpoint_url=server.endpoint, access_key_id=server.access_key, secret_access_key=server.secret_key)
        keys = [i.key for i in src.list_data("people")]
        print(f"S3 benchmark on {os.cpu_count()} cores: SeaweedFS on 127.0.0.1, {n:,} records "
              f"({meta_bytes / 1e6:.1f} MB of metadata)")
        t_get, _ = timed(lambda: asyncio.run(_raw(src._obs, keys, 32, put=False)))
        print(f"  ceiling: raw GET (32 in flight)           {n / t_get:>9,.0f} obj/s")
        one = Backups(src, open_repository("s3://bk1/r", opts))
        t_b, m = timed(lambda: one.backup("full", verify=False))
        mb = m["totals"]["bytes"] / 1e6
        print(f"  backup S3 -> S3                           {n / t_b:>9,.0f} rec/s  {mb / t_b:6.2f} MB/s written  "
              f"= {100 * t_get / t_b:5.1f}% of raw GET")
        t_put, _ = timed(lambda: asyncio.run(_raw(src._obs, keys, 32, put=True)))
        print(f"  ceiling: raw PUT (32 in flight)           {n / t_put:>9,.0f} obj/s")
        t_r, _ = timed(lambda: one.restore(m["id"], open_store(server.connection_string("dst"))))
        print(f"  restore S3 -> S3                          {n / t_r:>9,.0f} rec/s  {mb / t_r:6.2f} MB/s read  "
              f"= {100 * t_put / t_r:5.1f}% of raw PUT")
        multi = Backups(src, open_repository(["s3://bk2/r", "s3://bk3/r"], opts))
        t_m, _ = timed(lambda: multi.backup("full", verify=False))
        print(f"  multi, 2 destinations (strategy all)      {n / t_m:>9,.0f} rec/s  time x{t_m / t_b:.2f} of one "
              f"(goal <= 1.3)")
        enc = Backups(src, open_repository("s3://bk1/enc", opts, passphrase="bench", encrypt=True))
        t_e, me = timed(lambda: enc.backup("full", verify=False))
        print(f"  encrypted backup (AES-256-GCM)            {n / t_e:>9,.0f} rec/s  time x{t_e / t_b:.2f} of unencrypted")
        t_er, _ = timed(lambda: enc.restore(me["id"], open_store(server.connection_string("dst2"))))
        print(f"  encrypted restore                         {n / t_er:>9,.0f} rec/s  time x{t_er / t_r:.2f} of unencrypted")
        src.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
