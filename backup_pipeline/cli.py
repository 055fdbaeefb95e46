"""`backup-pipeline`: a thin command line over the engine. Exit codes are in README.md."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from . import __version__
from .errors import BackupPipelineError

PASSPHRASE_ENV = "S3DB_PASSPHRASE"


def _add_inspect(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="print every record of an s3db.js database, decoded, one JSON object per line",
        description="Print the records of the chosen resources exactly as a fresh s3db.js list() returns "
        "them (one JSON object per line, in list order, with a \"_resource\" key). "
        "Secrets are decrypted only when a passphrase is given.",
    )
    p.add_argument("--source", required=True, metavar="CONN", help="s3db.js connection string (file://, s3://, http(s)://)")
    p.add_argument("--resource", action="append", metavar="NAME", help="only this resource (repeatable); default: all")
    p.add_argument("--passphrase", metavar="P", default=None,
                   help=f"passphrase for secret fields (default: ${PASSPHRASE_ENV} if set; else secrets stay encrypted)")
    p.add_argument("--summary", action="store_true", help="print resources with record counts instead of records")
    p.add_argument("--clean", action="store_true",
                   help="the intended values instead of s3db.js get()'s double-decoded ones (SPEC §11)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args) -> int:
    from .engine.inspect import iter_records, summarize
    from .store import open_store

    store = open_store(args.source)
    try:
        out = sys.stdout.buffer
        if args.summary:
            rows = summarize(store, args.resource)
            width = max([len(r.name) for r in rows] + [8])
            out.write(f"{'resource':<{width}}  {'records':>8}  behavior        version  partitions\n".encode())
            for r in rows:
                out.write(f"{r.name:<{width}}  {r.records:>8}  {r.behavior:<14}  {r.version:<7}  {r.partitions:>10}\n".encode())
            out.write(f"{'total':<{width}}  {sum(r.records for r in rows):>8}\n".encode())
            return 0
        passphrase = args.passphrase if args.passphrase is not None else os.environ.get(PASSPHRASE_ENV)
        mode = "clean" if args.clean else "exact"
        for resource, record in iter_records(store, args.resource, passphrase=passphrase, mode=mode):
            out.write(orjson.dumps({"_resource": resource, **record}) + b"\n")
        out.flush()
        return 0
    finally:
        store.close()


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the embedded default (a local demo database)",
        description="Create ./demo/db (a real s3db.js database in the filesystem layout) if missing, "
        "then run the main job on it and say where everything is.",
    )
    p.add_argument("--dir", default="demo", help="folder for the demo database and backups (default ./demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from pathlib import Path

    from .demo import ensure_demo_database

    db = ensure_demo_database(Path(args.dir))
    conn = f"file://{db}"
    print(f"demo database: {conn}")
    code = cmd_inspect(argparse.Namespace(source=conn, resource=None, passphrase=None, summary=True, clean=False))
    print(f"\nnext: backup-pipeline inspect --source {conn} --resource users")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backup-pipeline",
        description="Back up and restore s3db.js databases (filesystem layout or S3).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_inspect(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BackupPipelineError as exc:
        print(f"backup-pipeline: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `backup-pipeline inspect ... | head`: the reader left, which is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("backup-pipeline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
