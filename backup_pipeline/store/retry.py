"""Retries for storage requests (restic's retry backend): a request that failed for a passing
reason (a 5xx answer, SlowDown or throttling, a reset or cut connection, a timeout) is sent
again after an exponential, jittered pause, within an overall deadline; anything else (a
missing object, a refused signature, a conflict) fails at once. Every retry is logged at debug
level and counted in `RETRIES` (per process), so a run can say how many it needed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

from ..errors import BackupPipelineError

log = logging.getLogger("backup_pipeline.retry")
T = TypeVar("T")
RETRIES: Counter[str] = Counter()  # operation -> retries made in this process


def retry_count() -> int:
    """Retries made in this process so far: a run reports the difference over its work."""
    return sum(RETRIES.values())

# What a client's error says when the cause passes: the transport failing under a request, or
# the server asking to slow down (obstore and botocore word these differently). Status codes are
# read where the message states them ("status code: 503"), never from a URL that holds digits.
_TRANSIENT = ("status code: 5", "slowdown", "slow down", "throttl", "internalerror", "serviceunavailable",
              "connection reset", "connection closed", "connection aborted", "broken pipe", "timed out",
              "timeout", "incomplete", "error sending request", "error decoding response body", "unexpected eof",
              "connection refused", "end of file", "request or response body error", "http error")
_PERMANENT = ("status code: 4", "signaturedoesnotmatch", "invalidaccesskeyid", "accessdenied", "nosuchbucket",
              "nosuchkey", "precondition", "already exists")
# botocore's transport failures (closed connection, read timeout, cut stream), by class
_TRANSIENT_BOTOCORE = ("HTTPClientError", "ConnectionError", "IncompleteReadError")
_TRANSIENT_CODES = ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                    "ServiceUnavailable", "RequestTimeTooSkewed")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10  # requests in all, the first included
    first_pause: float = 0.05  # seconds, doubled each time, with full jitter
    max_pause: float = 2.0
    deadline: float = 120.0  # no retry starts after this many seconds since the first request

    def pause(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_pause, self.first_pause * (2 ** attempt)))

    def object_store_config(self) -> dict:
        """The same policy for object_store's own retries (multipart parts, streamed reads)."""
        return {"max_retries": self.attempts - 1, "retry_timeout": timedelta(seconds=self.deadline),
                "backoff": {"init_backoff": timedelta(seconds=self.first_pause),
                            "max_backoff": timedelta(seconds=self.max_pause), "base": 2}}


DEFAULT = RetryPolicy()  # read at each call: tests swap it for a quick one


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (BackupPipelineError, FileNotFoundError, asyncio.CancelledError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    response = getattr(exc, "response", None)  # botocore's ClientError
    if isinstance(response, dict) and "Error" in response:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or response["Error"].get("Code") in _TRANSIENT_CODES
    module = type(exc).__module__ or ""
    if module.startswith("botocore") and any(c.__name__ in _TRANSIENT_BOTOCORE for c in type(exc).__mro__):
        return True
    if not (module.startswith(("obstore", "botocore", "urllib3")) or isinstance(exc, OSError)):
        return False
    text = f"{type(exc).__name__} {exc}".lower()
    if any(marker in text for marker in _PERMANENT):
        return False
    return any(marker in text for marker in _TRANSIENT)


def retry_pause(exc: BaseException, attempt: int, started: float, what: str,
                policy: RetryPolicy | None = None) -> float | None:
    """The pause before the next attempt, or None to give up."""
    policy = policy or DEFAULT
    if not is_transient(exc) or attempt + 1 >= policy.attempts or time.monotonic() - started > policy.deadline:
        return None
    RETRIES[what.split(" ", 1)[0]] += 1
    pause = policy.pause(attempt)
    log.debug("retrying %s in %.2fs after attempt %d failed: %s", what, pause, attempt + 1, exc)
    return pause


def retry(fn: Callable[[], T], what: str, policy: RetryPolicy | None = None) -> T:
    """fn() until it succeeds, fails for a lasting reason, or the policy gives up."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            pause = retry_pause(exc, attempt, started, what, policy)
            if pause is None:
                raise
        time.sleep(pause)  # the backoff between two requests
        attempt += 1


async def retry_async(fn: Callable[[], Awaitable[T]], what: str, policy: RetryPolicy | None = None) -> T:
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            pause = retry_pause(exc, attempt, started, what, policy)
            if pause is None:
                raise
        await asyncio.sleep(pause)
        attempt += 1
