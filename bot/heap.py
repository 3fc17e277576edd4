"""Freeze the start-up heap out of Python's cyclic garbage collector in long-running servers.

``sanad serve`` builds, once, what it keeps until it exits: the NLU model, the content, the
SQLAlchemy metadata, the web app. A full (generation 2) collection walks every tracked object,
these too, with the event loop stopped: on the Telegram pipeline benchmark one took 60-70 ms,
and at 400 messages/s offered on PostgreSQL the backlog it left was most of the p99 (185 ms,
against 44 ms once frozen; ``bench/README.md``). ``gc.freeze()`` moves the objects alive now
to a permanent generation the collector no longer walks; what turns create is collected as
before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect the start-up garbage, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
