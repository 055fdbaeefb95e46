"""How long work reports its progress: a small interface the CLI and Dagster implement."""

from __future__ import annotations


class Progress:
    """No-op progress; subclasses show it (rich on a terminal, Dagster logs)."""

    def start(self, task: str, total: int | None = None) -> None: ...

    def advance(self, task: str, n: int = 1) -> None: ...

    def finish(self, task: str) -> None: ...

    def message(self, text: str) -> None: ...


def human_bytes(n: int | None) -> str:
    """1,234.5 KB: sizes as people read them in progress lines and summaries."""
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)
