"""The Dagster front end and the CLI are equal: the same settings, the same lease."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import warnings

import dagster as dg

from backup_pipeline.cli import build_parser
from backup_pipeline.cli.common import repository_settings, source_settings
from backup_pipeline.definitions import build_definitions
from backup_pipeline.defs.jobs import RestoreConfig, VerifyConfig
from backup_pipeline.defs.resources import BackupRepository, Retention, S3dbSource
from backup_pipeline.repository import FilesystemRepository
from backup_pipeline.settings import RepositorySettings, RetentionSettings, SourceSettings, field_names
from s3db_fixtures import copy_fs_db

warnings.filterwarnings("ignore", category=dg.PreviewWarning) if hasattr(dg, "PreviewWarning") else None
CLI = [sys.executable, "-m", "backup_pipeline.cli"]
DAY = "2026-11-22"


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions if a.dest != "help"}


# CLI options that describe one run, not a setting: Dagster has them as run config, the asset
# selection or the partition. skip_if_unchanged: a Dagster partition commits its day's backup
# whatever changed (the partition is the record that the day was backed up).
PER_RUN = {"type", "resource", "exclude", "full_if_no_parent", "json", "backup_id", "apply", "at", "skip_if_unchanged"}


def test_dagster_resources_take_every_option_the_cli_takes():
    dagster_fields = set(BackupRepository.model_fields) | set(S3dbSource.model_fields) | set(Retention.model_fields)
    for command in ("backup", "restore", "list", "verify", "cleanup", "athena-ddl"):
        dests = _dests(_subparser(command)) - PER_RUN
        dests = {"verify" if d == "no_verify" else d for d in dests}  # --no-verify sets verify = false
        # the restore job's and the verify job's run config
        run_config = set({"restore": RestoreConfig, "verify": VerifyConfig}.get(command, dg.Config).model_fields)
        missing = {d for d in dests if d not in dagster_fields | run_config} - {
            "dry_run", "database", "location_prefix", "resources", "summary", "clean"}
        assert missing == set(), f"{command}: the Dagster resources lack {sorted(missing)}"
    # and every setting (the one path from options to engine objects) is a resource field
    assert set(field_names(RepositorySettings)) <= set(BackupRepository.model_fields)
    assert set(field_names(SourceSettings)) <= set(S3dbSource.model_fields)
    assert set(field_names(RetentionSettings)) <= set(Retention.model_fields)


def test_the_same_options_make_the_same_settings(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"k" * 32)
    options = {"strategy": "any", "max_uploads": 3, "endpoint_url": "http://127.0.0.1:9", "region": "eu-west-1",
               "profile": "backups", "storage_class": "STANDARD_IA", "sse": "aws:kms", "sse_kms_key_id": "alias/k",
               "repo_passphrase": "pw", "repo_key_file": str(key_file), "lock_wait": 12.5,
               "object_lock": "compliance", "object_lock_days": 30}
    argv = ["backup", "--source", "file:///db", "--passphrase", "s3cret", "--decrypt-secrets",
            "--repo", "s3://b/one", "--repo", "s3://b/two"]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    args = build_parser().parse_args(argv)
    from_cli = repository_settings(args)
    from_dagster = BackupRepository(repos=["s3://b/one", "s3://b/two"], **options).settings()
    assert from_cli == from_dagster
    assert from_cli.raw_key() == b"k" * 32 and from_cli.lock.wait == 12.5
    assert source_settings(args) == S3dbSource(connection="file:///db", passphrase="s3cret",
                                               decrypt_secrets=True).settings()


def test_a_staged_step_holds_the_lease_against_a_cli_backup(tmp_path):
    """A Dagster run is kept apart from a CLI backup of the same source as two CLI runs are:
    while a resource step works, `backup-pipeline backup` fails with exit code 7."""
    src = copy_fs_db(tmp_path / "src")
    data = src / "resource=users" / "data"
    # one more object whose sidecar is a FIFO: the step reading it waits for the test to write it
    shutil.copy(data / "id=u1", data / "id=u9")
    sidecar = (data / "id=u1.meta.json").read_bytes()
    fifo = data / "id=u9.meta.json"
    os.mkfifo(fifo)
    repo = tmp_path / "repo"
    defs = build_definitions(source=f"file://{src}", repos=[str(repo)])
    results = {}

    def run_job():
        results["run"] = defs.get_job_def("s3db_backup_job").execute_in_process(
            partition_key=DAY, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    job = threading.Thread(target=run_job)
    job.start()
    opened = {}
    opener = threading.Thread(target=lambda: opened.setdefault("fd", os.open(fifo, os.O_WRONLY)))
    opener.start()  # returns once the users step opens the sidecar: it is mid-step, lease held
    opener.join(timeout=120)
    assert "fd" in opened, "the users step never read its objects"
    try:
        cli = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo)],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 7, cli.stderr
        assert "backup lock on file://" in cli.stderr and "held by backup" in cli.stderr
        listed = [n for n in FilesystemRepository(repo).list_root("locks/")]
        assert len(listed) == 1  # the run's lease; the refused CLI run left nothing
    finally:
        os.write(opened["fd"], sidecar)
        os.close(opened["fd"])
    job.join(timeout=300)
    assert results["run"].success
    assert FilesystemRepository(repo).list_root("locks/") == []  # released at the commit
    fifo.unlink()
    fifo.write_bytes(sidecar)
    cli = subprocess.run([*CLI, "backup", "--source", f"file://{src}", "--repo", str(repo)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
