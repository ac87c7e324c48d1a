"""Progress on long work: bars with rate and time left on an interactive terminal, silence
elsewhere.

Library code marks its long steps with :func:`task` whether or not anyone watches; a
command shows them by running the work inside :func:`show_progress`. Outside that block
(tests, pipes, ``--quiet``, library use) a task only logs its description at debug level.
Descriptions name steps and counts, never a quote's text.

    with show_progress(enabled=progress_wanted(quiet)):
        code_file(...)          # inside: with task("coding", total=n) as bar: bar.advance(k)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

log = logging.getLogger(__name__)
T = TypeVar("T")

_display: ContextVar[Progress | None] = ContextVar("framecode_progress", default=None)


def progress_wanted(quiet: bool) -> bool:
    """Bars are shown when stderr is an interactive terminal, unless ``--quiet``."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def show_progress(enabled: bool, *, console: Console | None = None) -> Iterator[None]:
    """Within this block, every :func:`task` draws a bar on stderr (or ``console``); bars
    disappear when their task ends, so only a command's own summary lines stay on screen."""
    if not enabled or _display.get() is not None:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    display = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _rate_column(),
        TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"),
        console=console or Console(stderr=True), transient=True,
    )
    token = _display.set(display)
    try:
        with display:
            yield
    finally:
        _display.reset(token)


def is_shown() -> bool:
    """Whether a bar would be drawn now (worth counting a total that costs a pass to know)."""
    return _display.get() is not None


class Task:
    """One step of long work: ``advance`` as items finish (``update`` is the tqdm spelling)."""

    def __init__(self, display: Progress | None, task_id=None):
        self._display = display
        self._task_id = task_id

    def advance(self, amount: int = 1) -> None:
        if self._display is not None:
            self._display.advance(self._task_id, amount)

    update = advance

    def describe(self, description: str) -> None:
        """Rename the step (e.g. the fold or code now being fitted)."""
        if self._display is not None:
            self._display.update(self._task_id, description=description)


@contextmanager
def task(description: str, total: int | None = None, *, unit: str = "quotes") -> Iterator[Task]:
    """A step of ``total`` items (None when unknown: the bar shows count and rate only)."""
    log.debug("%s%s", description, f" ({total} {unit})" if total is not None else "")
    display = _display.get()
    if display is None:
        yield Task(None)
        return
    task_id = display.add_task(description, total=total, unit=unit)
    try:
        yield Task(display, task_id)
    finally:
        display.remove_task(task_id)


def track(items: Iterable[T], description: str, total: int | None = None, *, unit: str = "quotes",
          size: Callable[[T], int] = lambda _item: 1) -> Iterator[T]:
    """``items`` one by one; each counts ``size(item)`` towards the bar once the caller asks
    for the next (its work on this one done)."""
    with task(description, total, unit=unit) as bar:
        for item in items:
            yield item
            bar.advance(size(item))


def _rate_column():
    """A column showing items per second in the task's unit ("12.5 quotes/s")."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            unit = task.fields.get("unit", "items")
            shown = "-" if speed is None else f"{speed:,.1f}" if speed < 100 else f"{speed:,.0f}"
            return Text(f"{shown} {unit}/s", style="progress.data.speed")

    return RateColumn()


@contextmanager
def report_to(listener: Callable[[str, int, int | None], None]) -> Iterator[None]:
    """Within this block, every :func:`task` calls ``listener(description, done, total)`` as
    it starts and advances (a web page's progress, a log) instead of drawing a bar."""
    token = _display.set(_Listener(listener))
    try:
        yield
    finally:
        _display.reset(token)


class _Listener:
    """The part of rich's Progress that :class:`Task` uses, forwarding to a callback."""

    def __init__(self, listener: Callable[[str, int, int | None], None]):
        self._listener = listener
        self._tasks: dict[int, list] = {}
        self._started = 0

    def add_task(self, description: str, total: int | None = None, **_fields) -> int:
        task_id = self._started = self._started + 1
        self._tasks[task_id] = [description, 0, total]
        self._listener(description, 0, total)
        return task_id

    def advance(self, task_id: int, amount: int = 1) -> None:
        state = self._tasks[task_id]
        state[1] += amount
        self._listener(*state)

    def update(self, task_id: int, description: str) -> None:
        state = self._tasks[task_id]
        state[0] = description
        self._listener(*state)

    def remove_task(self, task_id: int) -> None:
        self._tasks.pop(task_id, None)
