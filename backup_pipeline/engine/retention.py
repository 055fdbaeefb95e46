"""Which backups a retention policy keeps, and why: grandfather-father-son, calendar-based and
chain-aware. A pure module: no I/O, the same answer for the same inputs in any order.

Semantics (restic's `forget` / borg's `prune`):

- Buckets are calendar periods of `started_at` seen in the policy's timezone (an IANA name,
  default UTC): hour, day, ISO week (ISO year + week number, so 2026-12-31 can be in week 53 of
  2026 and 2027-01-01 in the same week), month, year. Wall-clock periods: on a DST fall-back the
  repeated hour is one hourly bucket (two real hours long); on a spring-forward the skipped hour
  has no bucket, and days are 23 or 25 hours long.
- For each `keep_<period>` = N, complete backups are walked newest first and the newest backup of
  each distinct period is kept, until N periods are kept. Rules are independent: one backup may be
  kept by several ("daily #1", "weekly #1").
- `keep_last` = N keeps the N newest complete backups. `keep_within` = D keeps every complete
  backup started at or after `now - D` (borg's reading: relative to now, not to the newest backup).
- The newest complete backup is never removed ("newest").
- Every kept incremental keeps its whole chain: each ancestor gets "needed by incremental <id>",
  and so does the parent of an unfinished (staged) incremental kept within grace.
- Incomplete and failed backups are not counted by any rule: they are removed once their last
  activity (the newest change to their files, never their id: a backfill of an old day is new)
  is older than `incomplete_grace` (default 24h), else kept ("incomplete, within grace"). A backup
  being written holds its lease, and cleanup, being exclusive, does not run beside it.
- Object lock (repository/object_lock.py): a backup the rules above let go whose objects are
  still locked is kept ("locked until DATE (then removed: ...)"), its chain with it, and removed
  by the first run after that date.
- A policy with no rule at all (every keep_* 0 and no keep_within) keeps everything, incomplete
  backups included, with reason "no policy": like restic, an empty policy never deletes.

Durations (`parse_duration`): `h` hours, `d` days, `w` weeks (7 days), `m` months of 30 days,
`y` years of 365 days, combinable: "1y2m3d" = 365 + 60 + 3 days. `m` is months, never minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import UsageError

COMPLETE = "complete"
STATES = ("complete", "incomplete", "failed")

_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
          "m": timedelta(days=30), "y": timedelta(days=365)}
_TOKEN = re.compile(r"(\d+)([a-z])")


def parse_duration(text: str) -> timedelta:
    """"36h", "7d", "2w", "1m" (30 days), "1y" (365 days), "1y2m3d" -> timedelta."""
    if not isinstance(text, str):
        raise UsageError(f"duration {text!r} must be a string like 36h, 7d, 2w, 1m, 1y or 1y2m3d")
    s = text.strip().lower()
    hint = "use a number and a unit, combinable: h hours, d days, w weeks, m months (30 days), y years (365 days); e.g. 36h, 7d, 1y2m3d"
    if not s:
        raise UsageError(f"empty duration; {hint}")
    pos, total, seen = 0, timedelta(), set()
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            break
        n, unit = int(m.group(1)), m.group(2)
        if unit not in _UNITS:
            raise UsageError(f"duration {text!r}: unknown unit {unit!r}; {hint}")
        if unit in seen:
            raise UsageError(f"duration {text!r}: unit {unit!r} appears twice; {hint}")
        seen.add(unit)
        total += n * _UNITS[unit]
        pos = m.end()
    if pos != len(s):
        raise UsageError(f"duration {text!r} is not understood at {s[pos:]!r}; {hint}")
    return total


def format_duration(d: timedelta) -> str:
    """Short form for messages: "7d" (whole days from 2 on), "24h", "36h", else minutes/seconds."""
    secs = int(d.total_seconds())
    if secs % 86400 == 0 and secs >= 2 * 86400:
        return f"{secs // 86400}d"
    if secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs % 60 == 0 or secs >= 3600:
        return f"{secs // 60}min"
    return f"{secs}s"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise UsageError(f"unknown timezone {name!r}; use an IANA name such as UTC or Europe/Paris") from None


@dataclass
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None
    timezone: str = "UTC"
    incomplete_grace: timedelta = field(default_factory=lambda: timedelta(hours=24))

    def __post_init__(self) -> None:
        for name in ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise UsageError(f"{name.replace('_', '-')} must be a whole number >= 0, not {v!r}")
        if self.keep_within is not None and self.keep_within < timedelta(0):
            raise UsageError("keep-within must not be negative")
        if self.incomplete_grace < timedelta(0):
            raise UsageError("the grace period for incomplete backups must not be negative")
        _zone(self.timezone)

    @property
    def empty(self) -> bool:
        return not (self.keep_last or self.keep_hourly or self.keep_daily or self.keep_weekly
                    or self.keep_monthly or self.keep_yearly or self.keep_within is not None)

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)


@dataclass
class BackupEntry:
    id: str
    state: str  # complete | incomplete | failed
    type: str | None
    parent: str | None
    chain: list[str]
    started_at: datetime  # timezone-aware
    last_activity: datetime | None = None  # unfinished backups: when their files last changed


@dataclass
class Decision:
    id: str
    action: str  # keep | remove
    reasons: list[str]
    state: str = COMPLETE
    type: str | None = None
    started_at: datetime | None = None
    # object lock: until when it holds a backup the policy lets go, or (after cleanup --apply)
    # until when a kept backup's lock was extended
    locked_until: datetime | None = None
    held_by_lock: bool = False  # kept only because of a lock (its own or a locked incremental's)

    def as_json(self) -> dict:
        return {"id": self.id, "action": self.action, "reasons": list(self.reasons), "state": self.state,
                "type": self.type, "started_at": self.started_at.isoformat() if self.started_at else None,
                "locked_until": self.locked_until.isoformat() if self.locked_until else None}


# period name -> (policy attribute, bucket of a local datetime)
_PERIODS = (
    ("hourly", "keep_hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", "keep_daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", "keep_weekly", lambda t: tuple(t.isocalendar())[:2]),
    ("monthly", "keep_monthly", lambda t: (t.year, t.month)),
    ("yearly", "keep_yearly", lambda t: (t.year,)),
)


def _aware(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise UsageError(f"{what} must be a timezone-aware datetime, not {dt!r}")
    return dt


def _chain_of(entry: BackupEntry, by_id: dict[str, BackupEntry]) -> list[str]:
    """The entry's chain (base first, itself last); rebuilt from `parent` links when not recorded."""
    if entry.chain:
        return list(entry.chain)
    chain, cur, seen = [entry.id], entry, {entry.id}
    while cur.parent and cur.parent not in seen:
        seen.add(cur.parent)
        chain.append(cur.parent)
        cur = by_id.get(cur.parent)
        if cur is None:
            break
    return chain[::-1]


def decide(backups, policy: RetentionPolicy, now: datetime, locked: dict[str, datetime] | None = None) -> list[Decision]:
    """Keep or remove each backup, with the reasons; newest first (by started_at, then id).
    `locked`: backup id -> the date its object lock ends (repository/object_lock.py); one the
    policy lets go is kept while that date is after `now`, with the reason "locked until DATE",
    and so are the ancestors it needs."""
    _aware(now, "now")
    entries = sorted(backups, key=lambda e: (_aware(e.started_at, f"started_at of {e.id}"), e.id), reverse=True)
    by_id: dict[str, BackupEntry] = {}
    for e in entries:
        if e.id in by_id:
            raise UsageError(f"backup {e.id} appears twice")
        if e.state not in STATES:
            raise UsageError(f"backup {e.id}: unknown state {e.state!r}")
        by_id[e.id] = e
    reasons: dict[str, list[str]] = {e.id: [] for e in entries}
    complete = [e for e in entries if e.state == COMPLETE]
    grace = format_duration(policy.incomplete_grace)

    if policy.empty:
        for e in entries:
            reasons[e.id].append("no policy")
    else:
        if complete:
            reasons[complete[0].id].append("newest")
        for i, e in enumerate(complete[: policy.keep_last], 1):
            reasons[e.id].append(f"last #{i}")
        tz = policy.tz
        for name, attr, bucket in _PERIODS:
            limit = getattr(policy, attr)
            if not limit:
                continue
            seen: set = set()
            for e in complete:
                if len(seen) >= limit:
                    break
                b = bucket(e.started_at.astimezone(tz))
                if b not in seen:
                    seen.add(b)
                    reasons[e.id].append(f"{name} #{len(seen)}")
        if policy.keep_within is not None:
            cutoff = now - policy.keep_within
            label = f"within {format_duration(policy.keep_within)}"
            for e in complete:
                if e.started_at >= cutoff:
                    reasons[e.id].append(label)
        for e in entries:
            # an unfinished backup's age is its last activity: a backfill of an old day is new
            if e.state != COMPLETE and now - (e.last_activity or e.started_at) <= policy.incomplete_grace:
                reasons[e.id].append(f"{e.state}, within grace" + (
                    f" (written {format_duration(now - e.last_activity)} ago)" if e.last_activity else ""))

    # Chains: every kept incremental keeps its ancestors (to a fixpoint, should chains disagree).
    kept = {bid for bid, r in reasons.items() if r}
    _close_chains(kept, entries, by_id)
    # What the policy lets go but an object lock still holds: kept, saying until when
    held = {e.id: until for e in entries if e.id not in kept and (until := (locked or {}).get(e.id)) is not None
            and until > now}
    for bid, until in held.items():
        e = by_id[bid]
        why = "no rule keeps it" if e.state == COMPLETE else f"{e.state}, older than grace {grace}"
        reasons[bid].append(f"locked until {until.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ} (then removed: {why})")
    policy_kept = set(kept)
    kept |= set(held)
    needed = _close_chains(kept, entries, by_id)
    for anc, children in needed.items():
        order = sorted(children, key=lambda c: (by_id[c].started_at, c), reverse=True)
        reasons[anc].extend(f"needed by {'incremental' if by_id[c].state == COMPLETE else 'unfinished incremental'} {c}"
                            for c in order)

    out = []
    for e in entries:
        if reasons[e.id]:
            out.append(Decision(e.id, "keep", reasons[e.id], e.state, e.type, e.started_at, locked_until=held.get(e.id),
                                held_by_lock=e.id not in policy_kept))
        elif e.state == COMPLETE:
            out.append(Decision(e.id, "remove", ["no rule keeps it"], e.state, e.type, e.started_at))
        else:
            out.append(Decision(e.id, "remove", [f"{e.state}, older than grace {grace}"], e.state, e.type, e.started_at))
    return out


def _close_chains(kept: set[str], entries: list[BackupEntry], by_id: dict[str, BackupEntry]) -> dict[str, list[str]]:
    """Adds to `kept` every ancestor a kept backup needs; returns ancestor -> the backups needing it."""
    todo = [e for e in entries if e.id in kept]
    needed: dict[str, list[str]] = {}
    while todo:
        e = todo.pop(0)
        if e.state == "failed":
            continue  # never resumed: its parent is not needed by it
        for anc in _chain_of(e, by_id):
            if anc == e.id or anc not in by_id:
                continue
            needed.setdefault(anc, [])
            if e.id not in needed[anc]:
                needed[anc].append(e.id)
            if anc not in kept:
                kept.add(anc)
                todo.append(by_id[anc])
    return needed
