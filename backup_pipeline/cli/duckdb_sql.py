"""`backup-pipeline duckdb-sql`: the DuckDB views over a repository as plain SQL, for analysts
with DuckDB alone (`duckdb -init views.sql`), no Python of this project needed to query."""

from __future__ import annotations

from .common import add_repo_options, repository_settings


def add_parser(sub) -> None:
    text = "print CREATE VIEW statements over the backups in place, for plain DuckDB"
    p = sub.add_parser(
        "duckdb-sql", aliases=["sql"], help=text,
        description="Print the DuckDB views (RESOURCE__backup, RESOURCE__state, backups, backup_resources) as "
        "plain SQL: `backup-pipeline duckdb-sql --repo R > views.sql`, then `duckdb -init views.sql`. They name "
        "committed backups' files only, type columns from the s3db schema, give every line `_deleted` and "
        "`_backup_id`, and leave the raw object out.")
    add_repo_options(p)
    p.add_argument("--backup", dest="backup_id", default=None, metavar="ID", help="state at this backup (default: latest)")
    p.add_argument("--resource", dest="resources", action="append", default=None, metavar="NAME",
                   help="only this resource (repeatable)")
    p.add_argument("--parquet", action="store_true", help="read the RESOURCE.parquet mirrors instead of the JSONL files")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..query.duckdb_views import views_sql  # pyarrow costs ~0.3 s to import: only this command pays it

    repo = repository_settings(args).open()
    backup_id = None
    if args.backup_id:
        from ..engine.catalog import resolve_backup_id  # with the views' module: only this path needs it

        backup_id = resolve_backup_id(repo, args.backup_id)
    statements = views_sql(repo, backup_id=backup_id, resource=args.resources,
                           source="parquet" if args.parquet else "jsonl")
    location = repo.location()
    print(f"-- DuckDB views over {repo.url}, made by backup-pipeline duckdb-sql; run again after each backup")
    if location is not None and location.is_s3:
        print("-- an S3 repository: INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, KEY_ID ..., SECRET ..., "
              "ENDPOINT ..., URL_STYLE 'path') first")
    for _view, sql in statements:
        print(sql.strip() + ";\n")
    return 0
