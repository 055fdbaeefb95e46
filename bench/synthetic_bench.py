"""Synthetic full benchmark: a synthetic full's time next to a real full's, on the same filesystem
database (the engine benchmark's generated one) and repository.

    uv run python bench/synthetic_bench.py [--records 50000] [--incrementals 1] [--workdir DIR]

The chain: a full, then --incrementals incrementals each after 1 % changes (a tenth of them
deletions). Then, nothing changed since: a synthetic full from that chain (reads the repository
only: the chain's files and the newest key index; the source is not opened), and a real full
(lists and reads every object of the source, decodes it). Both verify their files before they
commit, as `backup` does by default. The synthetic full's records are checked to equal the real
full's (ids and content hashes). Filesystem only: on S3 the real full also pays a GET per record,
which the synthetic full does not.
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
from engine_bench import build_db, change_one_percent  # noqa: E402  (also puts the project on sys.path)

from backup_pipeline import Backups  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--incrementals", type=int, default=1, help="incrementals in the chain, each after 1 %% changes")
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="synthetic-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db, repo = work / "db", str(work / "repo")
    build_db(db, args.records)
    b = Backups(f"file://{db}", repo)
    first, full_s = timed(lambda: b.backup("full"))
    chain_s = []
    for _ in range(args.incrementals):
        change_one_percent(db, args.records)
        _inc, s = timed(lambda: b.backup("incremental"))
        chain_s.append(s)
    newest = b.latest()
    print(f"synthetic full benchmark on {os.cpu_count()} cores: {args.records:,} records (filesystem), chain "
          f"{' -> '.join(newest.chain[:1] + ['incremental'] * (len(newest.chain) - 1))}, work folder {work}")
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
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
