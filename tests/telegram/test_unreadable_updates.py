"""Updates PTB cannot build, and wrongly typed fields: 400 only when ``update_id`` is not an
integer; otherwise 200 (Telegram re-sends anything else for a day), logged without data, and a
private chat's text still answered from the raw JSON. Never a 500."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.telegram_updates import Incoming, read_plain, read_raw
from bot.messages import UserRef
from tests.telegram.conftest import Harness
from tests.telegram.fake_bot_api import Call
from tests.telegram.updates import Updates
from tests.test_fuzz import json_values

CHAT = 987654321
Mutation = Callable[[dict[str, Any]], None]


def ref(chat_id: int) -> UserRef:
    return UserRef("telegram", f"key-{chat_id}")


def text_update(text: str = "مرحبا") -> dict[str, Any]:
    return Updates(chat_id=CHAT, language_code="en").message(text)


def _parent(update: dict[str, Any], path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    node: Any = update
    for key in parents:
        node = node[key]
    return node, last


def setter(path: str, value: Any) -> Mutation:
    """Set ``a.b.c`` in the update to ``value`` (``None`` included)."""
    def mutate(update: dict[str, Any]) -> None:
        node, last = _parent(update, path)
        node[last] = value
    return mutate


def deleter(path: str) -> Mutation:
    def mutate(update: dict[str, Any]) -> None:
        node, last = _parent(update, path)
        del node[last]
    return mutate


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def post_each(tg: Harness, caplog: pytest.LogCaptureFixture, shape: str,
                    cases: list[tuple[str, Mutation, bool]]) -> dict[str, list[Call]]:
    """Post ``shape`` ("message" or "tap", each case in a chat of its own) mutated by each
    case: 200, no traceback, and a reply exactly where ``answered``. The calls each made."""
    updates = Updates(chat_id=CHAT, language_code="en")
    made: dict[str, list[Call]] = {}
    for number, (name, mutate, answered) in enumerate(cases):
        chat = CHAT + number
        update = (updates.message("مرحبا", chat_id=chat) if shape == "message"
                  else updates.callback("menu:language", chat_id=chat))
        mutate(update)
        before = len(tg.fake.calls)
        assert await tg.post(update) == 200, name
        made[name] = tg.fake.calls[before:]
        replied = any(c.method == "sendMessage" for c in made[name])
        assert replied is answered, name
    assert not no_tracebacks(caplog)
    return made


# --- update_id: the one field that decides 400 ------------------------------------------------
async def test_an_update_id_that_is_not_an_integer_is_400(tg: Harness) -> None:
    for update_id in ("1", 1.5, None, True, [1], {"id": 1}):
        update = text_update()
        update["update_id"] = update_id
        assert await tg.post(update) == 400, update_id
    assert not tg.fake.calls_to("sendMessage")


# --- found: these were 500s with a traceback --------------------------------------------------
FORMER_500S = [
    # the hot path turned a date beyond year 9999 into datetime's ValueError
    ("date beyond 9999", setter("message.date", 2**40), True),
    ("date before 1", setter("message.date", -(2**40)), True),
    # PTB keeps whatever it is given: start_payload() called .partition on a dict
    ("text an object", setter("message.text", {"text": "مرحبا"}), False),
    ("text a number", setter("message.text", 5), False),
    ("text a list", setter("message.text", ["مرحبا"]), False),
    ("chat null", setter("message.chat", None), False),
    ("language_code a number", setter("message.from.language_code", 7), True),
]


async def test_former_server_errors_are_acknowledged(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await post_each(tg, caplog, "message", FORMER_500S)


# --- wrongly typed fields: 200, and the text answered when it is still readable --------------
MESSAGE_FIELDS = [
    ("chat.id a string", setter("message.chat.id", str(CHAT)), False),
    ("chat.id a float", setter("message.chat.id", CHAT + 0.5), False),
    ("chat.id beyond 64 bits", setter("message.chat.id", 2**64 - 1), False),
    ("chat a list", setter("message.chat", [CHAT]), False),
    ("chat.type a number", setter("message.chat.type", 1), False),
    ("message a string", setter("message", "مرحبا"), False),
    ("message a list", setter("message", []), False),
    ("message without chat", deleter("message.chat"), False),
    ("message_id a string", setter("message.message_id", "1"), True),
    ("date a string", setter("message.date", "yesterday"), True),
    ("date missing", deleter("message.date"), True),
    ("from a string", setter("message.from", "Mona"), True),
    ("from.id an object", setter("message.from.id", {"id": 1}), True),
    ("entities a string", setter("message.entities", "bold"), True),
    ("entities of numbers", setter("message.entities", [1, 2]), True),
    ("reply_to_message without date", setter("message.reply_to_message", {"message_id": 1}),
     True),
    ("photo an object", setter("message.photo", {"file_id": "x"}), True),
    ("sticker a list", setter("message.sticker", []), True),
    ("forward_origin junk", setter("message.forward_origin", {"type": 5}), True),
]


async def test_wrongly_typed_message_fields(tg: Harness,
                                            caplog: pytest.LogCaptureFixture) -> None:
    await post_each(tg, caplog, "message", MESSAGE_FIELDS)


TAP_FIELDS = [
    ("data an object", setter("callback_query.data", {"menu": 1}), False),
    ("data a number", setter("callback_query.data", 3), False),
    ("from missing", deleter("callback_query.from"), True),
    ("from a list", setter("callback_query.from", [CHAT]), True),
    ("message.date a string", setter("callback_query.message.date", "now"), True),
    ("message.chat.id a string", setter("callback_query.message.chat.id", str(CHAT)), False),
    ("chat_instance a number", setter("callback_query.chat_instance", 42), True),
]


async def test_wrongly_typed_taps_are_still_answered(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    made = await post_each(tg, caplog, "tap", TAP_FIELDS)
    for name, calls in made.items():  # the spinner stops, whatever the tap was
        assert [c.method for c in calls].count("answerCallbackQuery") == 1, name


async def test_a_tap_whose_id_is_not_a_string_is_acknowledged(tg: Harness) -> None:
    update = Updates(chat_id=CHAT).callback("menu:language")
    update["callback_query"]["id"] = {"id": 1}
    assert await tg.post(update) == 200
    assert not tg.fake.calls_to("answerCallbackQuery") and not tg.texts()


async def test_wrongly_typed_membership_changes(tg: Harness) -> None:
    updates = Updates(chat_id=CHAT)
    members: list[Any] = ["kicked", {"status": 5}, [], None]
    for member in members:
        update = updates.my_chat_member("kicked")
        if member != "kicked":
            update["my_chat_member"]["new_chat_member"] = member
        update["my_chat_member"]["date"] = "today"  # PTB cannot build it: read from the JSON
        assert await tg.post(update) == 200, member
    assert not tg.texts()


# --- the fallback: what the JSON still says ---------------------------------------------------
async def test_unbuildable_text_message_gets_the_normal_turn_once(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    update = text_update("my secret plan to travel")
    update["message"]["entities"] = [{"type": "a future entity"}]  # PTB: KeyError
    assert await tg.post(update) == 200
    answer = tg.texts(CHAT)
    assert answer
    assert await tg.post(update) == 200  # Telegram's re-delivery: de-duplicated as usual
    assert tg.texts(CHAT) == answer
    records = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(records) == 2  # each delivery is read, then found a duplicate
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in records)
    assert "a message update" in records[0].getMessage()
    logged = caplog.text
    assert str(CHAT) not in logged and "secret plan" not in logged
    assert "a future entity" not in logged


async def test_a_field_of_the_wrong_type_is_named_in_the_log(
    tg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    update = Updates(chat_id=CHAT).photo()
    update["message"]["caption"] = {"caption": "hidden words"}
    assert await tg.post(update) == 200
    assert "field message.caption" in caplog.text and "hidden words" not in caplog.text


async def test_deep_link_payload_survives_the_fallback(tg: Harness) -> None:
    update = text_update("/start partner_7")
    update["message"]["entities"] = "not a list"
    action = read_raw(update, "123", ref)
    assert isinstance(action, Incoming) and action.inbound is not None
    assert action.inbound.start_payload == "partner_7"
    assert await tg.post(update) == 200
    assert tg.texts(CHAT)


# --- the readers, without the app -------------------------------------------------------------
def _common() -> list[dict[str, Any]]:
    updates = Updates(chat_id=91, language_code="en")
    return [updates.message("hello"), Updates(chat_id=92, language_code=None).message("مرحبا"),
            updates.callback("menu:learn"), updates.message("/start x")]


@pytest.mark.parametrize("data", _common())
def test_raw_reader_agrees_with_the_plain_reader(data: dict[str, Any]) -> None:
    plain = read_plain(data, "123", ref)
    raw = read_raw(data, "123", ref)
    if isinstance(plain, Incoming):
        assert raw == plain
    assert isinstance(raw, Incoming) and raw.inbound is not None


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(_common()), junk=json_values,
       path=st.lists(st.sampled_from(["message", "callback_query", "chat", "from", "text",
                                      "date", "id", "data", "message_id", "type",
                                      "language_code", "new_chat_member", "status"]),
                     min_size=1, max_size=3))
def test_raw_reader_never_raises(base: dict[str, Any], junk: Any, path: list[str]) -> None:
    data = copy.deepcopy(base)
    node: Any = data
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(node.get(key), dict):
            node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = junk
    action = read_raw(data, "123", ref)
    if isinstance(action, Incoming) and action.inbound is not None:
        assert type(action.chat_id) is int
        assert type(action.inbound.text) is str and type(action.inbound.button_id) in (str,
                                                                                      type(None))
