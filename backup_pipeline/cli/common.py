"""What every command shares: repository and source options (turned into settings.py classes),
JSON output, human sizes and progress on a terminal."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext

import orjson

from ..engine.progress import Progress, human_bytes  # noqa: F401 - re-exported for the commands
from ..errors import UsageError
from ..settings import (REPO_PASSPHRASE_ENV, SOURCE_PASSPHRASE_ENV, SSE_C_KEY_ENV, RepositorySettings,
                        SourceSettings, settings_from)


REPO_ENV = "BACKUP_REPO"
ID_HELP = "a backup id, a unique prefix of one, or latest (the newest committed backup)"


def add_repo_options(p, *, dest: str = "repos", flag: str = "--repo", writing: bool = False,
                     locking: bool = False) -> None:
    """The repository group; every dest is a RepositorySettings field (except the list's). Only
    writers show write options: `locking` (takes a lease: --lock-wait), `writing` (writes backup
    files: destinations, storage class, encryption)."""
    g = p.add_argument_group("repository")
    g.add_argument(flag, dest=dest, action="append", metavar="REPO",
                   help="backup repository: a folder (path templates {date} {time} {type} {id} allowed), "
                   "file:///path or s3://bucket/prefix; repeat for several destinations"
                   + (f" (default ${REPO_ENV}, comma-separated)" if dest == "repos" else ""))
    g.add_argument("--endpoint-url", default=None, help="S3 endpoint (default $AWS_ENDPOINT_URL, else AWS)")
    g.add_argument("--region", default=None, help="S3 region (default $AWS_REGION, else us-east-1)")
    g.add_argument("--profile", default=None, help="AWS profile (default $AWS_PROFILE)")
    g.add_argument("--repo-passphrase", default=None, metavar="P",
                   help=f"passphrase of an encrypted repository (default ${REPO_PASSPHRASE_ENV})")
    g.add_argument("--repo-key-file", default=None, metavar="FILE", help="raw 32-byte key of an encrypted repository")
    if locking or writing:
        g.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait this long for another writer's lock before failing (exit code 7)")
    if writing:
        g.add_argument("--strategy", choices=["all", "any", "priority"], default="all",
                       help="with several --repo: all must succeed, any one, or the first that works (default all)")
        g.add_argument("--max-uploads", type=int, default=2, metavar="N",
                       help="with several --repo: destinations written at once (default 2)")
        g.add_argument("--storage-class", default=None, help="S3 storage class, e.g. STANDARD_IA, GLACIER_IR")
        g.add_argument("--sse", choices=["AES256", "aws:kms", "sse-c"], default=None, help="S3 server-side encryption")
        g.add_argument("--sse-kms-key-id", default=None, help="KMS key id for --sse aws:kms")
        g.add_argument("--sse-customer-key", default=None,
                       help=f"base64 32-byte key for --sse sse-c (default ${SSE_C_KEY_ENV})")
        g.add_argument("--encrypt", action="store_true",
                       help="encrypt a new repository client-side (AES-256-GCM, scrypt key from --repo-passphrase)")
        g.add_argument("--object-lock", choices=["governance", "compliance"], default=None,
                       help="S3 Object Lock (the bucket must have it enabled): every backup file and manifest is "
                       "written locked in this mode; kept in the repository (object-lock.json) for later runs")
        g.add_argument("--object-lock-days", type=int, default=None, metavar="N",
                       help="with --object-lock: lock each file N days past its write; cleanup --apply extends "
                       "the backups the policy keeps to N days past each run")


def connection_arg(text: str) -> str:
    """A connection string, or a plain path for a folder database (as --repo takes one)."""
    return text if "://" in text else f"file://{os.path.abspath(os.path.expanduser(text))}"


SOURCE_ENVS = ("BACKUP_SOURCE", "S3DB_SOURCE")  # the command line's, then the one Dagster reads


def add_source_options(p) -> None:
    p.add_argument("--source", dest="connection", metavar="CONN", type=connection_arg,
                   help="s3db.js connection string (file://, s3://, http(s)://) or a folder path (default "
                   f"${SOURCE_ENVS[0]}, else ${SOURCE_ENVS[1]})")
    p.add_argument("--passphrase", metavar="P", default=None,
                   help=f"s3db.js secrets passphrase (default ${SOURCE_PASSPHRASE_ENV})")


def repository_settings(args, dest: str = "repos", **overrides) -> RepositorySettings:
    repos = getattr(args, dest)
    if not repos and dest == "repos":  # restic's RESTIC_REPOSITORY: the same variable Dagster reads
        repos = [r for r in os.environ.get(REPO_ENV, "").split(",") if r]
    if not repos:
        flag = {"repos": "--repo", "src": "--from", "dst": "--to"}.get(dest, dest)
        raise UsageError(f"no repository: give {flag} REPO" + (f" (or set ${REPO_ENV})" if dest == "repos" else ""))
    return settings_from(RepositorySettings, args, repos=repos, **overrides)


def source_settings(args) -> SourceSettings:
    if not args.connection:  # restic's RESTIC_REPOSITORY, for the database
        from_env = next((os.environ[name] for name in SOURCE_ENVS if os.environ.get(name)), None)
        if from_env is None:
            raise UsageError(f"no source: give --source CONN (or set ${SOURCE_ENVS[0]})")
        args.connection = connection_arg(from_env)
    return settings_from(SourceSettings, args)


def emit_json(data) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def progress(args):
    """Progress bars on a terminal; nothing when --json or when stderr is not a terminal."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return nullcontext(Progress())
    from .progress import TerminalProgress  # rich costs ~0.1 s to import: only terminals pay it

    return TerminalProgress()
