"""restore --at / list --at (issue 15 item 3): the newest committed backup finished at or before a
time, at its boundaries: exactly at a backup's time, before the first, after the last."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.errors import NotFound, UsageError
from backup_pipeline.store.filesystem import iso_ms
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))


def _shifted(finished_at: str, ms: int) -> str:
    return iso_ms(datetime.fromisoformat(finished_at) + timedelta(milliseconds=ms))


@pytest.fixture
def chain(tmp_path):
    """A full, then an incremental after users/u2 is deleted, then another full."""
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    full = b.backup("full")
    (src / "resource=users" / "data" / "id=u2").unlink()
    (src / "resource=users" / "data" / "id=u2.meta.json").unlink()
    incr = b.backup("incremental")
    last = b.backup("full")
    return repo, full, incr, last, tmp_path


def test_restore_at_a_backups_time_picks_that_backup_and_says_so(chain):
    repo, full, incr, _last, tmp = chain
    proc = run("restore", "--at", full.finished_at, "--repo", repo, "--target", str(tmp / "dst"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = orjson.loads(proc.stdout)
    assert report["id"] == full.id
    assert report["point_in_time"] == {"at": full.finished_at, "id": full.id, "finished_at": full.finished_at}
    assert f"backup {full.id}" in proc.stderr
    # a millisecond before the incremental finished: still the full; at it: the incremental
    b = Backups(None, repo)
    assert b.resolve_at(_shifted(incr.finished_at, -1)).id == full.id
    assert b.resolve_at(incr.finished_at).id == incr.id
    # the same instant written with an offset
    plus_two = datetime.fromisoformat(incr.finished_at).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert b.resolve_at(plus_two).id == incr.id
    restored = b.restore(target=f"file://{tmp / 'dst2'}", at=incr.finished_at)
    assert restored.chain == [full.id, incr.id] and restored.resources["users"].written == 3


def test_before_the_first_backup_is_not_found_naming_the_earliest(chain):
    repo, full, _incr, _last, tmp = chain
    proc = run("restore", "--at", _shifted(full.finished_at, -1), "--repo", repo, "--target", str(tmp / "dst"))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert f"the earliest, {full.id}, finished at {full.finished_at}" in proc.stderr
    assert not (tmp / "dst").exists()  # nothing was touched
    listed = run("list", "--repo", repo, "--at", "2000-01-01")
    assert listed.returncode == 3 and full.finished_at in listed.stderr


def test_after_the_last_backup_is_the_latest_and_list_shows_it(chain):
    repo, _full, _incr, last, _tmp = chain
    assert Backups(None, repo).resolve_at("2999-01-01T00:00Z").id == last.id
    listed = run("list", "--repo", repo, "--at", "2999-01-01", "--json")  # a date: the end of that day
    assert listed.returncode == 0, listed.stderr
    assert [i["id"] for i in orjson.loads(listed.stdout)] == [last.id]
    table = run("list", "--repo", repo, "--at", last.finished_at)
    assert table.returncode == 0 and last.id in table.stdout and len(table.stdout.splitlines()) == 2


def test_a_date_alone_is_the_end_of_that_utc_day(chain):
    repo, _full, _incr, last, _tmp = chain
    day = last.finished_at[:10]
    assert Backups(None, repo).resolve_at(day).id == last.id
    with pytest.raises(NotFound):  # the day before every backup
        Backups(None, repo).resolve_at((datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat())


@pytest.mark.parametrize("text, says", [("yesterday", "not an ISO 8601 time"), ("2026-11-20T10:00", "no time zone"),
                                        ("2026-13-01", "not an ISO 8601 time")])
def test_an_unparsable_time_is_a_usage_error(chain, text, says):
    repo, _full, _incr, _last, tmp = chain
    proc = run("restore", "--at", text, "--repo", repo, "--target", str(tmp / "dst"))
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(UsageError, match=says):
        Backups(None, repo).resolve_at(text)


def test_an_id_and_at_together_or_neither_is_a_usage_error(chain):
    repo, full, _incr, _last, tmp = chain
    both = run("restore", full.id, "--at", full.finished_at, "--repo", repo, "--target", str(tmp / "dst"))
    neither = run("restore", "--repo", repo, "--target", str(tmp / "dst"))
    assert both.returncode == neither.returncode == 2
    assert "BACKUP_ID or --at" in both.stderr and "Traceback" not in both.stderr + neither.stderr
