"""Sharded vs unsharded backup of one resource: the same staged backup (what Dagster runs), the
resource whole in one step, or in 2 key-range parts whose steps run side by side in two processes
(what the multiprocess executor does), plan and commit around them. Whole processes, alternating,
medians of --repeat.

    .venv/bin/python bench/shard_bench.py [--records 200000] [--parts 2] [--repeat 3] [--workdir DIR]

What it shows on one 2-core machine: each step already spreads its decoding over the cores, so
the parts gain nothing here; sharding is for many machines (k8s, celery: a pod per part), where
each part's step has its own cores and its own S3 connection pool. The figure that matters at that
scale is the arithmetic in README "One resource over many machines".
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from engine_bench import build_db  # noqa: E402

DAY = "2026-11-22"
STEP = """
import sys
from datetime import date
from backup_pipeline.engine.backup import BackupRequest
from backup_pipeline.engine.staged import StagedBackup, TypePolicy
from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.store import open_store
src, repo, shard_records, what = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
request = BackupRequest(shard_records=shard_records or None, verify=True)
with StagedBackup.for_day(open_store("file://" + src), FilesystemRepository(repo), date.fromisoformat("%s"),
                          TypePolicy(force="full"), request) as staged:
    if what == "plan":
        staged.shard_plan("people")
    elif what == "whole":
        staged.stage_resource("people")
    elif what == "join":
        staged.join_parts("people")
    elif what == "commit":
        staged.commit()
    else:
        staged.stage_part("people", int(what))
""" % DAY


def step(src: Path, repo: Path, shard_records: int, what: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", STEP, str(src), str(repo), str(shard_records), what],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        _out, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"a step failed:\n{err.decode()}")


def whole(src: Path, repo: Path) -> float:
    t0 = time.perf_counter()
    wait(step(src, repo, 0, "whole"))
    wait(step(src, repo, 0, "commit"))
    return time.perf_counter() - t0


def sharded(src: Path, repo: Path, records: int, parts: int) -> float:
    per_part = -(-records // parts)
    t0 = time.perf_counter()
    wait(step(src, repo, per_part, "plan"))
    wait(*[step(src, repo, per_part, str(n)) for n in range(parts)])  # side by side
    wait(step(src, repo, per_part, "join"))
    wait(step(src, repo, per_part, "commit"))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="shard-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        build_db(work / "db", args.records)
        one, many = [], []
        for n in range(args.repeat):  # new repositories each run, removed only at the end (see restore_bench)
            one.append(whole(work / "db", work / f"repo-whole-{n}"))
            many.append(sharded(work / "db", work / f"repo-parts-{n}", args.records, args.parts))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    w, s = statistics.median(one), statistics.median(many)
    n = args.records
    print(f"\none resource of {n:,} records, staged full backup (plan, steps, commit), medians of {args.repeat}")
    print(f"  whole, one step          {w:7.2f} s  {n / w:9,.0f} rec/s")
    print(f"  {args.parts} parts, steps side by side {s:7.2f} s  {n / s:9,.0f} rec/s   ({w / s:.2f}x the whole)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
