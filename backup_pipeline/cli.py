"""`backup-pipeline`: a thin command line over the engine. Exit codes are in README.md."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from . import __version__
from .cli_athena import add_athena_parser
from .cli_cleanup import add_cleanup_parser
from .cli_repo import add_repo_options, open_repo
from .errors import BackupPipelineError

PASSPHRASE_ENV = "S3DB_PASSPHRASE"


def _add_inspect(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="print every record of an s3db.js database, decoded, one JSON object per line",
        description="Print the records of the chosen resources exactly as a fresh s3db.js list() returns "
        "them (one JSON object per line, in list order, with a \"_resource\" key). "
        "Secrets are decrypted only when a passphrase is given.",
    )
    p.add_argument("--source", required=True, metavar="CONN", help="s3db.js connection string (file://, s3://, http(s)://)")
    p.add_argument("--resource", action="append", metavar="NAME", help="only this resource (repeatable); default: all")
    p.add_argument("--passphrase", metavar="P", default=None,
                   help=f"passphrase for secret fields (default: ${PASSPHRASE_ENV} if set; else secrets stay encrypted)")
    p.add_argument("--summary", action="store_true", help="print resources with record counts instead of records")
    p.add_argument("--clean", action="store_true",
                   help="the intended values instead of s3db.js get()'s double-decoded ones (SPEC §11)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    from .engine.inspect import iter_records, summarize
    from .store import open_store

    store = open_store(args.source)
    try:
        out = sys.stdout.buffer
        if args.summary:
            rows = summarize(store, args.resource)
            width = max([len(r.name) for r in rows] + [8])
            out.write(f"{'resource':<{width}}  {'records':>8}  behavior        version  partitions\n".encode())
            for r in rows:
                out.write(f"{r.name:<{width}}  {r.records:>8}  {r.behavior:<14}  {r.version:<7}  {r.partitions:>10}\n".encode())
            out.write(f"{'total':<{width}}  {sum(r.records for r in rows):>8}\n".encode())
            return 0
        passphrase = args.passphrase if args.passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        mode = "clean" if args.clean else "exact"
        for resource, record in iter_records(store, args.resource, passphrase=passphrase, mode=mode):
            out.write(orjson.dumps({"_resource": resource, **record}) + b"\n")
        out.flush()
        return 0
    finally:
        store.close()


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the embedded default (a local demo database)",
        description="Create ./demo/db (a real s3db.js database in the filesystem layout) if missing, "
        "then run the main job on it and say where everything is.",
    )
    p.add_argument("--dir", default="demo", help="folder for the demo database and backups (default ./demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    """The main job, the Dagster backup job, run in process on the embedded default: the demo
    database, the latest daily partition, a persistent Dagster instance under demo/ (so
    `dagster dev` then shows the run, its materializations and checks)."""
    import warnings
    from pathlib import Path

    warnings.filterwarnings("ignore")
    demo = Path(args.dir).resolve()
    from .demo import ensure_demo_database

    db = ensure_demo_database(demo)
    conn, repo = f"file://{db}", str(demo / "backups")
    home = demo / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)

    import dagster as dg

    from .definitions import build_definitions
    from .defs.assets import daily

    defs = build_definitions(source=conn, repos=[repo])
    day = daily.get_last_partition_key()
    print(f"demo database: {conn}\nbackup repository: {repo}\nrunning s3db_backup_job for partition {day} ...")
    from .api import Backups

    done = [m for m in Backups(None, repo).list() if m.state == "complete" and m.id.split("-", 1)[1].startswith(day)]
    if done:
        print(f"the backup of {day} is already committed: {done[0].id} ({repo}/{done[0].id}); "
              "a committed backup is never rewritten")
    else:
        with dg.DagsterInstance.get() as instance:
            result = defs.get_job_def("s3db_backup_job").execute_in_process(
                partition_key=day, instance=instance, raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        if not result.success:
            print(f"the run failed (run id {result.run_id}); see it in the UI below", file=sys.stderr)
            return 1
        manifest = next(m for m in Backups(None, repo).list() if m.id.split("-", 1)[1].startswith(day))
        print(f"backup {manifest.id} ({manifest.type}) committed: {manifest.records:,} records, "
              f"{_human_bytes(manifest.bytes)}; {sum(c.passed for c in checks)}/{len(checks)} DuckDB checks passed")
        print(f"backup folder: {repo}/{manifest.id}")
    print("open the UI (the run, the assets and their checks are there):")
    print(f"  DAGSTER_HOME={home} S3DB_SOURCE={conn} BACKUP_REPO={repo} \\")
    print("    .venv/bin/dagster dev -w dagster_workspace.yaml   # then http://127.0.0.1:3000")
    print("or from the shell:")
    print(f"  .venv/bin/backup-pipeline list --repo {repo}")
    print(f"  .venv/bin/backup-pipeline inspect --source {conn} --resource users")
    return 0


def _progress(args):
    """Progress bars on a terminal; nothing when --json or when stderr is not a terminal."""
    from contextlib import nullcontext

    from .engine.progress import Progress

    if getattr(args, "json", False) or not sys.stderr.isatty():
        return nullcontext(Progress())
    from .cli_progress import TerminalProgress

    return TerminalProgress()


def _emit_json(data) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _add_backup(sub) -> None:
    p = sub.add_parser("backup", help="back up an s3db.js database into a repository",
                       description="Stream every record of the chosen resources into RESOURCE.jsonl.gz files "
                       "and commit the backup with its manifest (s3db.json), written last.")
    p.add_argument("--source", required=True, metavar="CONN", help="s3db.js connection string")
    add_repo_options(p, writing=True)
    p.add_argument("--type", choices=["full", "incremental"], default="full")
    p.add_argument("--resource", action="append", metavar="NAME", help="only this resource (repeatable)")
    p.add_argument("--exclude", action="append", metavar="NAME", help="leave this resource out (repeatable)")
    p.add_argument("--compression", choices=["gzip", "zstd", "brotli", "none"], default="gzip")
    p.add_argument("--parquet", action="store_true", help="also write a typed Parquet mirror RESOURCE.parquet")
    p.add_argument("--no-verify", action="store_true", help="skip re-reading the files before committing")
    p.add_argument("--decrypt-secrets", action="store_true",
                   help="decrypt secret fields in the decoded view (needs --passphrase); raw objects stay encrypted")
    p.add_argument("--passphrase", metavar="P", default=None, help=f"passphrase for secrets (default ${PASSPHRASE_ENV})")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="record unreadable source objects in the manifest and go on, instead of failing")
    p.add_argument("--full-if-no-parent", action="store_true",
                   help="with --type incremental: take a full backup when there is no parent")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_backup)


def _backups(args, source: str | None = None):
    from .api import Backups

    passphrase = getattr(args, "passphrase", None)
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV)
    return Backups(source=source, repo=open_repo(args), passphrase=passphrase, lock_wait=args.lock_wait)


def cmd_backup(args) -> int:
    if args.decrypt_secrets and not (args.passphrase or os.environ.get(PASSPHRASE_ENV)):
        from .errors import UsageError

        raise UsageError(f"--decrypt-secrets needs --passphrase (or ${PASSPHRASE_ENV})")
    with _backups(args, args.source) as b, _progress(args) as progress:
        manifest = b.backup(
            args.type, resources=args.resource, exclude=args.exclude, compression=args.compression,
            verify=not args.no_verify, decrypt_secrets=args.decrypt_secrets, skip_corrupt=args.skip_corrupt,
            full_if_no_parent=args.full_if_no_parent, progress=progress, parquet=args.parquet,
        )
    summary = {
        "id": manifest["id"], "type": manifest["type"], "parent": manifest["parent"],
        "repo": b.repo.url, "selective": manifest["selective"], "verified": manifest.get("verified", False),
        "startedAt": manifest["startedAt"], "finishedAt": manifest["finishedAt"],
        "resources": {
            name: {k: r.get(k) for k in ("records", "tombstones", "unchanged", "bytes", "sha256", "file", "snapshot")}
            | ({"skipped_corrupt": r["skipped_corrupt"]} if r.get("skipped_corrupt") else {})
            for name, r in manifest["resources"].items()
        },
        "totals": manifest["totals"],
    }
    if args.json:
        _emit_json(summary)
    else:
        t = manifest["totals"]
        print(f"backup {manifest['id']} ({manifest['type']}"
              + (f", parent {manifest['parent']}" if manifest["parent"] else "") + f") committed in {b.repo.url}")
        print(f"  {len(manifest['resources'])} resources, {t['records']:,} records, {t['tombstones']:,} tombstones, "
              f"{_human_bytes(t['bytes'])}" + (", verified" if manifest.get("verified") else ""))
    return 0


def _add_catalog(sub) -> None:
    p = sub.add_parser("list", help="list the backups of a repository (complete, incomplete, failed)")
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("status", help="show one backup")
    p.add_argument("backup_id", metavar="BACKUP_ID")
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("verify", help="check a backup's files against its manifest, and its chain")
    p.add_argument("backup_id", metavar="BACKUP_ID")
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def cmd_list(args) -> int:
    with _backups(args) as b:
        infos = b.list()
    if args.json:
        _emit_json([i.as_json() for i in infos])
        return 0
    print(f"{'id':<36} {'state':<10} {'type':<11} {'parent':<36} {'records':>9} {'size':>10}  finished")
    for i in infos:
        print(f"{i.id:<36} {i.state:<10} {i.type or '-':<11} {i.parent or '-':<36} "
              f"{i.records if i.records is not None else '-':>9} {_human_bytes(i.bytes):>10}  {i.finished_at or i.error or '-'}")
    return 0


def cmd_status(args) -> int:
    with _backups(args) as b:
        info = b.status(args.backup_id)
    if args.json:
        _emit_json(info.as_json())
    else:
        for k, v in info.as_json().items():
            print(f"{k:<12} {v}")
    return 0 if info.state == "complete" else 4


def cmd_verify(args) -> int:
    with _backups(args) as b:
        report = b.verify(args.backup_id)
    if args.json:
        _emit_json(report.as_json())
    else:
        print(f"backup {report.backup_id}: ok ({report.files} files, {_human_bytes(report.bytes)}, chain {' -> '.join(report.chain)})")
    return 0


def _add_restore(sub) -> None:
    p = sub.add_parser("restore", help="restore the state at a backup into a target database",
                       description="Replay the backup's chain into the target as raw objects, then partition "
                       "references, sequences and s3db.json, so s3db.js reads it as its own.")
    p.add_argument("backup_id", metavar="BACKUP_ID")
    add_repo_options(p)
    p.add_argument("--target", required=True, metavar="CONN", help="s3db.js connection string of the target")
    p.add_argument("--resource", action="append", metavar="NAME")
    p.add_argument("--mode", choices=["safe", "replace", "merge", "skip"], default="safe",
                   help="safe (default): refuse a resource already holding records; replace: delete them first; "
                   "merge: overwrite same ids, keep others; skip: keep existing ids")
    p.add_argument("--dry-run", action="store_true", help="print what would be written and deleted; write nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_restore)


def cmd_restore(args) -> int:
    with _backups(args) as b, _progress(args) as progress:
        report = b.restore(args.backup_id, args.target, resources=args.resource, mode=args.mode,
                           dry_run=args.dry_run, progress=progress)
    data = report.as_json()
    if args.json:
        _emit_json(data)
    else:
        verb = "would write" if args.dry_run else "wrote"
        print(f"restore of {report.backup_id} into {report.target} (mode {report.mode}, chain {' -> '.join(report.chain)})")
        for name, p in data["resources"].items():
            print(f"  {name:<16} {verb} {p['written']:,} records, {p['partition_refs']:,} partition refs; "
                  f"deleted {p['deleted']:,}; kept {p['kept_existing']:,}")
    return 0


def _add_copy(sub) -> None:
    p = sub.add_parser("copy", help="copy a committed backup to another repository (completes a destination)",
                       description="Copy every file of a committed backup, then its manifest last, from one "
                       "repository to another; a destination that missed a backup is completed this way.")
    p.add_argument("backup_id", metavar="BACKUP_ID")
    add_repo_options(p, dest="src", flag="--from")
    p.add_argument("--to", dest="dst", action="append", required=True, metavar="REPO", help="destination repository")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_copy)


def cmd_copy(args) -> int:
    import argparse as _argparse

    from .repository.multi import copy_backup

    src = open_repo(args, dest="src")
    dst = open_repo(_argparse.Namespace(**{**vars(args), "encrypt": False}), dest="dst")
    copied = copy_backup(src, dst, args.backup_id)
    if args.json:
        _emit_json({"id": args.backup_id, "from": src.url, "to": dst.url, "copied": copied})
    else:
        print(f"backup {args.backup_id}: " + (f"copied {len(copied)} files to {dst.url}" if copied
                                              else f"already complete in {dst.url}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backup-pipeline",
        description="Back up and restore s3db.js databases (filesystem layout or S3).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_backup(sub)
    _add_restore(sub)
    _add_catalog(sub)
    add_cleanup_parser(sub)
    _add_copy(sub)
    add_athena_parser(sub)
    _add_inspect(sub)
    _add_demo(sub)
    return parser


def _storage_error(exc: Exception) -> str | None:
    """A one-line message for an S3 or network error (credentials, permissions, endpoint)."""
    module = type(exc).__module__ or ""
    if not (module.startswith(("obstore", "botocore", "boto3")) or isinstance(exc, (ConnectionError, TimeoutError))):
        return None
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = ""
    low = str(exc).lower()
    if "signaturedoesnotmatch" in low or "invalidaccesskeyid" in low or "403" in low or "forbidden" in low:
        hint = " (check the access key and secret: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the connection string)"
    elif "connect" in low or "dns" in low:
        hint = " (check the endpoint: AWS_ENDPOINT_URL or --endpoint-url)"
    return f"storage error: {text[:400]}{hint}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BackupPipelineError as exc:
        print(f"backup-pipeline: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001
        storage = _storage_error(exc)
        if storage is None:
            raise
        print(f"backup-pipeline: error: {storage}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `backup-pipeline inspect ... | head`: the reader left, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("backup-pipeline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
