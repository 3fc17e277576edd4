"""bot.heap: the start-up heap is frozen out of the cyclic collector; later objects are not."""

from __future__ import annotations

import gc

from bot.heap import freeze_startup_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector can free it


def test_objects_alive_at_start_up_are_no_longer_walked_and_later_garbage_is_collected() -> None:
    kept = Node()
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 0
        walked = gc.get_objects()
        assert not any(o is kept for o in walked)  # a full collection skips it

        later = Node()
        assert any(o is later for o in gc.get_objects())
        del later
        assert gc.collect() >= 1  # cycles made after start-up are still freed
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
