"""Tables the CLI prints: every cell whole. An id, a URL or a time is folded onto the next
line when the terminal is narrow (or is not a terminal: Rich then assumes 80 columns),
never cut short with an ellipsis."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def table(*headers: str, **options: Any) -> Table:
    """A Rich table whose columns fold instead of truncating."""
    made = Table(*headers, **options)
    for column in made.columns:
        column.overflow = "fold"
    return made


def fold(made: Table) -> Table:
    """Make the columns of ``made`` (added one by one) fold instead of truncating."""
    for column in made.columns:
        column.overflow = "fold"
    return made
