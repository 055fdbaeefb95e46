"""How long work reports its progress: a small interface the CLI and Dagster implement."""

from __future__ import annotations


class Progress:
    """No-op progress; subclasses show it (rich on a terminal, Dagster logs)."""

    def start(self, task: str, total: int | None = None) -> None: ...

    def advance(self, task: str, n: int = 1) -> None: ...

    def finish(self, task: str) -> None: ...

    def message(self, text: str) -> None: ...
