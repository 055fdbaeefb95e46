"""What a restic user expects of names and defaults: `latest` and unique prefixes for backup ids,
the repository from $BACKUP_REPO, an error (not an empty table) for a repository that is not
there, and `status` printed for people."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson

from backup_pipeline import Backups
from s3db_fixtures import copy_fs_db

CLI = [sys.executable, "-m", "backup_pipeline.cli"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _two_backups(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    b = Backups(f"file://{src}", repo)
    return repo, b.backup("full"), b.backup("incremental")


def test_latest_and_unique_prefixes_name_backups(tmp_path):
    repo, full, incr = _two_backups(tmp_path)
    status = orjson.loads(run("status", "latest", "--repo", repo, "--json").stdout)
    assert status["id"] == incr.id
    prefix = full.id[:len("full-2")]  # "full-" alone is unique here too, but say a little more
    verified = run("verify", prefix, "--repo", repo)
    assert verified.returncode == 0 and full.id in verified.stdout
    restored = orjson.loads(run("restore", "latest", "--repo", repo, "--target", f"file://{tmp_path / 'dst'}",
                                "--json").stdout)
    assert restored["id"] == incr.id and restored["chain"] == [full.id, incr.id]
    assert Backups(None, repo).resolve("incr") == incr.id  # the API takes the same names


def test_an_ambiguous_or_unknown_prefix_is_a_named_error(tmp_path):
    repo, full, incr = _two_backups(tmp_path)
    ambiguous = run("status", "", "--repo", repo)
    unknown = run("status", "nope", "--repo", repo)
    assert unknown.returncode == 3 and "'nope' not found" in unknown.stderr and "latest" in unknown.stderr
    assert "Traceback" not in ambiguous.stderr + unknown.stderr
    Backups(f"file://{tmp_path / 'src'}", repo).backup("full")  # two fulls now
    two = run("status", "full-", "--repo", repo)
    assert two.returncode == 2 and "ambiguous" in two.stderr and full.id in two.stderr


def test_the_repository_comes_from_backup_repo(tmp_path):
    repo, _full, incr = _two_backups(tmp_path)
    listed = run("list", "--json", env={"BACKUP_REPO": repo})
    assert listed.returncode == 0 and [b["id"] for b in orjson.loads(listed.stdout)][-1] == incr.id
    missing = run("list", env={"BACKUP_REPO": ""})
    assert missing.returncode == 2 and "--repo" in missing.stderr and "BACKUP_REPO" in missing.stderr


def test_listing_a_repository_that_is_not_there_fails(tmp_path):
    proc = run("list", "--repo", str(tmp_path / "does" / "not" / "exist"))
    assert proc.returncode == 3 and "does not exist" in proc.stderr and proc.stdout == ""


def test_status_reads_like_text_not_python(tmp_path):
    repo, full, _incr = _two_backups(tmp_path)
    out = run("status", full.id, "--repo", repo).stdout
    assert "None" not in out and "['" not in out and "True" not in out
    lines = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert lines["parent"] == "-" and "users" in lines["resources"] and lines["state"] == "complete"


def test_every_command_describes_itself_in_help():
    described = {"list": "List the backups of a repository", "status": "Show one backup",
                 "verify": "Check a backup's files against its manifest", "copy": "Copy every file of a committed"}
    for command, words in described.items():
        text = run(command, "--help").stdout
        assert words in text, (command, text[:400])
        assert "latest" in text or command == "list"  # the id argument says what it accepts


def test_errors_are_one_line_with_a_suggestion_for_typos(tmp_path):
    typo = run("bakup")
    assert typo.returncode == 2 and "did you mean 'backup'?" in typo.stderr
    missing = run("backup", "--repo", str(tmp_path / "repo"), env={"BACKUP_SOURCE": "", "S3DB_SOURCE": ""})
    assert missing.returncode == 2 and "no source: give --source CONN (or set $BACKUP_SOURCE)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "usage:" not in missing.stderr


def test_the_source_comes_from_backup_source_as_the_repository_from_backup_repo(tmp_path):
    src = copy_fs_db(tmp_path / "src")
    env = {"BACKUP_SOURCE": str(src), "BACKUP_REPO": str(tmp_path / "repo")}
    backed = run("backup", "--json", env=env)
    assert backed.returncode == 0, backed.stderr
    assert orjson.loads(backed.stdout)["resources"]["users"]["records"] == 4
    shown = run("inspect", "--resource", "users", env=env)
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 4


def test_plain_paths_name_folder_databases(tmp_path):
    """--source and --target take a folder path as --repo does (no file:// needed)."""
    src = copy_fs_db(tmp_path / "src")
    repo = str(tmp_path / "repo")
    backed = run("backup", "--source", str(src), "--repo", repo, "--json")
    assert backed.returncode == 0, backed.stderr
    restored = run("restore", "latest", "--repo", repo, "--target", str(tmp_path / "dst"), "--json")
    assert restored.returncode == 0 and orjson.loads(restored.stdout)["totals"]["written"] == 27
    assert (tmp_path / "dst" / "s3db.json").is_file()


def test_read_only_commands_show_no_write_options():
    for command in ("list", "status", "verify"):
        text = run(command, "--help").stdout
        assert "--strategy" not in text and "--max-uploads" not in text, command
        # verify --budget holds the repository's verify lease (it records outcomes): it may wait for it
        assert ("--lock-wait" in text) == (command == "verify"), command
    assert "--lock-wait" in run("restore", "--help").stdout and "--strategy" in run("backup", "--help").stdout


def test_a_dry_run_into_a_target_holding_records_shows_the_plan(tmp_path):
    """restore --dry-run shows what would be written even where safe mode would refuse, says so,
    and exits 5 as the real run would; nothing is written."""
    repo, _full, _incr = _two_backups(tmp_path)
    target = tmp_path / "dst"
    assert run("restore", "latest", "--repo", repo, "--target", str(target)).returncode == 0
    before = sorted(p.name for p in (target / "resource=users" / "data").iterdir())
    dry = run("restore", "latest", "--repo", repo, "--target", str(target), "--dry-run")
    assert dry.returncode == 5, dry.stderr
    assert "would write" in dry.stdout and "would refuse" in dry.stdout and "--mode replace" in dry.stdout
    as_json = run("restore", "latest", "--repo", repo, "--target", str(target), "--dry-run", "--json")
    assert as_json.returncode == 5 and "users" in orjson.loads(as_json.stdout)["refused"]
    assert sorted(p.name for p in (target / "resource=users" / "data").iterdir()) == before


def test_skip_if_unchanged_commits_nothing_until_something_changes(tmp_path):
    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    full = Backups(f"file://{src}", repo).backup("full")
    args = ("backup", "--source", f"file://{src}", "--repo", repo, "--type", "incremental", "--skip-if-unchanged")
    same = run(*args)
    assert same.returncode == 0 and f"no change since backup {full.id}: nothing committed" in same.stdout
    assert [i.id for i in Backups(None, repo).list()] == [full.id]  # no backup, no leftover folder either
    assert sorted(p.name for p in (tmp_path / "repo").iterdir() if p.name.startswith(("full", "incr"))) == [full.id]
    for name in ("id=u1", "id=u1.meta.json"):  # a record deleted from the source
        (src / "resource=users" / "data" / name).unlink()
    changed = orjson.loads(run(*args, "--json").stdout)
    assert not changed["skipped_unchanged"] and changed["parent"] == full.id
    assert changed["resources"]["users"]["tombstones"] == 1


def test_backup_dry_run_says_what_the_backup_would_take_and_writes_nothing(tmp_path):
    from backup_pipeline.store import open_store

    src, repo = copy_fs_db(tmp_path / "src"), str(tmp_path / "repo")
    args = ("backup", "--source", str(src), "--repo", repo, "--dry-run", "--json")
    first = orjson.loads(run(*args).stdout)
    assert first["type"] == "full" and first["resources"]["users"]["objects"] == 4
    assert not (tmp_path / "repo").exists()  # nothing written, not even the repository
    full = Backups(f"file://{src}", repo).backup("full")
    store = open_store(f"file://{src}")
    changed = store.get("resource=users/data/id=u2")
    changed.metadata["1"], changed.last_modified = "changed", None
    store.put(changed)
    store.delete("resource=users/data/id=u1")
    plan = orjson.loads(run(*args, "--type", "incremental").stdout)
    assert plan["parent"] == full.id
    assert plan["resources"]["users"] == {"objects": 3, "unchanged": 2, "to_fetch": 1, "deleted": 1}
    assert [i.id for i in Backups(None, repo).list()] == [full.id]
    real = Backups(f"file://{src}", repo).backup("incremental").resources["users"]
    assert (real.records, real.tombstones) == (1, 1)  # what the dry run said


def test_a_backup_or_a_repository_given_as_source_is_named_for_what_it_is(tmp_path):
    repo, full, _incr = _two_backups(tmp_path)
    one = run("inspect", "--source", f"{repo}/{full.id}")
    assert one.returncode == 2 and "is a backup" in one.stderr and f"restore {full.id} --repo {repo}" in one.stderr
    assert "remove the file" not in one.stderr  # never advise deleting the manifest
    whole = run("backup", "--source", repo, "--repo", str(tmp_path / "other"))
    assert whole.returncode == 3 and "it is a backup repository, give it as --repo" in whole.stderr
