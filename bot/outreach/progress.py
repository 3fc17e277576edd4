"""The live progress line of ``sanad campaign send`` on stderr: sent/targeted and the rate.

On a terminal the line redraws in place; into a file or a pipe it is printed every few seconds,
so a log of a long send stays readable.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from bot.outreach.stats import Progress

RATE_WINDOW = 3.0
"""Seconds over which the displayed rate is averaged."""
PLAIN_EVERY = 5.0


class ProgressBar:
    def __init__(self, stream: TextIO, name: str, template: str, *, width: int = 24,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.name = name
        self.template = template
        self.width = width
        self.clock = clock
        self.tty = stream.isatty()
        self._samples: deque[tuple[float, int]] = deque()
        self._printed = 0.0
        self._drawn = False

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def update(self, progress: Progress, *, force: bool = False) -> None:
        now = self.clock()
        self._samples.append((now, progress.sent))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        if not self.tty and not force and now - self._printed < PLAIN_EVERY:
            return
        self._printed = now
        line = self.line(progress)
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def line(self, progress: Progress) -> str:
        done = progress.settled / progress.targeted if progress.targeted else 0.0
        filled = round(done * self.width)
        return self.template.format(
            name=self.name, bar="#" * filled + "." * (self.width - filled), sent=progress.sent,
            targeted=progress.targeted, rate=self.rate(), failed=progress.failed,
            blocked=progress.blocked)

    def finish(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
