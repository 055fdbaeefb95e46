"""`backup-pipeline backup`: stream resources into a repository, commit with the manifest."""

from __future__ import annotations

from ..api import Backups
from ..compression import COMPRESSIONS
from ..engine.backup import SYNTHETIC_FULL
from ..errors import UsageError
from ..store.retry import retry_count
from .common import add_repo_options, add_source_options, emit_json, human_bytes, progress, repository_settings, \
    source_settings


def add_parser(sub) -> None:
    p = sub.add_parser("backup", help="back up an s3db.js database into a repository",
                       description="Stream every record of the chosen resources into RESOURCE.jsonl.gz files "
                       "and commit the backup with its manifest (s3db.json), written last.")
    add_source_options(p)
    add_repo_options(p, writing=True)
    p.add_argument("--type", choices=["full", "incremental", "synthetic-full"], default="full",
                   help="synthetic-full: a new full built in the repository from the newest backup of the source "
                   "and its chain, reading nothing from the source")
    p.add_argument("--resource", action="append", metavar="NAME", help="only this resource (repeatable)")
    p.add_argument("--exclude", action="append", metavar="NAME", help="leave this resource out (repeatable)")
    p.add_argument("--compression", choices=list(COMPRESSIONS), default="gzip")
    p.add_argument("--parquet", action="store_true", help="also write a typed Parquet mirror RESOURCE.parquet")
    p.add_argument("--shard-records", type=int, metavar="N",
                   help="back up a resource listing more than N objects in key-range parts of about N "
                   "(RESOURCE.part-NNN.jsonl.gz), ranges kept from backup to backup")
    p.add_argument("--no-verify", action="store_true", help="skip re-reading the files before committing")
    p.add_argument("--decrypt-secrets", action="store_true",
                   help="decrypt secret fields in the decoded view (needs --passphrase); raw objects stay encrypted")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="record unreadable source objects in the manifest and go on, instead of failing")
    p.add_argument("--full-if-no-parent", action="store_true",
                   help="with --type incremental: take a full backup when there is no parent")
    p.add_argument("--skip-if-unchanged", action="store_true",
                   help="with --type incremental: when no record, schema or sequence changed since the parent, "
                   "commit nothing (restic's) and say so")
    p.add_argument("--dry-run", action="store_true",
                   help="list the source and say what the backup would take (objects, bytes; for an incremental, "
                   "what changed since the parent); nothing fetched or written")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    source = source_settings(args)
    source.check()
    if args.shard_records is not None and args.shard_records < 1:
        raise UsageError(f"--shard-records {args.shard_records}: give a positive number of records per part")
    if args.dry_run:
        if args.type == SYNTHETIC_FULL:
            raise UsageError("--dry-run lists the source; a synthetic full reads none (see `list` for the newest "
                             "backup it would start from)")
        return dry_run(args, source)
    retries_before = retry_count()
    with Backups(source, repository_settings(args)) as b, progress(args) as bar:
        newest = b.latest() if args.skip_if_unchanged and args.type != SYNTHETIC_FULL else None
        manifest = b.backup(
            args.type, resources=args.resource, exclude=args.exclude, compression=args.compression,
            verify=not args.no_verify, decrypt_secrets=args.decrypt_secrets, skip_corrupt=args.skip_corrupt,
            full_if_no_parent=args.full_if_no_parent, progress=bar, parquet=args.parquet,
            skip_if_unchanged=args.skip_if_unchanged, shard_records=args.shard_records,
        )
    skipped = newest is not None and manifest.id == newest.id  # the parent came back: nothing committed
    summary = {
        "id": manifest.id, "type": manifest.type, "parent": manifest.parent, "synthetic_from": manifest.synthetic_from,
        "repo": b.repo.url, "selective": manifest.selective, "verified": manifest.verified,
        "started_at": manifest.started_at, "finished_at": manifest.finished_at,
        "resources": {
            name: {"records": r.records, "tombstones": r.tombstones, "unchanged": r.unchanged, "bytes": r.data_bytes,
                   "snapshot": r.snapshot}
            | ({"sha256": r.data.sha256, "file": r.data.file} if r.data else
               {"parts": [{"file": f.file, "sha256": f.sha256, "bytes": f.bytes} for f in r.data_files()]})
            | ({"skipped_corrupt": r.skipped_corrupt} if r.skipped_corrupt else {})
            for name, r in manifest.resources.items()
        },
        "totals": manifest.totals.dump(),
        "retries": retry_count() - retries_before,  # storage requests sent again after a passing failure
        "skipped_unchanged": skipped,
    }
    if args.json:
        emit_json(summary)
    elif skipped:
        print(f"no change since backup {manifest.id}: nothing committed (--skip-if-unchanged)")
    else:
        t = manifest.totals
        print(f"backup {manifest.id} ({manifest.type}"
              + (f", parent {manifest.parent}" if manifest.parent else "")
              + (f", synthetic from {manifest.synthetic_from}: nothing read from the source"
                 if manifest.synthetic_from else "") + f") committed in {b.repo.url}")
        print(f"  {len(manifest.resources)} resources, {t.records:,} records, {t.tombstones:,} tombstones, "
              f"{human_bytes(t.bytes)}" + (", verified" if manifest.verified else "")
              + (f", {summary['retries']} storage request(s) retried" if summary["retries"] else ""))
    return 0


def dry_run(args, source) -> int:
    with Backups(source, repository_settings(args)) as b:
        kind, parent, plans = b.backup_dry_run(args.type, resources=args.resource, exclude=args.exclude,
                                               full_if_no_parent=args.full_if_no_parent)
    if args.json:
        emit_json({"dry_run": True, "type": kind, "parent": parent,
                   "resources": {name: plan.as_json() for name, plan in plans.items()}})
        return 0
    print(f"would back up {len(plans)} resource(s) ({kind}" + (f", parent {parent}" if parent else "")
          + "); nothing fetched or written")
    for name, plan in plans.items():
        if plan.unchanged is None:
            print(f"  {name:<16} {plan.objects:>10,} objects, {human_bytes(plan.body_bytes)} of bodies")
        else:
            print(f"  {name:<16} {plan.objects:>10,} listed: {plan.to_fetch:,} to fetch (changed, new or recent), "
                  f"{plan.unchanged:,} unchanged, {plan.deleted:,} deleted")
    return 0
