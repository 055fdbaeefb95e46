"""`backup-pipeline athena-ddl`: print the Athena DDL over a repository's backups (athena.py)."""

from __future__ import annotations

from .common import add_repo_options, repository_settings


def add_parser(sub) -> None:
    p = sub.add_parser(
        "athena-ddl",
        help="print Athena CREATE EXTERNAL TABLE / VIEW statements over the backups in place",
        description="Print the statements that let Athena query the backups where they are: per resource a "
        "JSON SerDe table over RESOURCE.jsonl.gz and a Parquet table over the RESOURCE.parquet mirror, views "
        "with each line's backup id, and a view of the state at the latest backup. Columns are typed from the "
        "s3db schema. Over an S3 repository the tables use partition projection over the repository's tables/ "
        "folder (written at each commit), so backups made later need no new DDL; with --backup, or a local "
        "repository and --location-prefix, the tables have one partition per backup and the views are pinned "
        "to the backups that exist now.",
    )
    add_repo_options(p)
    p.add_argument("--backup", dest="backup_id", default=None, metavar="ID",
                   help="point at this backup: partitions for its chain only, state views at it "
                   "(default: every backup of the latest backup's source, state at the latest)")
    p.add_argument("--database", default=None, metavar="NAME", help="Athena database (default s3db_backups)")
    p.add_argument("--location-prefix", default=None, metavar="S3URL",
                   help="s3://bucket/prefix/ where Athena finds the repository root (default: the S3 repository "
                   "itself; required for a local repository)")
    p.add_argument("--resource", dest="resources", action="append", default=None, metavar="NAME",
                   help="only this resource (repeatable)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..query.athena import DEFAULT_DATABASE, athena_ddl  # pyarrow costs ~0.3 s to import: only this command pays it

    ddl = athena_ddl(repository_settings(args).open(), backup_id=args.backup_id, database=args.database or DEFAULT_DATABASE,
                     location_prefix=args.location_prefix, resources=args.resources)
    print(ddl, end="")
    return 0

