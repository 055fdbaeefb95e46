"""Verification with memory (borg check --max-duration, pgBackRest verify): every verification of
a committed backup is remembered in the repository (repository/verifications.py), and a run
with a time budget verifies the least recently verified backups first, so runs that each fit
in a night cover the whole repository in turn.

Budget: a backup is the unit. A run never starts another backup once the budget is spent, but
finishes the one in progress (a half-verified backup proves nothing), and always verifies at
least one: a budget of 0 verifies exactly the next backup in line. What it did not reach is
reported as left; the next run takes those first (never verified, then oldest verification).

A failure (a file that differs from its manifest, a missing file, a failed record check) is
remembered and the run goes on with the next backup, like restic check; the caller reports the
failures at the end (the CLI exits 4). Anything else (storage unreachable, wrong key) stops the
run; what was verified until then stays remembered.

Concurrency: a budgeted run holds the repository's `verify` lease (repository/lock.py), so two
runs never verify the same backups at once (the second fails with exit 7 or waits with
--lock-wait) and `cleanup --apply`, exclusive, does not remove backups under it. Backups are not
held up: a `verify` lease conflicts with no backup. `verify ID` alone takes no lease: a record is
one whole-object put, so concurrent writers leave the later record, never a broken one.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import IntegrityError, NotFound, StorageError, UsageError
from ..repository import Repository
from ..repository.lock import LockOptions, acquire
from ..repository.manifest import Verification
from ..repository.verifications import read_verification, write_verification
from ..store.filesystem import iso_ms
from .catalog import complete_manifests
from .progress import Progress
from .verify import VerifyReport, verify_backup

log = logging.getLogger(__name__)
_BUDGET = re.compile(r"(\d+(?:\.\d+)?)([hms])")
_UNIT = {"h": 3600, "m": 60, "s": 1}


def parse_budget(text: str | float) -> float:
    """A time budget in seconds: 90s, 10m, 1h, 1h30m, or a plain number of seconds; 0 verifies
    exactly one backup."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    elif re.fullmatch(r"\d+(?:\.\d+)?", text.strip()):
        seconds = float(text)
    elif re.fullmatch(f"(?:{_BUDGET.pattern})+", text.strip()):
        seconds = sum(float(n) * _UNIT[u] for n, u in _BUDGET.findall(text))
    else:
        raise UsageError(f"budget {text!r} is not a duration: give e.g. 90s, 10m, 1h or 1h30m (0: one backup)")
    if seconds < 0:
        raise UsageError(f"budget {text!r} is negative")
    return seconds


def _committed(repo: Repository, backup_id: str) -> bool:
    try:
        return repo.read_manifest(backup_id) is not None
    except IntegrityError:
        return True  # committed, but its manifest no longer parses: a failure to remember


def _remember(repo: Repository, record: Verification, best_effort: bool) -> None:
    try:
        write_verification(repo, record)
    except StorageError as exc:  # read-only credentials: `verify ID` still answers
        if not best_effort:
            raise
        log.warning("the verification of %s is not recorded in the repository: %s", record.backup_id, exc)


def verify_and_record(repo: Repository, backup_id: str, progress: Progress | None = None, *,
                      best_effort: bool = False) -> tuple[Verification, VerifyReport | None, Exception | None]:
    """Verify a committed backup and remember the outcome: (record, report or None, failure or
    None). A backup without a manifest (incomplete, or removed meanwhile) raises, unremembered."""
    at, start = iso_ms(datetime.now(timezone.utc)), time.monotonic()
    try:
        report = verify_backup(repo, backup_id, progress)
    except (IntegrityError, NotFound) as exc:
        if not _committed(repo, backup_id):
            raise
        record = Verification(backup_id, at, "failed", str(exc), None, round(time.monotonic() - start, 3))
        _remember(repo, record, best_effort)
        return record, None, exc
    record = Verification(backup_id, at, "ok", None, report.bytes, round(time.monotonic() - start, 3),
                          report.content_checked)
    _remember(repo, record, best_effort)
    return record, report, None


def verify_remembered(repo: Repository, backup_id: str, progress: Progress | None = None) -> VerifyReport:
    """`verify ID`: verify_backup, its outcome remembered first (also when it raises)."""
    _record, report, failure = verify_and_record(repo, backup_id, progress, best_effort=True)
    if failure is not None:
        raise failure
    return report


def verification_queue(repo: Repository) -> list[str]:
    """Committed backups in the order a budgeted run takes them: never verified first (oldest
    backup first), then the least recently verified."""
    last = {m.id: read_verification(repo, m.id) for m in complete_manifests(repo)}  # oldest backup first
    return sorted(last, key=lambda bid: (last[bid] is not None, last[bid].verified_at if last[bid] else ""))


@dataclass
class BudgetReport:
    budget_seconds: float
    results: list[Verification] = field(default_factory=list)  # this run's verifications, in order
    left: list[str] = field(default_factory=list)  # not reached: the next run starts with these
    seconds: float = 0.0

    @property
    def verified(self) -> list[str]:
        return [r.backup_id for r in self.results if r.outcome == "ok"]

    @property
    def failed(self) -> list[Verification]:
        return [r for r in self.results if r.outcome != "ok"]

    @property
    def bytes(self) -> int:
        return sum(r.bytes or 0 for r in self.results)

    def as_json(self) -> dict:
        return {"ok": not self.failed, "budget_seconds": self.budget_seconds, "verified": self.verified,
                "failed": [{"id": r.backup_id, "error": r.error} for r in self.failed], "left": self.left,
                "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "results": [{"id": r.backup_id, "verified_at": r.verified_at, "outcome": r.outcome, "error": r.error,
                             "bytes": r.bytes, "seconds": r.seconds, "content_checked": r.content_checked}
                            for r in self.results]}


def verify_within(repo: Repository, budget_seconds: float, *, lock: LockOptions | None = None,
                  progress: Progress | None = None) -> BudgetReport:
    """Verify the least recently verified committed backups for `budget_seconds` (see above),
    remembering each outcome, under the repository's `verify` lease. Failures are in the
    report (`failed`), not raised."""
    progress = progress or Progress()
    report = BudgetReport(budget_seconds)
    with acquire(repo, "verify", repo.url, lock):
        queue = verification_queue(repo)
        progress.start("verify", total=len(queue))
        start = time.monotonic()
        for n, backup_id in enumerate(queue):
            if n and time.monotonic() - start >= budget_seconds:
                report.left = queue[n:]
                break
            progress.message(f"verifying {backup_id}")
            report.results.append(verify_and_record(repo, backup_id)[0])
            progress.advance("verify")
        report.seconds = time.monotonic() - start
        progress.finish("verify")
    return report
