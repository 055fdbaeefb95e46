"""Repository options shared by every command that reads or writes backups."""

from __future__ import annotations

import os

REPO_PASSPHRASE_ENV = "BACKUP_REPO_PASSPHRASE"
SSE_C_KEY_ENV = "BACKUP_SSE_CUSTOMER_KEY"


def add_repo_options(p, *, dest: str = "repo", flag: str = "--repo", writing: bool = False) -> None:
    g = p.add_argument_group("repository")
    g.add_argument(flag, dest=dest, action="append", required=True, metavar="REPO",
                   help="backup repository: a folder (path templates {date} {time} {type} {id} allowed), "
                   "file:///path or s3://bucket/prefix; repeat for several destinations")
    g.add_argument("--strategy", choices=["all", "any", "priority"], default="all",
                   help="with several --repo: all must succeed, any one, or the first that works (default all)")
    g.add_argument("--max-uploads", type=int, default=2, metavar="N",
                   help="with several --repo: destinations written at once (default 2)")
    g.add_argument("--endpoint-url", default=None, help="S3 endpoint (default $AWS_ENDPOINT_URL, else AWS)")
    g.add_argument("--region", default=None, help="S3 region (default $AWS_REGION, else us-east-1)")
    g.add_argument("--profile", default=None, help="AWS profile (default $AWS_PROFILE)")
    g.add_argument("--repo-passphrase", default=None, metavar="P",
                   help=f"passphrase of an encrypted repository (default ${REPO_PASSPHRASE_ENV})")
    g.add_argument("--repo-key-file", default=None, metavar="FILE", help="raw 32-byte key of an encrypted repository")
    g.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another writer's lock before failing (exit code 7)")
    if writing:
        g.add_argument("--storage-class", default=None, help="S3 storage class, e.g. STANDARD_IA, GLACIER_IR")
        g.add_argument("--sse", choices=["AES256", "aws:kms", "sse-c"], default=None, help="S3 server-side encryption")
        g.add_argument("--sse-kms-key-id", default=None, help="KMS key id for --sse aws:kms")
        g.add_argument("--sse-customer-key", default=None,
                       help=f"base64 32-byte key for --sse sse-c (default ${SSE_C_KEY_ENV})")
        g.add_argument("--encrypt", action="store_true",
                       help="encrypt a new repository client-side (AES-256-GCM, scrypt key from --repo-passphrase)")


def open_repo(args, *, dest: str = "repo"):
    from .repository import open_repository
    from .repository.s3 import S3Options

    s3 = S3Options(
        endpoint_url=args.endpoint_url, region=args.region, profile=args.profile,
        storage_class=getattr(args, "storage_class", None), sse=getattr(args, "sse", None),
        sse_kms_key_id=getattr(args, "sse_kms_key_id", None),
        sse_customer_key=getattr(args, "sse_customer_key", None) or (
            os.environ.get(SSE_C_KEY_ENV) if getattr(args, "sse", None) == "sse-c" else None),
    )
    passphrase = args.repo_passphrase or os.environ.get(REPO_PASSPHRASE_ENV)
    raw_key = None
    if args.repo_key_file:
        with open(args.repo_key_file, "rb") as f:
            raw_key = f.read().strip()
        if len(raw_key) != 32:
            import base64

            raw_key = base64.b64decode(raw_key)
    return open_repository(getattr(args, dest), s3, strategy=args.strategy, max_uploads=args.max_uploads,
                           passphrase=passphrase, raw_key=raw_key, encrypt=getattr(args, "encrypt", False))
