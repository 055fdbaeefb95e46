"""`backup-pipeline list | status | verify`: what a repository holds, and whether it is whole."""

from __future__ import annotations

import argparse
import sys

from ..api import Backups
from ..engine.verification import parse_budget
from ..errors import CheckFailed, IncompleteBackup, UsageError
from .common import ID_HELP, add_repo_options, emit_json, human_bytes, progress, repository_settings


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
    text = "check the whole repository: every backup's manifest, chain and files (sizes), a subset read in full"
    p = sub.add_parser("check", help=text, description=text[0].upper() + text[1:] + " (restic's check; exit 4 "
                       "listing every problem).")
    add_repo_options(p)
    p.add_argument("--read-data-subset", metavar="n/t|x%", default=None,
                   help="also read these files in full and check their content: n/t (the n-th of t parts; "
                   "1/t .. t/t read every file once) or x%% (a random share)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_check)
    text = "show one backup: state, type, parent, times, records, size, resources"
    p = sub.add_parser("status", help=text, description=text.capitalize() + ".")
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    add_repo_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_status)
    text = "check a backup's files against its manifest, its records, and its chain"
    p = sub.add_parser("verify", help=text, description=text.capitalize() + " (exit 4 naming what differs); "
                       "with --budget, the backups least recently verified first. Each outcome is remembered in "
                       "the repository (list shows it).")
    p.add_argument("backup_id", metavar="BACKUP_ID", nargs="?", help=ID_HELP)
    p.add_argument("--budget", dest="budget_seconds", metavar="DURATION", type=_budget,
                   help="instead of BACKUP_ID: verify committed backups, never verified then least recently verified "
                   "first, starting none once DURATION (90s, 10m, 1h) is spent; 0 verifies exactly one; failures "
                   "do not stop the others (exit 4 at the end)")
    add_repo_options(p, locking=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_verify)


def _budget(text: str) -> float:
    try:
        return parse_budget(text)
    except UsageError as exc:  # argparse reports it as a usage error (exit 2)
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_list(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        infos = [b.status(b.resolve_at(args.at).id)] if args.at else b.list()
    if args.json:
        emit_json([i.as_json() for i in infos])
        return 0
    print(f"{'id':<36} {'state':<10} {'type':<11} {'parent':<36} {'records':>9} {'size':>10}  {'verified':<23} "
          "finished")
    for i in infos:
        print(f"{i.id:<36} {i.state:<10} {i.type or '-':<11} {i.parent or '-':<36} "
              f"{i.records if i.records is not None else '-':>9} {human_bytes(i.bytes):>10}  {_verified(i):<23} "
              f"{i.finished_at or i.error or '-'}")
    return 0


def _verified(info) -> str:
    """The last verification, as `ok 2026-11-24T03:00` or `FAILED ...`; never, or - when not committed."""
    if info.last_verification is None:
        return "never" if info.state == "complete" else "-"
    outcome = "ok" if info.last_verification == "ok" else "FAILED"
    return f"{outcome} {info.last_verified_at[:16]}"


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
            print(f"{k:<18} {_shown(k, v)}")
    return 0 if info.state == "complete" else IncompleteBackup.exit_code


def run_verify(args) -> int:
    if (args.backup_id is None) == (args.budget_seconds is None):
        raise UsageError("verify: give a BACKUP_ID or --budget DURATION, one of the two")
    if args.budget_seconds is not None:
        return _verify_budget(args)
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



def _verify_budget(args) -> int:
    with Backups(None, repository_settings(args)) as b, progress(args) as bar:
        report = b.verify_budget(args.budget_seconds, progress=bar)
    if args.json:
        emit_json(report.as_json())
    else:
        for r in report.results:
            print(f"{r.backup_id}: {'ok' if r.outcome == 'ok' else 'FAILED'} ({human_bytes(r.bytes)}, {r.seconds:.1f} s)")
        print(f"verified {len(report.results)} backup(s) in {report.seconds:.1f} s ({human_bytes(report.bytes)}), "
              f"{len(report.failed)} failed, {len(report.left)} left for the next run"
              + (f": {', '.join(report.left)}" if report.left else ""))
    for r in report.failed:
        print(f"backup-pipeline: error: backup {r.backup_id} failed verification: {r.error}", file=sys.stderr)
    return CheckFailed.exit_code if report.failed else 0


def run_check(args) -> int:
    with Backups(None, repository_settings(args)) as b, progress(args) as bar:
        report = b.check(args.read_data_subset, progress=bar)
    if args.json:
        emit_json(report.as_json())
    else:
        print(f"repository {report.repository}: {report.backups} committed backup(s), {report.files} file(s) "
              f"checked, {report.files_read} read in full ({human_bytes(report.bytes_read)})"
              + (f", {len(report.unfinished)} unfinished (never restored; cleanup removes them)"
                 if report.unfinished else ""))
        if report.without_tables or report.stale_tables:
            print(f"Athena table files: {len(report.without_tables)} committed backup(s) without them, "
                  f"{len(report.stale_tables)} backup(s) no longer committed still listed; "
                  "`backup-pipeline athena-ddl` mends them")
        print("no problem found" if not report.problems else f"{len(report.problems)} problem(s):")
    for problem in report.problems:
        print(f"backup-pipeline: error: {problem}", file=sys.stderr)
    return CheckFailed.exit_code if report.problems else 0
