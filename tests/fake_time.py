"""A fake monotonic clock and sleep for code that takes both as parameters (bot/flood.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeTime:
    """A clock that moves only when told to; ``sleep`` records the wait and returns at once,
    so messages admitted one after another arrive "at the same instant"."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
