"""Restore drill benchmark: drill records/s next to restore records/s on the same backup (a full and
an incremental after 1 % changes, filesystem layout, the engine benchmark's generated database).

    uv run python bench/drill_bench.py [--size 20000] [--workdir DIR]

restore = the chain restored into a folder; drill = the same restore into a scratch folder, then
every record read back, decoded and compared with the backup (and the folder removed). The drill's
compare phase alone is printed too: what a drill adds to a restore.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="drill-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db, repo = work / "db", str(work / "repo")
    build_db(db, args.size)
    b = Backups(f"file://{db}", repo)
    b.backup("full", verify=False)
    change_one_percent(db, args.size)
    incr = b.backup("incremental", verify=False)
    print(f"drill benchmark on {os.cpu_count()} cores: {args.size:,} records, chain full -> incremental "
          f"(1 % changed), work folder {work}")

    t0 = time.perf_counter()
    restored = b.restore(incr.id, f"file://{work / 'restored'}")
    restore_s = time.perf_counter() - t0
    written = sum(p.written for p in restored.resources.values())
    shutil.rmtree(work / "restored")

    t0 = time.perf_counter()
    drill = b.drill(incr.id)
    drill_s = time.perf_counter() - t0
    compare_s = sum(r.seconds for r in drill.resources.values())
    print(f"  restore                     {written / restore_s:>8,.0f} records/s  ({written:,} in {restore_s:.2f} s)")
    print(f"  drill (restore + compare)   {drill.records / drill_s:>8,.0f} records/s  ({drill.records:,} in "
          f"{drill_s:.2f} s) = {100 * restore_s / drill_s:.0f}% of the restore's speed")
    print(f"    of which compare          {drill.records / compare_s:>8,.0f} records/s  (read back, decode, compare: "
          f"{compare_s:.2f} s; its restore {drill.restore_seconds:.2f} s)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
