"""Synthetic full benchmark: a synthetic full's time next to a real full's, on the same filesystem
database (the engine benchmark's generated one) and repository.

    uv run python bench/synthetic_bench.py [--records 50000] [--incrementals 1] [--s3] [--workdir DIR]

The chain: a full, then --incrementals incrementals each after 1 % changes (a tenth of them
deletions). Then, nothing changed since: a synthetic full from that chain (reads the repository
only: the chain's files and the newest key index; the source is not opened), and a real full
(lists and reads every object of the source, decodes it). Both verify their files before they
commit, as `backup` does by default. The synthetic full's records are checked to equal the real
full's (ids and content hashes). With --s3 the database and the repository are on SeaweedFS
(started on 127.0.0.1): the real full pays a GET per record, the synthetic full reads only the
repository's files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from engine_bench import build_db, change_one_percent  # noqa: E402  (also puts the project on sys.path)

from backup_pipeline import Backups  # noqa: E402
from backup_pipeline.settings import RepositorySettings  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--incrementals", type=int, default=1, help="incrementals in the chain, each after 1 %% changes")
    ap.add_argument("--s3", action="store_true", help="the database and the repository on SeaweedFS (127.0.0.1)")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="synthetic-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db, repo = work / "db", str(work / "repo")
    build_db(db, args.records)
    server, source = None, f"file://{db}"
    if args.s3:
        import servers  # the tests' SeaweedFS launcher

        server = servers.start_seaweedfs()
        server.boto_client().create_bucket(Bucket="bench")
        seed = Backups(source, str(work / "seed")).backup("full", verify=False)
        source = server.connection_string("bench", "db")
        Backups(None, str(work / "seed")).restore(seed.id, source)  # the same database, on S3
        repo = RepositorySettings(repos=["s3://bench/repo"], endpoint_url=server.endpoint,
                                  access_key_id=server.access_key, secret_access_key=server.secret_key)
    try:
        run(args, db, source, repo)
    finally:
        if server is not None:
            server.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def run(args, db: Path, source: str, repo) -> None:
    b = Backups(source, repo)
    first, full_s = timed(lambda: b.backup("full"))
    chain_s = []
    for _ in range(args.incrementals):
        change_one_percent(db, args.records, source if args.s3 else None)
        _inc, s = timed(lambda: b.backup("incremental"))
        chain_s.append(s)
    newest = b.latest()
    where = "SeaweedFS S3" if args.s3 else "filesystem"
    print(f"synthetic full benchmark on {os.cpu_count()} cores: {args.records:,} records ({where}), chain "
          f"{' -> '.join(newest.chain[:1] + ['incremental'] * (len(newest.chain) - 1))}")
    print(f"  first full                  {full_s:>7.2f} s" + "".join(f"\n  incremental (1 % changed)   {s:>7.2f} s"
                                                                     for s in chain_s))

    synth, synth_s = timed(lambda: b.backup("synthetic-full"))
    real, real_s = timed(lambda: b.backup("full"))
    n = real.totals.records
    assert synth.totals.records == n and synth.synthetic_from == newest.id
    assert [(e.resource, e.id, e.hash) for e in b.ls(synth.id)] == [(e.resource, e.id, e.hash) for e in b.ls(real.id)]
    print(f"  synthetic full              {synth_s:>7.2f} s  {n / synth_s:>8,.0f} records/s  "
          f"({n:,} records, nothing read from the source)")
    print(f"  real full                   {real_s:>7.2f} s  {n / real_s:>8,.0f} records/s  "
          f"(every object listed, read and decoded)")
    print(f"  synthetic / real            {synth_s / real_s:>7.2f}x the time; records equal (ids and content hashes)")


if __name__ == "__main__":
    main()
