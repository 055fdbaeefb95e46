"""A full disk (a real tmpfs, mounted by the test as root) ends a backup or a restore with a
named error, leaves nothing half-written that looks complete, and the next run succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import make_items_db  # noqa: E402

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def cli(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)


def test_backup_onto_a_full_disk(tiny_disk, tmp_path):
    make_items_db(tmp_path / "src", 5000)
    repo = tiny_disk / "repo"
    failed = cli("backup", "--source", f"file://{tmp_path / 'src'}", "--repo", repo)
    assert failed.returncode == 1, failed.stderr
    assert "No space left on device" in failed.stderr and str(repo) in failed.stderr
    assert "free space" in failed.stderr and "Traceback" not in failed.stderr
    assert not list(repo.rglob("*.partial"))  # no hidden half-file keeps the space
    listed = cli("list", "--repo", repo, "--json")
    assert '"complete"' not in listed.stdout  # nothing looks complete
    _grow(tiny_disk)
    again = cli("backup", "--source", f"file://{tmp_path / 'src'}", "--repo", repo)
    assert again.returncode == 0, again.stderr


def test_restore_onto_a_full_disk(tiny_disk, tmp_path):
    make_items_db(tmp_path / "src", 5000)
    repo = tmp_path / "repo"
    assert cli("backup", "--source", f"file://{tmp_path / 'src'}", "--repo", repo).returncode == 0
    backup_id = next(p.name for p in repo.iterdir() if p.name.startswith("full-"))
    target = tiny_disk / "db"
    failed = cli("restore", backup_id, "--repo", repo, "--target", f"file://{target}")
    assert failed.returncode == 1, failed.stderr
    assert "No space left on device" in failed.stderr and str(target) in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (target / "s3db.json").exists()  # never looks like a whole database
    _grow(tiny_disk)
    safe = cli("restore", backup_id, "--repo", repo, "--target", f"file://{target}")
    assert safe.returncode == 5 and "unfinished restore" in safe.stderr  # the marker says what happened
    again = cli("restore", backup_id, "--repo", repo, "--target", f"file://{target}", "--mode", "replace")
    assert again.returncode == 0, again.stderr
    assert (target / "s3db.json").exists()
