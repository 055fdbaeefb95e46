"""`backup-pipeline demo`: the main job (Dagster's s3db_backup_job) on the embedded default."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the embedded default (a local demo database)",
        description="Create ./demo/db (a real s3db.js database in the filesystem layout) if missing, "
        "then run the main job on it and say where everything is.",
    )
    p.add_argument("--dir", default="demo", help="folder for the demo database and backups (default ./demo)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..defs.demo import run_demo  # Dagster costs ~1.5 s to import: only this command pays it

    return run_demo(args.dir)
