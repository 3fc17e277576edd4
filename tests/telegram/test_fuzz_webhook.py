"""Hypothesis fuzzing of the Telegram webhook: arbitrary bodies and wrongly typed updates never
get a 500 or a traceback. The status follows the contract exactly: 400 unless the body is a JSON
object with an integer ``update_id``, 200 otherwise (see test_unreadable_updates.py).

About 2,100 bodies per run (``SEEN`` counts them by status; ``pytest -s`` prints it)."""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.telegram.conftest import Harness
from tests.telegram.typed_fuzz import (
    body,
    corpus_updates,
    expected_status,
    mistyped,
    served_updates,
    wrong_values,
)
from tests.telegram.updates import Updates
from tests.test_fuzz import json_values

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
_ids = itertools.count(900_000)
SEEN: collections.Counter[int] = collections.Counter()
"""Bodies posted by this module's tests, by the status they got."""


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def report_statuses() -> Iterator[None]:
    yield
    print(f"\nfuzzed webhook bodies: {sum(SEEN.values())}, by status: {dict(sorted(SEEN.items()))}")


async def post_checked(tg: Harness, caplog: pytest.LogCaptureFixture, raw: bytes) -> int:
    """Post ``raw``; the status must be the contract's and nothing may log a traceback."""
    logged = len(caplog.records)
    status = await tg.post(raw)
    SEEN[status] += 1
    assert status == expected_status(raw), (status, raw[:300])
    failures = [r for r in caplog.records[logged:] if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, [r.getMessage() for r in failures]
    return status


def plain_shapes() -> list[dict[str, Any]]:
    """The hot path's two shapes and a block, as PTB-free JSON."""
    updates = Updates(chat_id=880_001, language_code="en")
    return [updates.message("hello"), updates.callback("menu:learn"),
            updates.my_chat_member("kicked"), Updates(chat_id=880_002).message("مرحبا")]


def with_fresh_id(update: dict[str, Any]) -> dict[str, Any]:
    """A new ``update_id`` (when it is still an integer) so de-duplication does not hide a
    body behind an earlier one."""
    if type(update.get("update_id")) is int:
        return {**update, "update_id": next(_ids)}
    return update


# --- wrongly typed fields, from the documented types ------------------------------------------
@fuzz(500)
@given(update=mistyped([u for u in (*plain_shapes(), *served_updates()) if "message" in u]))
async def test_mistyped_messages(tg: Harness, caplog: pytest.LogCaptureFixture,
                                 update: dict[str, Any]) -> None:
    """Messages of every content kind, one to three fields of the wrong type."""
    await post_checked(tg, caplog, body(with_fresh_id(update)))


@fuzz(400)
@given(update=mistyped([u for u in (*plain_shapes(), *served_updates()) if "message" not in u]))
async def test_mistyped_taps_and_membership_changes(
    tg: Harness, caplog: pytest.LogCaptureFixture, update: dict[str, Any]
) -> None:
    """Button taps and membership changes, one to three fields of the wrong type."""
    await post_checked(tg, caplog, body(with_fresh_id(update)))


@fuzz(400)
@given(update=mistyped(corpus_updates(), most=8))
async def test_mistyped_updates_of_every_kind(tg: Harness, caplog: pytest.LogCaptureFixture,
                                              update: dict[str, Any]) -> None:
    """Every kind in the corpus, up to eight fields at once."""
    await post_checked(tg, caplog, body(with_fresh_id(update)))


@fuzz(300)
@given(update=mistyped(plain_shapes(), keep_update_id=False))
async def test_mistyped_update_ids(tg: Harness, caplog: pytest.LogCaptureFixture,
                                   update: dict[str, Any]) -> None:
    """``update_id`` too: a non-integer is the one 400."""
    await post_checked(tg, caplog, body(update))


@fuzz(300)
@given(junk=wrong_values("Object"),
       where=st.sampled_from(["message", "callback_query", "my_chat_member"]))
async def test_update_kinds_of_the_wrong_type(tg: Harness, caplog: pytest.LogCaptureFixture,
                                              junk: Any, where: str) -> None:
    """The whole message, tap or membership change replaced by junk (a string, a list, ...)."""
    await post_checked(tg, caplog, body({"update_id": next(_ids), where: junk}))


# --- arbitrary bodies ---------------------------------------------------------------------------
def message_like(draw_update_id: int, body: Any, chat_id: int) -> dict[str, Any]:
    """Half-valid updates: the real shape with fuzzed fields, which reach the deep parsers."""
    return {"update_id": draw_update_id, "message": {
        "message_id": 1, "date": 0, "chat": {"id": chat_id, "type": "private"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "x"}, "text": body}}


@fuzz(200)
@given(body=json_values, raw=st.binary(max_size=200), text=st.text(max_size=200),
       shape=st.sampled_from(["json", "raw", "message", "callback"]))
async def test_any_body_is_answered_without_a_server_error(
    tg: Harness, caplog: pytest.LogCaptureFixture, body: Any, raw: bytes, text: str, shape: str
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
    await post_checked(tg, caplog, payload)


async def test_numbers_beyond_64_bits_are_a_bad_request(tg: Harness) -> None:
    """Telegram's numbers fit 64 bits; a body with a larger one is not one of its updates."""
    for raw in (b'{"update_id": 99999999999999999999999999, "message": {}}',
                b'{"update_id": 18446744073709551616}', b'{"update_id": 1e400}'):
        assert await tg.post(raw) == 400  # orjson reads them as floats: not an integer id
    update = Updates(chat_id=880_003).message("hello")
    update["message"]["chat"]["id"] = 2**64 - 1  # an integer, but no chat of Telegram's
    assert await tg.post(update) == 200
    assert await tg.post(b'{"update_id": 2, "message": {"chat": {"id": 1e20}}}') == 200
    assert await tg.post(b'{"update_id": -0, "message": []}') == 200  # an integer id
    assert not tg.fake.calls_to("sendMessage")
