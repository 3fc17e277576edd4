"""Hypothesis fuzzing of the Telegram webhook: arbitrary bodies never get a 500 or a crash."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.telegram.conftest import Harness
from tests.test_fuzz import json_values

_ids = itertools.count(900_000)


def message_like(draw_update_id: int, body: Any, chat_id: int) -> dict[str, Any]:
    """Half-valid updates: the real shape with fuzzed fields, which reach the deep parsers."""
    return {"update_id": draw_update_id, "message": {
        "message_id": 1, "date": 0, "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "x"}, "text": body}}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=json_values, raw=st.binary(max_size=200), text=st.text(max_size=200),
       shape=st.sampled_from(["json", "raw", "message", "callback"]))
async def test_any_body_is_answered_without_a_server_error(
    tg: Harness, body: Any, raw: bytes, text: str, shape: str
) -> None:
    update_id = next(_ids)
    if shape == "json":
        payload: bytes = orjson.dumps(body)
    elif shape == "raw":
        payload = raw
    elif shape == "message":
        payload = orjson.dumps(message_like(update_id, text, 880_000 + update_id % 50))
    else:
        payload = orjson.dumps({"update_id": update_id, "callback_query": {
            "id": "q", "chat_instance": "1", "data": text,
            "from": {"id": 5, "is_bot": False, "first_name": "x"}}})
    status = await tg.post(payload)
    assert status in {200, 400}, (shape, status)


async def test_numbers_beyond_64_bits_are_a_bad_request(tg: Harness) -> None:
    for body in (b'{"update_id": 99999999999999999999999999, "message": {}}',
                 b'{"update_id": 1e400}', b'{"update_id": -0, "message": []}'):
        assert await tg.post(body) == 400
