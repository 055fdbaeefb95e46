"""`backup-pipeline inspect`: the records of a live database, as a fresh s3db.js list() gives them."""

from __future__ import annotations

import sys

import orjson

from ..engine.inspect import iter_records, summarize
from ..settings import SOURCE_PASSPHRASE_ENV
from .common import add_source_options, source_settings


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="print every record of an s3db.js database, decoded, one JSON object per line",
        description="Print the records of the chosen resources exactly as a fresh s3db.js list() returns "
        "them (one JSON object per line, in list order, with a \"_resource\" key). "
        f"Secrets are decrypted only when a passphrase is given (--passphrase or ${SOURCE_PASSPHRASE_ENV}).",
    )
    add_source_options(p)
    p.add_argument("--resource", action="append", metavar="NAME", help="only this resource (repeatable); default: all")
    p.add_argument("--summary", action="store_true", help="print resources with record counts instead of records")
    p.add_argument("--clean", action="store_true",
                   help="the intended values instead of s3db.js get()'s double-decoded ones (SPEC §11)")
    p.set_defaults(func=run)


def run(args) -> int:
    source = source_settings(args)
    store = source.open()
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
        mode = "clean" if args.clean else "exact"
        for resource, record in iter_records(store, args.resource, passphrase=source.resolved_passphrase(), mode=mode):
            out.write(orjson.dumps({"_resource": resource, **record}) + b"\n")
        out.flush()
        return 0
    finally:
        store.close()
