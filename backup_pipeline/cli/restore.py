"""`backup-pipeline restore`: the state at a backup, into a target database."""

from __future__ import annotations

import sys

from ..api import Backups
from ..errors import ConflictError, UsageError
from ..engine.restore import MODES
from ..store.retry import retry_count
from .common import ID_HELP, add_repo_options, connection_arg, emit_json, progress, repository_settings


def add_parser(sub) -> None:
    p = sub.add_parser("restore", help="restore the state at a backup into a target database",
                       description="Replay the backup's chain into the target as raw objects, then partition "
                       "references, sequences and s3db.json, so s3db.js reads it as its own.")
    p.add_argument("backup_id", metavar="BACKUP_ID", nargs="?", help=ID_HELP + "; or give --at")
    p.add_argument("--at", metavar="TIME", help="point in time: the newest committed backup finished at or before "
                   "TIME (ISO 8601 with Z or an offset, e.g. 2026-11-20T10:00Z; a date alone is the end of that UTC day)")
    add_repo_options(p, locking=True)
    p.add_argument("--target", required=True, metavar="CONN", type=connection_arg,
                   help="s3db.js connection string of the target, or a folder path")
    p.add_argument("--resource", action="append", metavar="NAME")
    p.add_argument("--id", dest="ids", action="append", metavar="RECORD_ID",
                   help="restore only this record (repeat for several) of the one --resource, merged into the "
                   "target (mode merge; its other records and sequences stay); exit 3 when the backup lacks it")
    p.add_argument("--mode", choices=list(MODES), default=None,
                   help="safe (default; merge with --id): refuse a resource already holding records; replace: "
                   "delete them first; merge: overwrite same ids, keep others; skip: keep existing ids")
    p.add_argument("--dry-run", action="store_true", help="print what would be written and deleted; write nothing")
    p.add_argument("--verify", action="store_true",
                   help="read every restored object back from the target and compare it with the backup "
                   "(metadata, content type, body) before marking the target whole; exit 4 naming what differs")
    p.add_argument("--accept-empty-metadata-loss", action="store_true",
                   help="restore into a target that drops empty metadata values (SeaweedFS), losing the "
                   "backup's \"\" and [] fields; without it such a target is refused before anything is written")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if (args.backup_id is None) == (args.at is None):
        raise UsageError("restore: give a BACKUP_ID or --at TIME, one of the two")
    retries_before = retry_count()
    with Backups(None, repository_settings(args)) as b, progress(args) as bar:
        report = b.restore(args.backup_id, args.target, at=args.at, resources=args.resource, mode=args.mode,
                           dry_run=args.dry_run, progress=bar, verify=args.verify,
                           accept_empty_metadata_loss=args.accept_empty_metadata_loss, ids=args.ids)
    retries = retry_count() - retries_before  # storage requests sent again after a passing failure
    if report.point_in_time:  # which backup --at chose, also beside --json's stdout
        print(f"point in time {args.at}: backup {report.backup_id} (finished {report.point_in_time.finished_at})",
              file=sys.stderr)
    if args.json:
        emit_json({**report.as_json(), "retries": retries})
    else:
        verb = "would write" if args.dry_run else "wrote"
        print(f"restore of {report.backup_id} into {report.target} (mode {report.mode}, chain {' -> '.join(report.chain)})")
        for name, p in report.resources.items():
            print(f"  {name:<16} {verb} {p.written:,} records, {p.partition_refs:,} partition refs; "
                  f"deleted {p.deleted:,}; kept {p.kept_existing:,}"
                  + (f"; already identical {p.identical:,}" if report.mode == "merge" else "")
                  + (f"; read back {p.verified:,}" if args.verify else ""))
        if retries:
            print(f"  {retries} storage request(s) retried")
        lost = sum(p.empty_values_lost for p in report.resources.values())
        if lost:
            print(f"  {lost} empty metadata value(s) dropped by the target, as accepted")
        if report.refused:
            print(f"  the restore itself would refuse: {report.refused}")
    return ConflictError.exit_code if report.refused else 0  # a script learns the real run would fail
