"""Updates → Inbound, Outbound → messages: the pure translation, no network, no database."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import Bot, Update

from bot.channels.telegram_render import TEXT_LIMIT, keyboard, render, split_text, utf16_len
from bot.channels.telegram_updates import (
    Blocked,
    Incoming,
    LeaveChat,
    Uncommon,
    read_plain,
    read_update,
    start_payload,
)
from bot.messages import Button, MediaKind, Outbound, UserRef
from tests.telegram.updates import Updates, group_chat

BOT = Bot("123:abc")


def ref(chat_id: int) -> UserRef:
    return UserRef("telegram", f"key-{chat_id}")


def read(data: dict[str, Any]) -> Any:
    return read_update(Update.de_json(data, BOT), ref)


def test_text_message_becomes_inbound() -> None:
    updates = Updates(chat_id=77)
    action = read(updates.message("مرحبا"))
    assert isinstance(action, Incoming)
    assert action.chat_id == 77 and action.user_message_id == 1
    assert action.inbound is not None
    assert action.inbound.text == "مرحبا" and action.inbound.user == ref(77)
    assert action.inbound.message_id == "tg:123:700001"
    assert action.inbound.media is None and action.inbound.start_payload is None
    assert action.callback_query_id is None and action.language_hint == "ar"


def test_start_payload() -> None:
    action = read(Updates().message("/start campaign_42"))
    assert action.inbound.start_payload == "campaign_42"
    assert action.inbound.text == "/start campaign_42"
    assert start_payload("/start@sanad_bot x") == "x"
    assert start_payload("/start") is None
    assert start_payload("/menu x") is None


def test_callback_query_becomes_button() -> None:
    action = read(Updates(chat_id=9).callback("menu:learn"))
    assert isinstance(action, Incoming)
    assert action.callback_query_id == "cb700001"
    assert action.inbound is not None and action.inbound.button_id == "menu:learn"
    assert action.inbound.user == ref(9) and action.user_message_id is None


def test_media_kinds() -> None:
    updates = Updates()
    assert read(updates.sticker()).inbound.media is MediaKind.STICKER
    assert read(updates.voice()).inbound.media is MediaKind.VOICE
    assert read(updates.location()).inbound.media is MediaKind.LOCATION
    photo = read(updates.photo(caption="help"))
    assert photo.inbound.media is MediaKind.PHOTO and photo.inbound.text == "help"
    contact = read(updates.message(contact={"phone_number": "+20100", "first_name": "A"}))
    assert contact.inbound.media is MediaKind.CONTACT
    dice = read(updates.message(dice={"emoji": "🎲", "value": 3}))
    assert dice.inbound.media is MediaKind.OTHER


def test_service_message_is_ignored() -> None:
    updates = Updates()
    assert read(updates.message(pinned_message={
        "message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}})) is None


def test_groups_are_not_served() -> None:
    updates = Updates()
    assert read(updates.message("hello", chat=group_chat(-100))) is None
    tap = read(updates.callback("menu:learn", chat=group_chat(-100)))
    assert isinstance(tap, Incoming) and tap.inbound is None and tap.callback_query_id
    added = read(updates.my_chat_member("member", chat=group_chat(-100)))
    assert added == LeaveChat(-100)
    assert read(updates.my_chat_member("administrator", chat=group_chat(-100))) == LeaveChat(-100)


def test_blocking_the_bot() -> None:
    updates = Updates(chat_id=31)
    assert read(updates.my_chat_member("kicked")) == Blocked(31, ref(31))
    assert read(updates.my_chat_member("member")) is None


def test_unknown_update_is_ignored() -> None:
    edited = Updates().message("hello")
    edited["edited_message"] = edited.pop("message")
    assert read(edited) is None
    assert read({"update_id": 5, "some_future_kind": {"x": 1}}) is None


# --- rendering --------------------------------------------------------------------------
def test_short_titles_two_per_row_long_titles_one() -> None:
    short = keyboard([Button("yes", "نعم"), Button("no", "لا"), Button("menu", "القائمة")])
    assert short is not None
    assert [[b["callback_data"] for b in row] for row in short["inline_keyboard"]] == [
        ["yes", "no"], ["menu"]]
    long = keyboard([Button("a", "🔍 Check my situation"), Button("b", "No")])
    assert long is not None
    assert [len(row) for row in long["inline_keyboard"]] == [1, 1]


def test_bad_callback_data_is_dropped_not_fatal() -> None:
    markup = keyboard([Button("x" * 65, "too long"), Button("ok", "OK")])
    assert markup is not None
    assert [b["callback_data"] for row in markup["inline_keyboard"] for b in row] == ["ok"]
    assert keyboard([]) is None


def test_long_text_split_with_buttons_on_last() -> None:
    text = "\n".join(f"سطر رقم {i} " + " ".join(["كلام"] * 20) for i in range(60))
    assert len(text) > 5000
    chunks = render(Outbound(text, (Button("menu", "القائمة"),)))
    assert len(chunks) == 2
    assert all(utf16_len(c.text) <= TEXT_LIMIT for c in chunks)
    assert "\n".join(c.text for c in chunks) == text
    assert chunks[0].keyboard is None and chunks[1].keyboard is not None
    markup = chunks[1].markup  # PTB's object, for PTB's typed send_message (campaigns)
    assert markup is not None and markup.to_dict() == chunks[1].keyboard


def test_split_counts_utf16_and_never_breaks_an_emoji() -> None:
    text = "🤝" * 3000  # 6000 UTF-16 units, no spaces or newlines
    chunks = split_text(text)
    assert [utf16_len(c) for c in chunks] == [4096, 1904]
    assert "".join(chunks) == text


@given(st.text(alphabet=st.sampled_from("ab 🤝\nس"), max_size=400),
       st.integers(min_value=4, max_value=60))
def test_split_text_properties(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(0 < utf16_len(c) <= limit for c in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())


def test_tap_on_a_message_too_old_to_see() -> None:
    data = Updates(chat_id=12).callback("menu:learn")
    data["callback_query"]["message"] = {
        "message_id": 3, "date": 0, "chat": {"id": 12, "type": "private"}}
    action = read(data)
    assert isinstance(action, Incoming) and action.chat_id == 12
    assert action.inbound is not None and action.inbound.button_id == "menu:learn"


# --- the plain reader of the webhook's hot path agrees with PTB's -----------------------
def plain(data: dict[str, Any]) -> Any:
    return read_plain(data, "123", ref)


def _common_updates() -> list[dict[str, Any]]:
    updates = Updates(chat_id=91, language_code="en")
    arabizi = Updates(chat_id=92, language_code=None)
    return [
        updates.message("hello"), updates.message("ana 3ayez asafer"),
        arabizi.message("مرحبا"), arabizi.message(""),
        updates.callback("menu:learn"), arabizi.callback("scr:yes", message_id=9),
        Updates(chat_id=93, language_code="pt-BR").callback("x" * 64),
    ]


@pytest.mark.parametrize("data", _common_updates())
def test_plain_reader_reads_common_updates_as_ptb_does(data: dict[str, Any]) -> None:
    action = plain(data)
    assert not isinstance(action, Uncommon), "a common update must take the fast path"
    assert action == read(data)


@pytest.mark.parametrize("data", [
    Updates().sticker(), Updates().photo("caption"), Updates().location(),
    Updates().message("hi", chat=group_chat(-100)), Updates().callback("a", chat=group_chat(-5)),
    Updates().callback(""), Updates().my_chat_member("kicked"), Updates().message("/start c7"),
    {"update_id": 1, "edited_message": Updates().message("x")["message"]},
    Updates().message("hi", reply_to_message={"message_id": 1, "date": 0,
                                              "chat": {"id": 1, "type": "private"}}),
])
def test_plain_reader_leaves_everything_else_to_ptb(data: dict[str, Any]) -> None:
    assert isinstance(plain(data), Uncommon)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "type", "text", "date", "chat", "from", "data"]),
                      children, max_size=4),
    max_leaves=8,
)


@given(base=st.sampled_from(_common_updates()), path=st.lists(
    st.sampled_from(["message", "callback_query", "chat", "from", "text", "date", "id", "data",
                     "message_id", "type", "language_code", "is_bot", "first_name",
                     "chat_instance", "update_id", "entities"]), min_size=1, max_size=3),
       value=_json)
def test_plain_reader_never_disagrees_with_ptb_on_mangled_updates(
    base: dict[str, Any], path: list[str], value: Any
) -> None:
    """Replace one field anywhere along ``path`` with junk: the plain reader either gives
    exactly PTB's reading, or steps aside (PTB then decides, 400 included)."""
    data = copy.deepcopy(base)
    node: Any = data
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            break
        node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = value
    action = plain(data)
    if isinstance(action, Uncommon):
        return
    try:
        update = Update.de_json(data, BOT)
    except Exception:  # PTB refuses the body: the plain reader must have stepped aside
        raise AssertionError("plain reader accepted a body PTB refuses") from None
    assert action == read_update(update, ref)
