"""S3 at real latency: backup from and restore into SeaweedFS with a round trip of 0, 20 and 50 ms
added to every request, next to raw obstore GETs of the same objects at the same number in flight
(the ceiling the pipeline's own CPU is measured against), and rclone (Debian's, installed by
scripts/install-rclone, which this bench runs) copying the same objects with its defaults: out of
the bucket into a folder (next to the backup) and back into the bucket (next to the restore).

    .venv/bin/python bench/latency_bench.py [--records 5000] [--delays 0,20,50] [--in-flight 32,auto]

`auto` is the store's own choice, sized from the round trip it measures (store/s3.py in_flight_for);
a number pins it (the store before this bench's issue 13 work kept 32 in flight).

The delay comes from a TCP proxy on 127.0.0.1 (tests/delayproxy.py, asyncio, its own process) that holds
every chunk it forwards for half the round trip, each way, keeping the byte order: no HTTP parsing,
so it costs far less CPU than tests/faultproxy.py. (These machines' kernels have no sch_netem, so
`tc netem` is not available; the proxy's CPU shares the 2 cores, so compare within a run.)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from delayproxy import delay_proxy  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_gets(server, bucket: str, keys: list[str], in_flight: int) -> float:
    """obstore GETs of the same objects, `in_flight` at a time, nothing decoded: seconds."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=server.endpoint, access_key_id=server.access_key,
                    secret_access_key=server.secret_key, region="us-east-1", client_options={"allow_http": True})

    async def main():
        sem = asyncio.Semaphore(in_flight)

        async def one(key):
            async with sem:
                r = await obstore.get_async(store, key)
                await r.bytes_async()
        await asyncio.gather(*(one(k) for k in keys))

    t0 = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rclone_copy(server, src: str, dst: str) -> float:
    """`rclone copy SRC DST` with its defaults (4 transfers, 8 checkers), the S3 remote `s3:` pointing
    at `server` (set by environment, no config file): seconds."""
    # plain HTTP on 127.0.0.1: an AWS_CA_BUNDLE from the environment only makes rclone's S3 client fail
    env = {**{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}, "RCLONE_CONFIG_S3_TYPE": "s3", "RCLONE_CONFIG_S3_PROVIDER": "Other",
           "RCLONE_CONFIG_S3_ENDPOINT": server.endpoint, "RCLONE_CONFIG_S3_ACCESS_KEY_ID": server.access_key,
           "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": server.secret_key, "RCLONE_CONFIG_S3_REGION": "us-east-1",
           "RCLONE_CONFIG": "/dev/null"}
    t0 = time.perf_counter()
    done = subprocess.run(["rclone", "copy", src, dst], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"rclone copy {src} {dst} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--delays", default="0,20,50", help="added round trips in ms")
    parser.add_argument("--in-flight", default="32,auto", help="requests in flight to compare (auto: sized by the store)")
    parser.add_argument("--no-rclone", action="store_true", help="leave rclone out (it takes minutes at 50 ms)")
    args = parser.parse_args()
    if not args.no_rclone:
        subprocess.run([str(ROOT / "scripts" / "install-rclone")], check=True)

    import servers
    from engine_bench import build_db

    from backup_pipeline import Backups
    from backup_pipeline.store import s3 as s3_store

    work = Path(tempfile.mkdtemp(prefix="latency-bench-"))
    server = servers.start_seaweedfs()
    upstream = int(server.endpoint.rsplit(":", 1)[1])
    rows, clone, proxy = [], [], None
    try:
        server.boto_client().create_bucket(Bucket="bench")
        build_db(work / "db", args.records)
        seed = Backups(f"file://{work / 'db'}", str(work / "seed")).backup("full", verify=False)
        source = server.connection_string("bench", "db")
        Backups(None, str(work / "seed")).restore(seed.id, source)
        keys = [f"db/{o.key}" for o in Backups(source, str(work / "x")).store.list_data("people")]
        for rtt in [float(d) for d in args.delays.split(",")]:
            port = free_port()
            spawn = multiprocessing.get_context("spawn")  # not fork: this process runs the stores' threads
            ready = spawn.Event()
            proxy = spawn.Process(target=delay_proxy, args=(port, upstream, rtt / 2000, ready), daemon=True)
            proxy.start()
            ready.wait(30)
            through = server.__class__(server.name, f"http://127.0.0.1:{port}", server.access_key, server.secret_key,
                                       server.process, server.workdir)
            source = through.connection_string("bench", "db")
            if not args.no_rclone:
                copied = work / f"rclone-{rtt}"
                out_s = rclone_copy(through, "s3:bench/db/resource=people/data", str(copied))
                in_s = rclone_copy(through, str(copied), f"s3:bench/rclone-target-{rtt}")
                clone.append((rtt, args.records / out_s, args.records / in_s))
                print(f"  rclone copy, defaults: out of S3 {clone[-1][1]:>7,.0f} objects/s, into S3 "
                      f"{clone[-1][2]:>7,.0f} objects/s", flush=True)
            for i, choice in enumerate(args.in_flight.split(",")):
                s3_store.IN_FLIGHT = None if choice == "auto" else int(choice)  # pinned, or the store's choice
                b = Backups(through.connection_string("bench", "db"), str(work / f"repo-{rtt}-{i}"))
                b.store.read_database_json()  # what a backup reads first: the store times it
                n = b.store.in_flight
                raw = raw_gets(through, "bench", keys, n)
                cpu0, workers0 = time.process_time(), _children_cpu()
                t0 = time.perf_counter()
                m = b.backup("full", verify=False)
                backup_s, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                tree = cpu + _children_cpu() - workers0  # the decoding workers, reaped when the backup ends
                t0 = time.perf_counter()
                Backups(None, str(work / f"repo-{rtt}-{i}")).restore(
                    m.id, through.connection_string("bench", f"target-{rtt}-{i}"))
                restore_s = time.perf_counter() - t0
                rows.append((rtt, f"{n} ({choice})", args.records / raw, args.records / backup_s, args.records / restore_s,
                             cpu / args.records * 1e6, tree / args.records * 1e6))
                print(f"  rtt {rtt:>4.0f} ms, {rows[-1][1]:>10} in flight: raw GET {rows[-1][2]:>7,.0f}/s  backup "
                      f"{rows[-1][3]:>7,.0f} rec/s  restore {rows[-1][4]:>7,.0f} rec/s  "
                      f"CPU {rows[-1][5]:>5.0f} us/record in the main process, {rows[-1][6]:>5.0f} with its workers", flush=True)
            proxy.terminate()
            proxy.join()
    finally:
        if proxy is not None and proxy.is_alive():
            proxy.terminate()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nS3 (SeaweedFS) at added round trips, {args.records:,} records; backup/raw = the pipeline's share of "
          "the ceiling at the same number in flight")
    for rtt, n, raw, backup, restore, cpu, tree in rows:
        out, into = next(((o, i) for r, o, i in clone if r == rtt), (None, None))
        vs_out = f", {backup / out:4.2f}x rclone" if out else ""
        vs_into = f" = {restore / into:4.2f}x rclone" if into else ""
        print(f"  {rtt:>4.0f} ms  {n:>10} in flight  backup {backup:>7,.0f} rec/s = {backup / raw:4.2f} of raw GETs"
              f"{vs_out}; restore {restore:>7,.0f} rec/s{vs_into}; CPU/record {cpu:4.0f} us main process, {tree:4.0f} us "
              "with its workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
