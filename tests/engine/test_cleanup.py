"""Retention on a real repository: real backups of the fixture database, spread over days."""

from __future__ import annotations

import argparse
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from backup_pipeline import Backups
from backup_pipeline.cli.cleanup import add_parser as add_cleanup_parser, run as cmd_cleanup
from backup_pipeline.engine.cleanup import apply_cleanup, catalog_entries, plan_cleanup
from backup_pipeline.engine.retention import Decision, RetentionPolicy
from backup_pipeline.errors import ConflictError, UsageError
from backup_pipeline.repository import open_repository
from backup_pipeline.store import open_store
from s3db_fixtures import copy_fs_db

from helpers import snapshot

NOW = datetime(2030, 3, 20, 12, tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def set_started(repo: str, backup_id: str, when: datetime) -> None:
    path = Path(repo) / backup_id / "s3db.json"
    m = orjson.loads(path.read_bytes())
    m["startedAt"], m["finishedAt"] = iso(when), iso(when + timedelta(seconds=5))
    path.write_bytes(orjson.dumps(m, option=orjson.OPT_INDENT_2))


@pytest.fixture
def source(tmp_path):
    return open_store(f"file://{copy_fs_db(tmp_path / 'src')}")


@pytest.fixture
def repo(tmp_path):
    return str(tmp_path / "repo")


@pytest.fixture
def history(source, repo):
    """full A (day -10), incr B (-9), incr C (-8), full D (-3), incr E (-2), an old incomplete backup,
    an old failed one and a fresh incomplete one. Returns {name: id}."""
    b = Backups(source, repo)
    ids = {}
    for name, kind, days in (("A", "full", 10), ("B", "incremental", 9), ("C", "incremental", 8),
                             ("D", "full", 3), ("E", "incremental", 2)):
        m = b.backup(kind)
        set_started(repo, m["id"], NOW - timedelta(days=days))  # so the next incremental's parent is this one
        ids[name] = m["id"]
    r = open_repository(repo)
    for name, bid, failed, written in (("old_incomplete", "full-2030-03-15T010000Z-dead", False, 5 * 24 + 11),
                                       ("old_failed", "incr-2030-03-16T010000Z-beef", True, 4 * 24 + 11),
                                       ("new_incomplete", "full-2030-03-20T110000Z-cafe", False, 1)):
        with r.create_file(bid, "users.jsonl.gz") as f:
            f.write(b"partial")
        if failed:
            with r.create_file(bid, "failure.json") as f:
                f.write(orjson.dumps({"error": "boom", "type": "RuntimeError", "at": "2030-03-16T01:00:05.000Z"}))
        stamp = (NOW - timedelta(hours=written)).timestamp()  # its last activity, `written` hours before NOW
        for p in (Path(repo) / bid).iterdir():
            os.utime(p, (stamp, stamp))
        ids[name] = bid
    assert b.status(ids["C"]).parent == ids["B"] and b.status(ids["E"]).parent == ids["D"]
    return ids


def files_of(repo: str) -> set[str]:
    return {str(p.relative_to(repo)) for p in Path(repo).rglob("*")}


def test_catalog_entries_read_chains_and_times(repo, history):
    entries = {e.id: e for e in catalog_entries(open_repository(repo), NOW)}
    assert entries[history["C"]].chain == [history["A"], history["B"], history["C"]]
    assert entries[history["D"]].started_at == NOW - timedelta(days=3)
    assert entries[history["old_failed"]].state == "failed"
    assert entries[history["old_incomplete"]].started_at == datetime(2030, 3, 15, 1, tzinfo=timezone.utc)


def test_dry_run_deletes_nothing(repo, history):
    before = files_of(repo)
    decisions = Backups(None, repo).cleanup(RetentionPolicy(keep_last=1), now=NOW)
    assert files_of(repo) == before
    d = {x.id: x for x in decisions}
    assert d[history["E"]].reasons == ["newest", "last #1"]
    assert d[history["D"]].reasons == [f"needed by incremental {history['E']}"]
    assert {x.id for x in decisions if x.action == "remove"} == {
        history[n] for n in ("A", "B", "C", "old_incomplete", "old_failed")}
    assert d[history["new_incomplete"]].reasons == ["incomplete, within grace (written 1h ago)"]
    assert d[history["old_failed"]].reasons == ["failed, older than grace 24h"]


def test_apply_deletes_exactly_the_removed_and_kept_incrementals_still_restore(source, repo, history, tmp_path):
    b = Backups(None, repo)
    plan = b.cleanup(RetentionPolicy(keep_last=1), now=NOW)
    decisions = b.cleanup(RetentionPolicy(keep_last=1), apply=True, now=NOW)
    assert [(d.id, d.action, d.reasons) for d in decisions] == [(d.id, d.action, d.reasons) for d in plan]
    removed = {d.id for d in decisions if d.action == "remove"}
    left = {i.id for i in b.list()}
    assert left == {d.id for d in decisions if d.action == "keep"}
    assert not (left & removed) and not any((Path(repo) / bid).exists() for bid in removed)
    report = b.verify(history["E"])
    assert report.chain == [history["D"], history["E"]]
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    b.restore(history["E"], target)
    assert snapshot(target) == snapshot(source)
    # run again: nothing more to remove
    again = b.cleanup(RetentionPolicy(keep_last=1), apply=True, now=NOW)
    assert all(d.action == "keep" for d in again)


def test_daily_policy_keeps_a_chain_in_the_middle(source, repo, history, tmp_path):
    b = Backups(None, repo)
    policy = RetentionPolicy(keep_daily=1, keep_within=timedelta(days=8))
    decisions = {d.id: d for d in b.cleanup(policy, apply=True, now=NOW)}
    # C (day -8) is within 8d: its chain A, B stays; D, E stay by newest / daily / chain
    assert decisions[history["A"]].reasons == [f"needed by incremental {history['C']}",
                                               f"needed by incremental {history['B']}"]
    assert decisions[history["C"]].reasons == ["within 8d"]
    assert decisions[history["E"]].reasons == ["newest", "daily #1", "within 8d"]
    left = {i.id for i in b.list()}
    assert left == {history[n] for n in ("A", "B", "C", "D", "E", "new_incomplete")}
    assert b.verify(history["C"]).chain == [history["A"], history["B"], history["C"]]
    target = open_store(f"file://{tmp_path / 'dst'}", create=True)
    b.restore(history["C"], target)
    assert snapshot(target) == snapshot(source)


def test_apply_removes_children_before_parents(repo, history):
    r = open_repository(repo)
    decisions = plan_cleanup(r, RetentionPolicy(keep_last=1), NOW)
    order = apply_cleanup(r, decisions)
    chain_order = [bid for bid in order if bid in {history[n] for n in "ABC"}]
    assert chain_order == [history["C"], history["B"], history["A"]]


def test_apply_refuses_a_stale_plan_that_would_orphan_an_incremental(repo, history):
    r = open_repository(repo)
    stale = [Decision(history["D"], "remove", ["no rule keeps it"]), Decision(history["E"], "keep", ["newest"])]
    before = files_of(repo)
    with pytest.raises(ConflictError, match="plan the cleanup again"):
        apply_cleanup(r, stale)
    assert files_of(repo) == before


def test_no_policy_removes_nothing(repo, history):
    before = files_of(repo)
    decisions = Backups(None, repo).cleanup(RetentionPolicy(), apply=True, now=NOW)
    assert all(d.action == "keep" and d.reasons[0] == "no policy" for d in decisions)
    assert files_of(repo) == before


# -- the command ----------------------------------------------------------------------------

def run(argv, now=NOW):
    parser = argparse.ArgumentParser(prog="backup-pipeline")
    add_cleanup_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.now = now
    return args.func(args)


def test_cli_dry_run_prints_a_table_and_the_apply_hint(repo, history, capsys):
    before = files_of(repo)
    assert run(["cleanup", "--repo", repo, "--keep-last", "1"]) == 0
    out = capsys.readouterr().out
    assert files_of(repo) == before
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "action", "state"]
    row = {line.split()[0]: line for line in lines[1:-1]}
    assert set(row) == set(history.values())
    assert " remove " in row[history["A"]] and "no rule keeps it" in row[history["A"]]
    assert " keep " in row[history["D"]] and f"needed by incremental {history['E']}" in row[history["D"]]
    assert "failed, older than grace 24h" in row[history["old_failed"]]
    assert "--apply" in lines[-1] and "would remove 5" in lines[-1]


def test_cli_json_and_apply(repo, history, capsys):
    assert run(["cleanup", "--repo", repo, "--keep-daily", "1", "--timezone", "Europe/Paris", "--json"]) == 0
    captured = capsys.readouterr()
    data = orjson.loads(captured.out)
    assert [d["id"] for d in data][:2] == [history["new_incomplete"], history["E"]]
    assert {d["action"] for d in data} == {"keep", "remove"}
    assert all(set(d) >= {"id", "action", "reasons"} for d in data)
    assert "--apply" in captured.err
    to_remove = {d["id"] for d in data if d["action"] == "remove"}
    assert run(["cleanup", "--repo", repo, "--keep-daily", "1", "--timezone", "Europe/Paris", "--apply"]) == 0
    out = capsys.readouterr().out
    assert f"removed {len(to_remove)} backup(s)" in out.splitlines()[-1]
    assert {i.id for i in Backups(None, repo).list()} == {d["id"] for d in data if d["action"] == "keep"}


@pytest.mark.parametrize("argv, match", [
    (["--keep-within", "7x"], "duration"), (["--grace", "soon"], "duration"),
    (["--keep-last", "1", "--timezone", "Nowhere/Town"], "timezone"), (["--keep-daily", "-1"], "keep-daily"),
])
def test_cli_bad_options_are_usage_errors(repo, history, argv, match):
    with pytest.raises(UsageError, match=match):
        run(["cleanup", "--repo", repo, *argv])
