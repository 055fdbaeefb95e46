"""`backup-pipeline drill`: restore a backup into a scratch target and compare every record with it."""

from __future__ import annotations

import sys

from ..api import Backups
from ..errors import DrillFailed
from .common import ID_HELP, add_repo_options, connection_arg, emit_json, progress, repository_settings


def add_parser(sub) -> None:
    text = "restore a backup into a scratch target and compare every record read back with the backup"
    p = sub.add_parser("drill", help=text, description=text.capitalize() + " (exit 4 naming resource and id of "
                       "what differs); the scratch target is removed afterwards.")
    p.add_argument("backup_id", metavar="BACKUP_ID", nargs="?", default="latest", help=ID_HELP + " (default latest)")
    add_repo_options(p, locking=True)
    p.add_argument("--scratch", metavar="CONN", type=connection_arg,
                   help="an empty target to restore into (folder path or connection string), emptied afterwards; "
                   "default a temporary folder, removed afterwards")
    p.add_argument("--keep-scratch", action="store_true", help="leave the scratch target as restored, to inspect it")
    p.add_argument("--passphrase", metavar="P", default=None,
                   help="s3db.js secrets passphrase, for a backup taken with --decrypt-secrets (default $S3DB_PASSPHRASE)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    failed = None
    with Backups(None, repository_settings(args), passphrase=args.passphrase) as b, progress(args) as bar:
        try:
            report = b.drill(args.backup_id, scratch=args.scratch, keep_scratch=args.keep_scratch, progress=bar)
        except DrillFailed as exc:  # the report is shown, then the error (exit 4)
            failed, report = exc, exc.report
    if args.json:
        emit_json(report.as_json())
    else:
        print(f"drill of {report.backup_id} (chain {' -> '.join(report.chain)}): restored into {report.scratch} "
              f"in {report.restore_seconds:.1f} s, " + ("removed" if report.scratch_removed else "kept"))
        for name, r in report.resources.items():
            print(f"  {name:<16} {r.records:,} records compared, {r.differences:,} differences, "
                  f"{r.seconds:.1f} s, {r.records_per_second:,.0f} records/s")
        print("  passed: every record read back equals the backup" if report.passed else "  FAILED")
    if failed is not None:
        print(f"backup-pipeline: error: {failed}", file=sys.stderr)
        return failed.exit_code
    return 0
