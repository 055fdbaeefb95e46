"""S3 under faults: backup from an S3 source and restore into an S3 target, through the
fault-injecting proxy (tests/faultproxy.py) at 0 % and 5 % faults of every kind, next to the
same work sent straight to the server, all in one run on SeaweedFS (127.0.0.1 only).

    uv run python bench/fault_bench.py [--records 10000] [--rate 0.05] [--workdir DIR]

Each run must lose nothing (records backed up and restored are counted against the source)
and exit cleanly; the figures say what the retries cost. Faults: 503 SlowDown, 500, connection
reset after the server acted, answer body cut in half, answer delayed by --delay seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import build_db  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
import servers  # noqa: E402


def _through(endpoint: str, server, bucket: str, prefix: str) -> str:
    host = endpoint.split("://", 1)[1]
    return f"http://{server.access_key}:{server.secret_key}@{host}/{bucket}/{prefix}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds a delayed answer waits")
    parser.add_argument("--workdir")
    args = parser.parse_args()

    from backup_pipeline import Backups
    from backup_pipeline.store.retry import retry_count

    work = Path(args.workdir or tempfile.mkdtemp(prefix="fault-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    server = servers.start_seaweedfs()
    rows = []
    try:
        client = server.boto_client()
        client.create_bucket(Bucket="bench")
        build_db(work / "db", args.records)
        seed = Backups(f"file://{work / 'db'}", str(work / "seed-repo")).backup("full", verify=False)
        Backups(None, str(work / "seed-repo")).restore(seed.id, server.connection_string("bench", "source"))
        upstream = int(server.endpoint.rsplit(":", 1)[1])

        def run(label: str, endpoint: str, proxy: FaultProxy | None) -> None:
            n = len(rows)
            retries = retry_count()
            t0 = time.perf_counter()
            m = Backups(_through(endpoint, server, "bench", "source"), str(work / f"repo-{n}")).backup(
                "full", verify=False)
            backup_s = time.perf_counter() - t0
            retries_backup = retry_count() - retries
            t0 = time.perf_counter()
            report = Backups(None, str(work / f"repo-{n}")).restore(
                m.id, _through(endpoint, server, "bench", f"target-{n}"))
            restore_s = time.perf_counter() - t0
            written = sum(p.written for p in report.resources.values())
            assert m.totals.records == written == args.records, (m.totals.records, written)
            injected = sum(v for k, v in proxy.counts.items() if " " not in k) if proxy else 0
            rows.append((label, args.records / backup_s, args.records / restore_s, injected,
                         retries_backup, retry_count() - retries - retries_backup))

        run("direct (no proxy)", server.endpoint, None)
        with FaultProxy(upstream, rate=0.0) as proxy:
            run("proxy, 0 % faults", proxy.endpoint, proxy)
        with FaultProxy(upstream, rate=args.rate, delay=args.delay, seed=1) as proxy:
            run(f"proxy, {args.rate:.0%} faults", proxy.endpoint, proxy)
    finally:
        server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nS3 (SeaweedFS) through the fault proxy, {args.records:,} records, 0 records lost in every run")
    print(f"{'run':<22} {'backup rec/s':>13} {'restore rec/s':>14} {'faults':>7} {'retries b/r':>12}")
    for label, b, r, injected, rb, rr in rows:
        print(f"{label:<22} {b:>13,.0f} {r:>14,.0f} {injected:>7} {f'{rb}/{rr}':>12}")
    zero, faulty = rows[1], rows[2]
    print(f"\nat {args.rate:.0%} faults: backup {faulty[1] / zero[1]:.2f}x and restore {faulty[2] / zero[2]:.2f}x "
          "the records/s at 0 % through the same proxy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
