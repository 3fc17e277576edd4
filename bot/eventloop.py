"""Which event loop runs the bot: uvloop where it is installed, asyncio's own otherwise.

uvloop (libuv) schedules callbacks and moves socket data in C; on the Telegram pipeline the
stdlib loop's own bookkeeping (``_run_once``, handles, selector, transports) was ~12-16% of the
bot's CPU (``bench/README.md``). ``SANAD_EVENT_LOOP=asyncio`` keeps the stdlib loop, e.g. to
rule the loop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bot.config import ConfigError

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop to create for ``choice`` (``auto``, ``uvloop``, ``asyncio``); None: stdlib."""
    if choice == "asyncio" or (choice == "auto" and importlib.util.find_spec("uvloop") is None):
        return None
    try:
        import uvloop
    except ImportError:
        raise ConfigError("SANAD_EVENT_LOOP=uvloop, but uvloop is not installed") from None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, choice: str = "auto") -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
