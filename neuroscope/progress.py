"""Progress of the long steps of a run (λ search, control draws, subsets, minimal subset, layer
probes, seeds, correlation passes, ablation arms): `with stage("λ search", total=n) as step: ...;
step()`. Stages nest; each line shows the open stages' i/n, the innermost one's elapsed time and
an estimate of what is left.

`configure(mode)` (the top-level `progress` key): `auto` shows a live rich bar on stderr when it is
a terminal and nothing otherwise; `true` (`always`) also prints plain lines when it is not (at most
one a second per step, and a heartbeat line at least every `HEARTBEAT` seconds while a stage is
open, so a log tells work from a hang); `false` prints nothing, the extraction bar included.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from neuroscope.errors import ConfigError

MODES = ("auto", "true", "false")
_ALIASES = {"always": "true", "yes": "true", "on": "true", "never": "false", "no": "false", "off": "false"}
HEARTBEAT = 5.0  # plain lines: at least one this often while a stage is open (seconds)
MIN_GAP = 1.0  # plain lines: a finished step is printed when the last line is at least this old
PREFIX = "progress: "

Writer = Callable[[str], None]


def _stderr(line: str) -> None:
    """Write one line to stderr (a closed or broken stream is ignored: progress never fails a run)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


@dataclass
class _Stage:
    """One open stage: its name, size, steps done, start time, last note and rich task id."""

    name: str
    total: int | None
    start: float = field(default_factory=time.monotonic)
    done: int = 0
    note: str = ""
    task: Any = None


@dataclass
class _State:
    """The module's setting and what is open now (one run per process: module-level)."""

    mode: str = "auto"
    writer: Writer | None = None  # None: stderr
    stack: list[_Stage] = field(default_factory=list)
    display: str | None = None  # "rich" | "plain" | None while stages are open
    last_line: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    stop: threading.Event | None = None
    thread: threading.Thread | None = None
    bar: Any = None  # rich.progress.Progress while the rich display is live


_state = _State()


def normalize(mode: Any, key: str = "progress") -> str:
    """`mode` (auto, true/always, false, or a bool) as one of MODES; anything else is a ConfigError naming `key`."""
    if isinstance(mode, bool):
        return "true" if mode else "false"
    text = "auto" if mode is None else str(mode).strip().lower()
    text = _ALIASES.get(text, text)
    if text not in MODES:
        raise ConfigError(f"{key}: expected auto (a live bar on a terminal), true (always, plain lines "
                          f"when not a terminal) or false (nothing), got {mode!r}")
    return text


def configure(mode: Any, key: str = "progress") -> str:
    """Set the progress mode for the rest of the process (config key `key`); returns the previous one."""
    new = normalize(mode, key)
    with _state.lock:
        old, _state.mode = _state.mode, new
    return old


def mode() -> str:
    """The current mode: auto, true or false."""
    return _state.mode


def allowed() -> bool:
    """False when progress is switched off (`progress=false`): other bars (extraction) stay quiet too."""
    return _state.mode != "false"


def set_writer(writer: Writer | None) -> Writer | None:
    """Send plain progress lines to `writer` (None: stderr) instead of a live bar; returns the previous writer."""
    with _state.lock:
        old, _state.writer = _state.writer, writer
    return old


def _is_tty() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _display() -> str | None:
    """What an outermost stage shows now: a rich bar, plain lines or nothing."""
    if _state.mode == "false":
        return None
    if _state.writer is not None:
        return "plain" if _state.mode == "true" else None
    if _is_tty():
        return "rich"
    return "plain" if _state.mode == "true" else None


def clock(seconds: float) -> str:
    """`h:mm:ss` of a duration (as rich's time columns)."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def estimate(done: int, total: int | None, elapsed: float) -> str:
    """Time left at the pace so far (`?` before the first step or without a total)."""
    if not total or done <= 0:
        return "?"
    return clock(elapsed / done * max(total - done, 0))


def line(stack: list[_Stage], now: float) -> str:
    """One plain progress line for the open stages: each `name i/n`, then the innermost's elapsed
    time and estimate."""
    parts = []
    for s in stack:
        count = f"{s.done}/{s.total if s.total is not None else '?'}"
        parts.append(f"{s.name} {count}" + (f" ({s.note})" if s.note else ""))
    inner = stack[-1]
    elapsed = now - inner.start
    return (f"{PREFIX}{' › '.join(parts)} · elapsed {clock(elapsed)} · "
            f"left ~{estimate(inner.done, inner.total, elapsed)}")


def _emit(now: float) -> None:
    """Write the current plain line (lock held)."""
    _state.last_line = now
    (_state.writer or _stderr)(line(_state.stack, now))


def _heartbeat(stop: threading.Event) -> None:
    """Plain mode: a line whenever none came for HEARTBEAT seconds, until `stop`."""
    while not stop.wait(min(0.25, HEARTBEAT / 4)):
        with _state.lock:
            now = time.monotonic()
            if _state.stack and now - _state.last_line >= HEARTBEAT:
                _emit(now)


def _open_display(kind: str) -> None:
    """Start the rich live bar or the plain heartbeat for an outermost stage (lock held)."""
    _state.display = kind
    if kind == "rich":
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        _state.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                              console=Console(stderr=True), transient=False, refresh_per_second=4)
        _state.bar.start()
    else:
        _state.stop = threading.Event()
        _state.thread = threading.Thread(target=_heartbeat, args=(_state.stop,), name="progress", daemon=True)
        _state.thread.start()


def _close_display() -> None:
    """Stop the live bar or the heartbeat after the outermost stage (lock held)."""
    if _state.bar is not None:
        _state.bar.stop()
        _state.bar = None
    if _state.stop is not None:
        _state.stop.set()
    _state.display = None


class Step:
    """Advances its stage: `step()` after each unit of work, `step(note="top 5 %")` names it."""

    def __init__(self, stage: _Stage | None) -> None:
        self._stage = stage

    def __call__(self, n: int = 1, note: str | None = None) -> None:
        s = self._stage
        if s is None:
            return
        with _state.lock:
            s.done += n
            if note is not None:
                s.note = note
            now = time.monotonic()
            if _state.display == "rich" and _state.bar is not None and s.task is not None:
                _state.bar.update(s.task, completed=s.done, description=_describe(s))
            elif _state.display == "plain" and _state.stack and now - _state.last_line >= MIN_GAP:
                _emit(now)


def _describe(s: _Stage) -> str:
    return f"{s.name} ({s.note})" if s.note else s.name


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Step]:
    """An open stage of `total` steps (None: unknown) while the block runs; yields its `Step`."""
    s = None
    with _state.lock:
        if not _state.stack:
            kind = _display()
            if kind is not None:
                _open_display(kind)
        if _state.display is not None:
            s = _Stage(name, None if total is None else int(total))
            _state.stack.append(s)
            if _state.display == "rich":
                s.task = _state.bar.add_task(name, total=s.total)
            elif len(_state.stack) == 1 or time.monotonic() - _state.last_line >= MIN_GAP:
                _emit(time.monotonic())
    thread = None
    try:
        yield Step(s)
    finally:
        if s is not None:
            with _state.lock:
                if _state.display == "plain" and _state.stack == [s]:
                    _emit(time.monotonic())  # the outermost stage's last line: how long it took
                if s in _state.stack:
                    _state.stack.remove(s)
                if _state.display == "rich" and _state.stack and s.task is not None:
                    _state.bar.remove_task(s.task)  # inner stages leave; the outermost stays on screen
                if not _state.stack:
                    thread = _state.thread
                    _state.thread = None
                    _close_display()
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=1.0)
