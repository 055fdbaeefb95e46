"""The demo: the main job (`s3db_backup_job`) run in process on the embedded default."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import dagster as dg

from ..api import Backups
from ..engine.progress import human_bytes
from .assets import daily
from .embedded import DEFAULT_DEMO_DIR, ensure_demo_database


def run_demo(directory: str | Path = DEFAULT_DEMO_DIR) -> int:
    """The main job, the Dagster backup job, run in process on the embedded default: the demo
    database, the latest daily partition, a persistent Dagster instance under the demo folder
    (so `dagster dev` then shows the run, its materializations and checks)."""
    warnings.filterwarnings("ignore")
    demo = Path(directory).resolve()
    db = ensure_demo_database(demo)
    conn, repo = f"file://{db}", str(demo / "backups")
    home = demo / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)

    # the code location module reads its environment on import: imported only once it is set
    from ..definitions import build_definitions

    defs = build_definitions(source=conn, repos=[repo])
    day = daily.get_last_partition_key()
    print(f"demo database: {conn}\nbackup repository: {repo}\nrunning s3db_backup_job for partition {day} ...")
    with dg.DagsterInstance.get() as instance:
        # a partition already committed runs again as a no-op that reports it (and re-runs its checks)
        result = defs.resolve_job_def("s3db_backup_job").execute_in_process(
            partition_key=day, instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    if not result.success:
        print(f"the run failed (run id {result.run_id}); see it in the UI below", file=sys.stderr)
        return 1
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    manifest_md = next(e.step_materialization_data.materialization.metadata
                       for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "backup_manifest")
    bid = manifest_md["backup_id"].value
    manifest = next(m for m in Backups(None, repo).list() if m.id == bid)
    state = "was already committed (nothing written)" if manifest_md["already_committed"].value else "committed"
    print(f"backup {bid} ({manifest.type}) {state}: {manifest.records:,} records, {human_bytes(manifest.bytes)}; "
          f"{sum(c.passed for c in checks)}/{len(checks)} checks passed")
    print(f"backup folder: {repo}/{bid}")
    print("open the UI (the run, the assets and their checks are there):")
    print(f"  DAGSTER_HOME={home} S3DB_SOURCE={conn} BACKUP_REPO={repo} \\")
    print("    .venv/bin/dagster dev -w dagster_workspace.yaml   # then http://127.0.0.1:3000")
    print("or from the shell:")
    print(f"  .venv/bin/backup-pipeline list --repo {repo}")
    print(f"  .venv/bin/backup-pipeline inspect --source {conn} --resource users")
    return 0
