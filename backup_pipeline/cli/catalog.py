"""`backup-pipeline list | status | verify`: what a repository holds, and whether it is whole."""

from __future__ import annotations

from ..api import Backups
from ..errors import IncompleteBackup
from .common import ID_HELP, add_repo_options, emit_json, human_bytes, repository_settings


def add_parser(sub) -> None:
    text = "list the backups of a repository (complete, incomplete, failed)"
    p = sub.add_parser("list", help=text, description=text.capitalize() + ".")
    add_repo_options(p)
    p.add_argument("--at", metavar="TIME", help="only the backup restore --at TIME would choose (ISO 8601 with Z "
                   "or an offset, or a date: the end of that UTC day)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)
    text = "what the repository holds and costs: backups, bytes, growth, bytes full backups store again"
    p = sub.add_parser("stats", help=text, description=text.capitalize() + ".")
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_stats)
    text = "show one backup: state, type, parent, times, records, size, resources"
    p = sub.add_parser("status", help=text, description=text.capitalize() + ".")
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_status)
    text = "check a backup's files against its manifest, its records, and its chain"
    p = sub.add_parser("verify", help=text, description=text.capitalize() + " (exit 4 naming what differs).")
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_verify)


def run_list(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        infos = [b.status(b.resolve_at(args.at).id)] if args.at else b.list()
    if args.json:
        emit_json([i.as_json() for i in infos])
        return 0
    print(f"{'id':<36} {'state':<10} {'type':<11} {'parent':<36} {'records':>9} {'size':>10}  finished")
    for i in infos:
        print(f"{i.id:<36} {i.state:<10} {i.type or '-':<11} {i.parent or '-':<36} "
              f"{i.records if i.records is not None else '-':>9} {human_bytes(i.bytes):>10}  {i.finished_at or i.error or '-'}")
    return 0


def _shown(key: str, value) -> str:
    """A status value as a person reads it (not Python's None, True or list)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if key == "bytes":
        return f"{human_bytes(value)} ({value:,} bytes)"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def run_status(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        info = b.status(args.backup_id)
    if args.json:
        emit_json(info.as_json())
    else:
        for k, v in info.as_json().items():
            print(f"{k:<14} {_shown(k, v)}")
    return 0 if info.state == "complete" else IncompleteBackup.exit_code


def run_verify(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        report = b.verify(args.backup_id)
    if args.json:
        emit_json(report.as_json())
    else:
        checked = sum(len(c) for c in report.checks.values())
        print(f"backup {report.backup_id}: ok ({report.files} files, {human_bytes(report.bytes)}, "
              f"{checked} record checks passed, chain {' -> '.join(report.chain)})")
    return 0


def run_stats(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        stats = b.stats()
    if args.json:
        emit_json(stats.as_json())
        return 0
    print(f"repository {stats.repository}: {stats.committed} committed backup(s), {stats.unfinished} unfinished, "
          f"{human_bytes(stats.stored_bytes)} stored")
    if stats.latest:
        print(f"  latest {stats.latest}: {stats.latest_records:,} live records; a restore reads "
              f"{human_bytes(stats.restore_bytes)}")
    if stats.bytes_per_day is not None:
        print(f"  growth {human_bytes(int(stats.bytes_per_day))} a day")
    if stats.repeated_bytes:
        print(f"  full backups stored {human_bytes(stats.repeated_bytes)} again for records unchanged since the "
              "backup before them (an incremental would not have)")
    print(f"  {'id':<36} {'type':<11} {'records':>9} {'tombstones':>10} {'stored':>10} {'repeated':>10}")
    for s in stats.backups:
        print(f"  {s.id:<36} {s.type:<11} {s.records:>9,} {s.tombstones:>10,} {human_bytes(s.stored_bytes):>10} "
              f"{human_bytes(s.repeated_bytes):>10}")
    return 0
