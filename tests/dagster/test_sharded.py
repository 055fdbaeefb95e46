"""A sharded resource in Dagster (defs/sharded.py): one step per key-range part, run side by side by
the multiprocess executor (each step its own process), a full then an incremental after changes made
by the REAL s3db.js, restored so that s3db.js reads it exactly as the source. FAILS, never skips,
without the oracle (scripts/install-s3db-oracle)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import pytest

import oracle
from backup_pipeline import Backups
from backup_pipeline.repository import FilesystemRepository

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from helpers import make_items_db  # noqa: E402
from sharded_job import sharded_backup_job  # noqa: E402

OPS_SCRIPT = Path(__file__).resolve().parents[1] / "oracle_record_ops.mjs"
SUNDAY, MONDAY = "2026-11-22", "2026-11-23"


def _strip(records: dict) -> dict:
    return {r["id"]: {k: v for k, v in r.items() if k != "_lastModified"} for r in records["items"]}


def _run(instance, day: str):
    result = dg.execute_job(dg.reconstructable(sharded_backup_job), instance=instance,
                            tags={"dagster/partition": day})
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    return result


def _part_steps(result) -> dict[str, int]:
    """step key -> pid of the process that ran it, for the part steps."""
    return {e.step_key: e.pid for e in result.all_events
            if e.event_type_value == "STEP_START" and "items__part" in (e.step_key or "")}


def test_four_shards_run_as_steps_of_their_own_and_restore_as_s3db_reads_the_source(tmp_path, monkeypatch):
    if not oracle.oracle_available():
        pytest.fail(f"s3db.js oracle not installed in {oracle.ORACLE_DIR}: run scripts/install-s3db-oracle")
    make_items_db(tmp_path / "src", 400)
    conn, repo_path = f"file://{tmp_path / 'src'}", tmp_path / "repo"
    for name, value in {"S3DB_SOURCE": conn, "BACKUP_REPO": str(repo_path), "BACKUP_SHARDED": "items",
                        "BACKUP_SHARD_RECORDS": "100"}.items():
        monkeypatch.setenv(name, value)
    repo = FilesystemRepository(repo_path)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        first = _run(instance, SUNDAY)
        steps = _part_steps(first)
        assert len(steps) == 4 and len(set(steps.values())) == 4  # four steps, four processes
        (full_id,) = [b for b in repo.backup_ids() if repo.read_manifest(b)]
        full = repo.read_manifest(full_id)
        entry = full.resources["items"]
        assert full.type == "full" and [p.records for p in entry.parts] == [100, 100, 100, 100]
        mats = {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
                for e in first.get_asset_materialization_events()}
        assert mats["items"]["parts"].value == 4 and mats["items"]["records"].value == 400
        checks = {(e.event_specific_data.asset_key.path[-1], e.event_specific_data.passed)
                  for e in first.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
        assert ("items", True) in checks and ("backup_manifest", True) in checks

        ids = sorted(_strip(oracle.read_back(conn, tmp_path / "before")[0]))
        oracle.run_script(OPS_SCRIPT, conn, json.dumps([
            ["update", "items", ids[150], {"name": "renamed", "color": "blue"}],
            ["delete", "items", ids[399]],
            ["insert", "items", {"name": "new", "n": 7, "color": "green"}],
        ]))
        second = _run(instance, MONDAY)
        assert len(_part_steps(second)) == 4
        committed = sorted(repo.backup_ids())
        again = _run(instance, MONDAY)  # a committed partition again: green, nothing written
        assert _part_steps(again) == {} and sorted(repo.backup_ids()) == committed
        mats = {e.asset_key.path[-1]: e.step_materialization_data.materialization.metadata
                for e in again.get_asset_materialization_events()}
        monday = next(b for b in committed if b.startswith("incr-"))
        assert mats["items"]["backup_id"].value == mats["backup_manifest"]["backup_id"].value == monday
        assert mats["backup_manifest"]["already_committed"].value and mats["items"]["records"].value == 2
    inc = next(repo.read_manifest(b) for b in repo.backup_ids() if b.startswith("incr-"))
    assert inc.parent == full.id and inc.partition == MONDAY
    assert [p.key_range for p in inc.resources["items"].parts] == [p.key_range for p in entry.parts]  # stable
    assert inc.resources["items"].records == 2 and inc.resources["items"].tombstones == 1

    truth = oracle.read_back(conn, tmp_path / "truth")
    Backups(None, str(repo_path)).restore(inc.id, f"file://{tmp_path / 'restored'}")
    got = oracle.read_back(f"file://{tmp_path / 'restored'}", tmp_path / "out")
    assert _strip(got[0]) == _strip(truth[0]) and len(got[0]["items"]) == 400
    assert got[1] == truth[1]
