"""`backup-pipeline completion bash|zsh|tcsh`: the shell completion script, generated from the
command line itself by shtab (commands, options, choices), so it never drifts from it."""

from __future__ import annotations

import sys

import shtab

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(sub) -> None:
    text = "print the shell completion script (e.g. eval \"$(backup-pipeline completion bash)\")"
    p = sub.add_parser("completion", help=text, description=text[0].upper() + text[1:] + ".")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=run)


def run(args) -> int:
    sys.stdout.write(shtab.complete(args.root_parser, shell=args.shell))  # the whole command line
    return 0
