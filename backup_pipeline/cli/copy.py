"""`backup-pipeline copy`: complete a destination that missed a backup."""

from __future__ import annotations

from ..api import Backups
from .common import ID_HELP, add_repo_options, emit_json, repository_settings


def add_parser(sub) -> None:
    p = sub.add_parser("copy", help="copy a committed backup to another repository (completes a destination)",
                       description="Copy every file of a committed backup, then its manifest last, from one "
                       "repository to another; a destination that missed a backup is completed this way.")
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    add_repo_options(p, dest="src", flag="--from", locking=True)
    p.add_argument("--to", dest="dst", action="append", required=True, metavar="REPO", help="destination repository")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    dst = repository_settings(args, dest="dst", encrypt=False).open()
    with Backups(None, repository_settings(args, dest="src")) as b:
        backup_id = b.resolve(args.backup_id)
        copied = b.copy(backup_id, dst)
    if args.json:
        emit_json({"id": backup_id, "from": b.repo.url, "to": dst.url, "copied": copied})
    else:
        print(f"backup {backup_id}: " + (f"copied {len(copied)} files to {dst.url}" if copied
                                              else f"already complete in {dst.url}"))
    return 0
