"""Bounded, order-preserving fan-out: at most N calls in flight, results in input order.

Input is consumed lazily, so an iterator of a million keys never sits in memory.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_window(
    submit: Callable[[T], Future], items: Iterable[T], window: int
) -> Iterator[R]:
    """Yield the results of `submit(item)` in order with at most `window` pending."""
    if window < 1:
        raise ValueError("concurrency must be at least 1")
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def threaded_ordered_map(
    fn: Callable[[T], R], items: Iterable[T], concurrency: int
) -> Iterator[R]:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        yield from ordered_window(lambda item: pool.submit(fn, item), items, concurrency)
