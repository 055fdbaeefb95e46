"""`backup-pipeline cleanup`: GFS retention, a dry run unless --apply (engine/retention.py)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from ..api import Backups
from ..settings import RetentionSettings, settings_from
from .common import add_repo_options, emit_json, progress, repository_settings

_DURATION_HELP = "h hours, d days, w weeks, m months (30 days), y years (365 days), combinable: 36h, 7d, 1y2m3d"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove backups a retention policy does not keep (dry run unless --apply)",
        description="Decide for every backup of the repository keep or remove, and say why. Buckets are "
        "calendar periods (hour, day, ISO week, month, year) in --timezone: for each --keep-<period> N the "
        "newest backup of each of the N newest periods is kept. The newest complete backup is never removed; "
        "a kept incremental keeps its whole chain; incomplete and failed backups are removed once older than "
        "--grace. With no --keep-* option nothing is removed. Nothing is deleted without --apply. In an "
        "object-locked S3 repository a backup still locked is kept (\"locked until DATE\") and removed by a run "
        "after that date; --apply first extends the lock of every backup the policy keeps.",
    )
    add_repo_options(p, locking=True)
    for period, what in (("last", "the N newest complete backups"), ("hourly", "the newest backup of each of the last N hours"),
                         ("daily", "... of each of the last N days"), ("weekly", "... of each of the last N ISO weeks"),
                         ("monthly", "... of each of the last N months"), ("yearly", "... of each of the last N years")):
        p.add_argument(f"--keep-{period}", type=int, default=0, metavar="N", help=f"keep {what}")
    p.add_argument("--keep-within", metavar="DURATION", default=None,
                   help=f"keep every complete backup started within DURATION of now ({_DURATION_HELP})")
    p.add_argument("--timezone", metavar="TZ", default="UTC",
                   help="IANA timezone whose calendar defines hours, days, weeks, months, years (default UTC)")
    p.add_argument("--grace", metavar="DURATION", default="24h",
                   help="remove incomplete or failed backups only once older than this (default 24h)")
    p.add_argument("--apply", action="store_true", help="really delete the backups marked remove")
    p.add_argument("--json", action="store_true", help="print the decisions as a JSON list")
    p.set_defaults(func=run)


def policy_from_args(args):
    return settings_from(RetentionSettings, args).policy()


def _reasons_text(reasons: list[str]) -> str:
    """Reasons joined; many "needed by incremental X" collapse into one item."""
    needed = [r[len("needed by incremental "):] for r in reasons if r.startswith("needed by incremental ")]
    out = [r for r in reasons if not r.startswith("needed by incremental ")]
    if len(needed) == 1:
        out.append(f"needed by incremental {needed[0]}")
    elif needed:
        out.append(f"needed by {len(needed)} incrementals (newest {needed[0]})")
    return ", ".join(out)


def run(args) -> int:
    policy = policy_from_args(args)
    if getattr(args, "now", None) is not None:  # tests pin the clock
        now = args.now
    else:
        now = datetime.now(timezone.utc)
    with Backups(None, repository_settings(args)) as b:
        if args.apply:
            with progress(args) as bar:
                decisions = b.cleanup(policy, apply=True, now=now, progress=bar)
        else:
            decisions = b.cleanup(policy, apply=False, now=now)
    removed = [d for d in decisions if d.action == "remove"]
    kept = len(decisions) - len(removed)
    if args.apply:
        summary = f"removed {len(removed)} backup(s), kept {kept}"
    elif removed:
        summary = f"dry run: would remove {len(removed)} backup(s), keep {kept}; add --apply to delete them"
    else:
        summary = f"dry run: nothing to remove, keep {kept}"
    if policy.empty:
        summary += " (no --keep-* option given: nothing is ever removed)"
    held = [d for d in decisions if d.held_by_lock and d.locked_until is not None]
    if held:
        summary += (f"; {len(held)} kept only by their object lock (removed by a cleanup after it ends, "
                    f"the first on {min(d.locked_until for d in held):%Y-%m-%dT%H:%M:%SZ})")
    extended = [d for d in decisions if not d.held_by_lock and d.locked_until is not None]
    if extended:
        summary += f"; object lock of {len(extended)} kept backup(s) extended to {max(d.locked_until for d in extended):%Y-%m-%dT%H:%M:%SZ}"
    if args.json:
        emit_json([d.as_json() for d in decisions])
        print(summary, file=sys.stderr)
        return 0
    if not decisions:
        print(f"no backups in {b.repo.url}")
        return 0
    verb = ("keep", "removed") if args.apply else ("keep", "remove")
    width = max(36, max(len(d.id) for d in decisions))
    print(f"{'id':<{width}} {'action':<7} {'state':<10} {'type':<11} {'started':<20} reasons")
    for d in decisions:
        action = verb[0] if d.action == "keep" else verb[1]
        started = d.started_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if d.started_at else "-"
        print(f"{d.id:<{width}} {action:<7} {d.state:<10} {d.type or '-':<11} {started:<20} {_reasons_text(d.reasons)}")
    print(summary)
    return 0

