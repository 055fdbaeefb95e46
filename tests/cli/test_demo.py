"""README's first command: the Dagster backup job on the embedded default, run twice."""

from __future__ import annotations

import subprocess
import sys

import orjson


def test_demo_runs_the_backup_job_then_finds_it_committed(tmp_path):
    demo = tmp_path / "demo"
    first = subprocess.run([sys.executable, "-m", "backup_pipeline.cli", "demo", "--dir", str(demo)],
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    # 10 resources: one check each (backup_file_valid), and backup_verifies on the manifest
    assert ") committed: 27 records" in first.stdout and "11/11 checks passed" in first.stdout
    assert "dagster dev -w dagster_workspace.yaml" in first.stdout
    listed = orjson.loads(subprocess.run([sys.executable, "-m", "backup_pipeline.cli", "list", "--repo",
                                          str(demo / "backups"), "--json"], capture_output=True).stdout)
    assert [b["state"] for b in listed] == ["complete"]
    assert (demo / "dagster_home" / "dagster.yaml").exists()  # the run is in a persistent instance
    second = subprocess.run([sys.executable, "-m", "backup_pipeline.cli", "demo", "--dir", str(demo)],
                            capture_output=True, text=True)
    assert second.returncode == 0 and "was already committed (nothing written): 27 records" in second.stdout
    assert "11/11 checks passed" in second.stdout  # its checks ran again
