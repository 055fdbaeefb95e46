"""S3 Object Lock for an S3 repository: immutable backups (as restic and kopia users get them).

A repository created with `--object-lock governance|compliance --object-lock-days N` on a
bucket made with object lock enabled keeps that choice in `object-lock.json` at its root (beside
`crypto.json`), so every later writer (backup, copy, a Dagster step) and cleanup apply it
without being told again; the options given again replace it (a longer or shorter period, the
other mode).

The rule (engine/cleanup.py applies the second half):
- every backup file and manifest is written with retain-until = the time it is written + N days
  (the time it is written, not the backup's id: a backfill of an old day is locked from now);
- each `cleanup --apply` extends, for every complete backup the policy keeps (its chains
  included), the retain-until of each object version that ends before now + N days to
  now + N days. So a kept backup stays locked at least N days past the last cleanup that kept
  it, however long the policy keeps it (keep-monthly, keep-yearly), and one the policy lets go
  becomes deletable at most N days after the last cleanup that kept it;
- cleanup never deletes a backup any of whose object versions is still locked: it keeps it,
  saying "locked until DATE", and removes it on a run after that date.

N is thus the protection a backup has without any cleanup run, and the delay before storage is
freed once the policy drops a backup: choose it at least as long as the time between cleanup
runs (plus the time it takes to notice an attack). It is not derived from the policy: the
longest period a policy could keep a backup (keep-monthly 6: 180 days) would lock every daily
backup that long, and the extension gives the policy's longer keeps anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from ..errors import IntegrityError, UsageError

CONFIG_NAME = "object-lock.json"
MODES = ("governance", "compliance")


@dataclass(frozen=True)
class ObjectLock:
    mode: str  # GOVERNANCE | COMPLIANCE (S3's spelling)
    days: int

    def until(self, now: datetime) -> datetime:
        """now + days, up to the next whole second (S3 keeps retain-until dates to the second: a
        date with a fraction would read back earlier and look short again)."""
        until = now + timedelta(days=self.days)
        return until.replace(microsecond=0) + timedelta(seconds=1 if until.microsecond else 0)

    def as_config(self) -> bytes:
        return orjson.dumps({"mode": self.mode, "days": self.days}, option=orjson.OPT_INDENT_2)


def object_lock_from(mode: str | None, days: int | None) -> ObjectLock | None:
    """The options as given (None when --object-lock is not); checked."""
    if mode is None:
        if days is not None:
            raise UsageError("--object-lock-days goes with --object-lock governance|compliance")
        return None
    if mode.lower() not in MODES:
        raise UsageError(f"object lock mode {mode!r} unknown; choose governance or compliance")
    if days is None:
        raise UsageError("--object-lock needs --object-lock-days N: how long each backup stays locked "
                         "(and a kept one is extended to) past each write and each cleanup")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise UsageError(f"--object-lock-days must be a whole number of days >= 1, not {days!r}")
    return ObjectLock(mode.upper(), days)


def _parse(data: bytes, where: str) -> ObjectLock:
    try:
        raw = orjson.loads(data)
        lock = ObjectLock(str(raw["mode"]).upper(), int(raw["days"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise IntegrityError(f"{where}/{CONFIG_NAME} is not an object lock config") from None
    if lock.mode.lower() not in MODES or lock.days < 1:
        raise IntegrityError(f"{where}/{CONFIG_NAME}: mode {lock.mode!r}, days {lock.days!r} are not valid")
    return lock


def open_object_lock(repo, wanted: ObjectLock | None) -> ObjectLock | None:
    """The object lock of one S3 repository: as stored in its object-lock.json, or as `wanted`
    (then stored, once the bucket is checked to have object lock enabled)."""
    data = repo.read_root(CONFIG_NAME)
    stored = _parse(data, repo.url) if data is not None else None
    if wanted is None or wanted == stored:
        return stored
    repo.check_object_lock_enabled()
    repo.replace_root(CONFIG_NAME, wanted.as_config())
    return wanted
