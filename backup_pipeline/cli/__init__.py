"""`backup-pipeline`: a thin command line over the engine, a module per command or command group.
Exit codes are those of errors.py (README "Exit codes")."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys

from .. import __version__
from ..errors import BackupPipelineError, is_storage_exception, storage_error
from . import athena, backup, catalog, cleanup, completion, copy, demo, drill, duckdb_sql, inspect, records, restore

COMMANDS = (backup, restore, drill, catalog, records, cleanup, copy, athena, duckdb_sql, inspect, demo, completion)


class _Parser(argparse.ArgumentParser):
    """argparse with a short error: one line saying what is wrong (and the nearest command or
    choice for a typo), then where help is, instead of the whole usage first."""

    def error(self, message: str):
        wrong = re.search(r"invalid choice: '([^']*)'", message)
        choices = re.findall(r"'([^']*)'", message.split("choose from", 1)[-1]) if wrong else []
        close = difflib.get_close_matches(wrong.group(1), choices, n=1) if wrong else []
        if close:
            message = f"{message.split(' (choose from', 1)[0]}; did you mean {close[0]!r}?"
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backup-pipeline",
        description="Back up and restore s3db.js databases (filesystem layout or S3).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    parser.set_defaults(root_parser=parser)  # for `completion`, which describes the whole command line
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
    except Exception as exc:  # noqa: BLE001 - a client error that escaped its store's translation
        if not is_storage_exception(exc):
            raise
        error = storage_error(exc)
        print(f"backup-pipeline: error: {error}", file=sys.stderr)
        return error.exit_code
