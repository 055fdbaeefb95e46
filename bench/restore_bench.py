"""Restore at backup speed? A filesystem restore next to the full backup of the same database and
to `cp -r` of the same folder (the same files created, nothing decoded), whole processes,
alternating, each into a new folder, medians of --repeat.

    .venv/bin/python bench/restore_bench.py [--records 10000] [--repeat 5] [--workdir DIR]

Folders are only removed at the end: on these machines' disks, creating files right after
deleting thousands runs up to 10x slower (ext4 mounted with `discard`), so a delete between runs
would measure the disk's clean-up, not the program. Goals (issue 13): restore >= 0.8 of the full
backup's records/s, and faster than `cp -r`.
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


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="restore-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cli = str(Path(sys.executable).parent / "backup-pipeline")
    try:
        build_db(work / "db", args.records)
        subprocess.run([cli, "backup", "--source", str(work / "db"), "--repo", str(work / "repo")], check=True,
                       capture_output=True)
        backup, restore, copy = [], [], []
        for n in range(args.repeat):
            backup.append(timed([cli, "backup", "--source", str(work / "db"), "--repo", str(work / f"repo-{n}")]))
            restore.append(timed([cli, "restore", "latest", "--repo", str(work / "repo"),
                                  "--target", str(work / f"restored-{n}")]))
            copy.append(timed(["cp", "-r", str(work / "db"), str(work / f"copy-{n}")]))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    b, r, c = (statistics.median(x) for x in (backup, restore, copy))
    n = args.records
    print(f"\n{n:,} records (2 files each), medians of {args.repeat}, whole processes")
    for label, runs, m in (("backup-pipeline backup", backup, b), ("backup-pipeline restore", restore, r),
                           ("cp -r of the database", copy, c)):
        print(f"  {label:<24} {m:6.2f} s  {n / m:>8,.0f} rec/s   ({', '.join(f'{x:.2f}' for x in runs)})")
    print(f"  restore / backup records/s: {b / r:.2f} (goal >= 0.8);  restore / cp -r time: {r / c:.2f} "
          f"(goal < 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
