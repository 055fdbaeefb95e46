"""One daily partition in Dagster against the same backup from the command line, on the same
10,000-record, 10-resource filesystem database (issue 16's goal: Dagster at most 2x the CLI).

    uv run python bench/dagster_bench.py [--records 10000] [--resources 10] [--repeat 3]

Both are whole processes timed from the shell's point of view: `backup-pipeline backup` and
`dagster asset materialize --select '*' --partition DAY` (the code location loaded, one run on a
DAGSTER_HOME made by a first, untimed run, the step executed, the run recorded). Each is run
`--repeat` times into a new repository; the medians are printed, with the ratio, the step's own
time and the Dagster CLI's start-up (`dagster --version`) that no code location can avoid. Then
the backup Dagster made is restored into an empty folder by `backup-pipeline restore` and by
`dagster job execute -j restore_job`, side by side.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import orjson  # noqa: E402

from engine_bench import ATTRIBUTES, _mapping, database_json, make_record  # noqa: E402

DAY = "2026-11-22"


def build_db(path: Path, records: int, resources: int) -> list[str]:
    from backup_pipeline.format.encode import encode_record
    from backup_pipeline.store import RawObject, open_store

    names = [f"res{i:02d}" for i in range(resources)]
    db = database_json()
    entry = db["resources"].pop("people")
    db["resources"] = {n: entry for n in names}
    store = open_store(f"file://{path}", create=True)
    store.put(RawObject(key="s3db.json", metadata={}, content_type="application/json",
                        body=orjson.dumps(db, option=orjson.OPT_INDENT_2)))
    rng, mapping = random.Random(42), _mapping()
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    per = records // resources
    for n in names:
        store.put_many(RawObject(key=f"resource={n}/data/id=p{i:07d}",
                                 metadata=encode_record(ATTRIBUTES, mapping, "v1", make_record(i, rng)),
                                 content_type="application/octet-stream", body=b"", last_modified=old)
                       for i in range(per))
    stamp = old.timestamp()  # a database at rest (see engine_bench.build_db)
    for n in names:
        for e in os.scandir(path / f"resource={n}" / "data"):
            os.utime(e.path, (stamp, stamp))
    return names


def timed(argv: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def step_seconds(log: str) -> float:
    found = re.search(r'Finished execution of step "s3db_backup" in ([0-9.]+)(m?s)', log)
    if not found:
        raise SystemExit(f"no step duration in the run's log:\n{log[-2000:]}")
    return float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dagster-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    try:
        build_db(work / "db", args.records, args.resources)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "S3DB_", "BACKUP_"))}
        home = work / "dagster_home"  # one instance, as a deployment has: created by a first run not timed
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        materialize = [str(bin_dir / "dagster"), "asset", "materialize", "-m", "backup_pipeline.definitions",
                       "--select", "*", "--partition", DAY]

        def dagster_env(repo: str) -> dict:
            return {**base, "DAGSTER_HOME": str(home), "S3DB_SOURCE": f"file://{work / 'db'}",
                    "BACKUP_REPO": str(work / repo), "PYTHONWARNINGS": "ignore"}

        timed(materialize, dagster_env("warm-up"))
        floor = statistics.median(timed([str(bin_dir / "dagster"), "--version"], base)[0] for _ in range(3))
        cli, dagster, steps, cli_restore, dagster_restore = [], [], [], [], []
        for n in range(args.repeat):
            cli.append(timed([str(bin_dir / "backup-pipeline"), "backup", "--source", f"file://{work / 'db'}",
                              "--repo", str(work / f"cli-{n}"), "--type", "full"], base)[0])
            seconds, log = timed(materialize, dagster_env(f"dagster-{n}"))
            dagster.append(seconds)
            steps.append(step_seconds(log))
            # the same backup restored into a new folder: the CLI, then restore_job
            cli_restore.append(timed([str(bin_dir / "backup-pipeline"), "restore", "latest", "--repo",
                                      str(work / f"dagster-{n}"), "--target", str(work / f"cli-restored-{n}")], base)[0])
            config = work / f"restore-{n}.yaml"
            config.write_text(f"ops:\n  restore_backup:\n    config:\n      backup_id: latest\n"
                              f"      target: file://{work / f'dagster-restored-{n}'}\n")
            dagster_restore.append(timed([str(bin_dir / "dagster"), "job", "execute", "-m", "backup_pipeline.definitions",
                                          "-j", "restore_job", "-c", str(config)], dagster_env(f"dagster-{n}"))[0])
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    c, d = statistics.median(cli), statistics.median(dagster)
    print(f"\nfull backup of {args.records:,} records in {args.resources} resources, median of {args.repeat}")
    print(f"  backup-pipeline backup             {c:6.2f} s   ({', '.join(f'{x:.2f}' for x in cli)})")
    print(f"  dagster asset materialize (1 day)  {d:6.2f} s   ({', '.join(f'{x:.2f}' for x in dagster)})")
    print(f"    of which the step (every resource, checks, commit)  {statistics.median(steps):6.2f} s")
    print(f"    `dagster --version` alone (the Dagster CLI's start)  {floor:6.2f} s")
    print(f"  Dagster / CLI: {d / c:.2f}x   (goal: at most 2x; issue 16 measured 19x before)")
    print(f"  the step / CLI: {statistics.median(steps) / c:.2f}x")
    rc, rd = statistics.median(cli_restore), statistics.median(dagster_restore)
    print(f"restore of that backup into an empty folder, median of {args.repeat}")
    print(f"  backup-pipeline restore            {rc:6.2f} s   ({', '.join(f'{x:.2f}' for x in cli_restore)})")
    print(f"  dagster job execute restore_job    {rd:6.2f} s   ({', '.join(f'{x:.2f}' for x in dagster_restore)})")
    print(f"  Dagster / CLI: {rd / rc:.2f}x   (issue 16 measured a 1.2 s restore as a 47 s run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
