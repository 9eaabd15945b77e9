"""What the command line prints for people: tables and progress, through ``rich``.

- Tables (:func:`table`) are plain aligned columns — no box, no colour, no trailing blanks —
  so they read the same in a terminal, a log or a pipe and stay greppable (``--json`` is the
  form for programs), at their natural width rather than cut to a terminal's.
- Progress (:func:`reading_progress`) is a transient bar on stderr, drawn only on a terminal: a
  pipe or a log file gets no progress lines, and a failure stays one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core import reader

#: Width given to output that is not a terminal: wide enough that no row wraps.
PIPE_WIDTH = 1000


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    right: Sequence[str] = (),
    title: str | None = None,
) -> Table:
    """A plain table: a header line, then one line per row; ``right``: columns aligned right
    (numbers)."""
    t = Table(box=None, pad_edge=False, show_edge=False, title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", no_wrap=True)
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def render(renderable: Any) -> str:
    """A table (or any renderable) as text, at its natural width, without colour."""
    console = Console(width=PIPE_WIDTH, no_color=True, highlight=False, record=True)
    with console.capture() as captured:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


class Steps:
    """The progress of a command made of steps; each ``step(text)`` replaces the description."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def step(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text, completed=0, total=None)


@contextmanager
def reading_progress(label: str) -> Iterator[Steps]:
    """A transient progress bar on stderr while topics are read (:mod:`core.reader`
    reports each topic's records), only on a terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield Steps(None, None)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def report(topic: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {topic}", completed=done, total=total or None)

        token = reader.progress.set(report)
        try:
            yield Steps(bar, task)
        finally:
            reader.progress.reset(token)
