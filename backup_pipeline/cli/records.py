"""`backup-pipeline diff | ls | find | dump`: the records of backups, as restic shows the files of
snapshots (restore --id, one record back, is in restore.py)."""

from __future__ import annotations

from ..api import Backups
from .common import ID_HELP, add_repo_options, emit_json, human_bytes, repository_settings

MARKS = {"added": "+", "changed": "M", "removed": "-"}


def _command(sub, name: str, text: str, func):
    p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    p.set_defaults(func=func)
    return p


def _options(p, resource_help: str = "only this resource (repeat for several)") -> None:
    p.add_argument("--resource", action="append", metavar="R", help=resource_help)
    add_repo_options(p)
    p.add_argument("--json", action="store_true")


def add_parser(sub) -> None:
    p = _command(sub, "diff", "show the records added, changed (content differs) and removed per resource "
                 "between the states at two backups", run_diff)
    p.add_argument("old", metavar="BACKUP_ID1", help=ID_HELP)
    p.add_argument("new", metavar="BACKUP_ID2", help="the backup compared with BACKUP_ID1 (same forms)")
    _options(p)
    p = _command(sub, "ls", "list the records of the state at a backup: resource, id, size, content hash", run_ls)
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    _options(p)
    p = _command(sub, "find", "find the backups holding a record and how it changed from one to the next "
                 "(added, changed, unchanged, deleted), oldest first", run_find)
    p.add_argument("--id", dest="record_id", required=True, metavar="RECORD_ID", help="the record's id")
    _options(p)
    p = _command(sub, "dump", "print one record of the state at a backup, decoded as the backup holds it "
                 "(exit 3 when the backup does not hold it)", run_dump)
    p.add_argument("backup_id", metavar="BACKUP_ID", help=ID_HELP)
    p.add_argument("resource", metavar="RESOURCE")
    p.add_argument("record_id", metavar="RECORD_ID")
    add_repo_options(p)
    p.add_argument("--json", action="store_true", help="the record with its backup id and resource")


def run_diff(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        old, new = b.resolve(args.old), b.resolve(args.new)
        diffs = b.diff(old, new, args.resource)
    totals = {kind: sum(len(getattr(d, kind)) for d in diffs.values()) for kind in MARKS}
    if args.json:
        emit_json({"from": old, "to": new, "resources": {name: d.as_json() for name, d in diffs.items()},
                   "summary": totals})
        return 0
    print(f"comparing backup {old} to {new}:")
    for name, d in diffs.items():
        marked = sorted((rid, MARKS[kind]) for kind in MARKS for rid in getattr(d, kind))
        for rid, mark in marked:
            print(f"{mark} {name}/{rid}")
    print()
    for name, d in diffs.items():
        print(f"{name:<16} {len(d.added):>7,} added {len(d.changed):>7,} changed {len(d.removed):>7,} removed")
    print(f"{'total':<16} {totals['added']:>7,} added {totals['changed']:>7,} changed {totals['removed']:>7,} removed")
    return 0


def run_ls(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        backup_id = b.resolve(args.backup_id)
        entries = list(b.ls(backup_id, args.resource))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.resource] = counts.get(e.resource, 0) + 1
    if args.json:
        emit_json({"backup_id": backup_id, "records": [e.as_json() for e in entries], "counts": counts})
        return 0
    print(f"backup {backup_id}: {len(entries):,} records")
    for e in entries:
        name = f"{e.resource}/{e.id}"
        print(f"{name:<40} {human_bytes(e.size):>10}  {e.hash}")
    return 0


def run_find(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        sightings = b.find(args.record_id, args.resource)
    if args.json:
        emit_json({"record_id": args.record_id, "backups": [s.as_json() for s in sightings]})
        return 0
    print(f"record {args.record_id}:")
    for s in sightings:
        print(f"  {s.started_at:<26} {s.backup_id:<36} {s.resource:<16} {s.status:<10} {s.hash or '-'}")
    return 0


def run_dump(args) -> int:
    with Backups(None, repository_settings(args)) as b:
        backup_id = b.resolve(args.backup_id)
        record = b.dump(backup_id, args.resource, args.record_id)
    emit_json({"backup_id": backup_id, "resource": args.resource, "id": args.record_id, "record": record}
              if args.json else record)
    return 0
