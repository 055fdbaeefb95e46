"""Progress on a terminal with rich: per resource, records done, rate and ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)

from ..engine.progress import Progress


class RateColumn(TextColumn):
    def __init__(self):
        super().__init__("")

    def render(self, task):
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "", style="progress.data.speed")


class TerminalProgress(Progress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(file=sys.stderr)
        self._bar = RichProgress(
            TextColumn("[bold]{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        self._bar.__exit__(*exc)

    def start(self, task: str, total: int | None = None) -> None:
        self._tasks[task] = self._bar.add_task(task, total=total)

    def advance(self, task: str, n: int = 1) -> None:
        self._bar.advance(self._tasks[task], n)

    def finish(self, task: str) -> None:
        tid = self._tasks[task]
        done = self._bar.tasks[tid].completed if tid < len(self._bar.tasks) else 0
        self._bar.update(tid, total=done, completed=done)

    def message(self, text: str) -> None:
        self._bar.console.print(text)
