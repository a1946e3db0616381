"""One line of progress on stderr, redrawn in place: ``verifying  12.0 MiB / 48.0 MiB  95.1 MiB/s``.

Drawn only when stderr is a terminal and ``-q`` was not given
(:func:`~photonpack.cli._app.progress_shown`); otherwise nothing at all is
written, so logs and pipes get exactly the output they got before. Library code
reports plain numbers through callbacks; this is where they become a line.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType

from photonpack._units import format_size

__all__ = ["CountLine", "InstallLine", "ProgressLine", "StepLine"]

# At most ten redraws a second: enough to look live, cheap against a 1 GB/s read.
_REDRAW_INTERVAL = 0.1


class ProgressLine:
    """``label  done / total  rate`` on one stderr line; cleared when the stage ends.

    ``update(done)`` takes the bytes done so far (thread-safe). The line is
    erased on exit so the command's normal result is the last thing shown.
    """

    def __init__(self, label: str, total: int, *, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self._done = 0
        self._start = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def update(self, done: int) -> None:
        """The stage has done ``done`` bytes; redraws when the last draw is 0.1 s old."""
        if not self.enabled:
            return
        with self._lock:
            self._done = done
            now = time.monotonic()
            if now - self._drawn_at >= _REDRAW_INTERVAL:
                self._drawn_at = now
                self._draw(now)

    def begin(self, total: int) -> None:
        """The stage's size is known now: ``total`` bytes."""
        self.retitle(self.label, total)

    def retitle(self, label: str, total: int) -> None:
        """Start over with another label and total (the next blob of a push): done and rate at 0."""
        with self._lock:
            self.label, self.total = label, total
            self._done, self._start = 0, time.monotonic()

    def close(self) -> None:
        """Erase the line, if one was drawn."""
        with self._lock:
            if self.enabled and self._width:
                sys.stderr.write("\r" + " " * self._width + "\r")
                sys.stderr.flush()
                self._width = 0

    def _figures(self, now: float) -> str:
        elapsed = now - self._start
        rate = ""
        if elapsed >= _REDRAW_INTERVAL:  # the first draw has no rate worth showing yet
            rate = f"  {format_size(int(self._done / elapsed))}/s"
        return f"  {format_size(self._done)} / {format_size(self.total)}{rate}"

    def _draw(self, now: float) -> None:
        line = _fit(self.label, self._figures(now))
        pad = " " * max(0, self._width - len(line))
        sys.stderr.write("\r" + line + pad)
        sys.stderr.flush()
        self._width = len(line)


class CountLine(ProgressLine):
    """``label … N things`` on one stderr line: a count whose total is not known ahead."""

    def __init__(self, label: str, unit: str, *, enabled: bool) -> None:
        super().__init__(label, 0, enabled=enabled)
        self.unit = unit

    def _figures(self, now: float) -> str:
        return f" … {self._done} {self.unit}"


class StepLine:
    """``label  3.2 s`` on one stderr line, its clock redrawn until the step ends, then erased.

    For a step whose size is not counted in bytes (the first install of an
    environment, a gc): the user sees what runs and that it still does.
    """

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0

    def __enter__(self) -> StepLine:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self._width:
                sys.stderr.write("\r" + " " * self._width + "\r")
                sys.stderr.flush()

    def _figures(self, elapsed: float) -> str:
        return f"  {elapsed:.1f} s"

    def _run(self) -> None:
        start = time.monotonic()
        while True:
            line = _fit(self.label, self._figures(time.monotonic() - start))
            sys.stderr.write("\r" + line + " " * max(0, self._width - len(line)))
            sys.stderr.flush()
            self._width = len(line)
            if self._stop.wait(_REDRAW_INTERVAL):
                return


class InstallLine(StepLine):
    """``installing 47 wheels …  2.1 GiB / 5.7 GiB  12.3 s``, then ``5.7 GiB, compiling``.

    The bytes are the files the install writes (``begin``, ``update``: an
    :class:`~photonpack.install.installer.InstallProgress`); once they are all out,
    the clock runs on while the last modules compile.
    """

    def __init__(self, label: str, *, enabled: bool) -> None:
        super().__init__(label, enabled=enabled)
        self._done = self._total = 0

    def begin(self, total: int) -> None:
        self._total = total

    def update(self, done: int) -> None:
        self._done = done  # read by the drawing thread: one int, no lock needed

    def _figures(self, elapsed: float) -> str:
        if not self._total:
            return super()._figures(elapsed)
        if self._done >= self._total:
            return f"  {format_size(self._total)}, compiling  {elapsed:.1f} s"
        return f"  {format_size(self._done)} / {format_size(self._total)}  {elapsed:.1f} s"


def _fit(label: str, figures: str) -> str:
    """``label + figures`` no wider than the terminal, the label cut short if need be.

    A line as wide as the terminal wraps, and \\r then redraws only its last row:
    the label (a blob's path can be long) gives way, the figures stay.
    """
    room = _columns() - 1 - len(figures)
    return (label if len(label) <= room else label[: max(0, room - 3)] + "...") + figures


def _columns() -> int:
    """The width of the terminal stderr is on (80 when it does not say)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 80
    except (OSError, ValueError):
        return 80
