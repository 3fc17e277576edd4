"""Hypothesis strategies for wrongly typed Telegram updates, from the Bot API's documented types.

A valid update (the corpus, real shapes) is walked with the documented type of each field
(:data:`FIELD_TYPES`, from https://core.telegram.org/bots/api: ``Integer``, ``String``,
``Boolean``, ``Float``, an object type or ``Array of ...``; a field not listed takes the type
its valid value shows), then one or more fields are replaced by a value of another type: a
string for an integer, an object for a string, a list for an object, ``null``, integers past
64 bits, nested junk, or the field is removed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from tests.test_fuzz import json_values

Path_ = tuple[str | int, ...]

FIELD_TYPES: dict[str, dict[str, str]] = {
    "Update": {
        "update_id": "Integer", "message": "Message", "edited_message": "Message",
        "channel_post": "Message", "edited_channel_post": "Message",
        "business_message": "Message", "callback_query": "CallbackQuery",
        "my_chat_member": "ChatMemberUpdated", "chat_member": "ChatMemberUpdated",
    },
    "Message": {
        "message_id": "Integer", "message_thread_id": "Integer", "from": "User",
        "sender_chat": "Chat", "date": "Integer", "chat": "Chat", "edit_date": "Integer",
        "forward_origin": "MessageOrigin", "reply_to_message": "Message", "via_bot": "User",
        "text": "String", "entities": "Array of MessageEntity", "caption": "String",
        "caption_entities": "Array of MessageEntity", "photo": "Array of PhotoSize",
        "sticker": "Sticker", "voice": "Voice", "document": "Document", "video": "Video",
        "location": "Location", "contact": "Contact", "poll": "Poll", "dice": "Dice",
        "story": "Story", "quote": "TextQuote", "link_preview_options": "LinkPreviewOptions",
        "has_protected_content": "Boolean", "is_from_offline": "Boolean",
        "media_group_id": "String", "new_chat_members": "Array of User",
        "pinned_message": "Message",
    },
    "User": {"id": "Integer", "is_bot": "Boolean", "first_name": "String",
             "last_name": "String", "username": "String", "language_code": "String"},
    "Chat": {"id": "Integer", "type": "String", "title": "String", "username": "String",
             "first_name": "String", "is_forum": "Boolean"},
    "MessageEntity": {"type": "String", "offset": "Integer", "length": "Integer",
                      "url": "String", "user": "User", "language": "String",
                      "custom_emoji_id": "String"},
    "MessageOrigin": {"type": "String", "date": "Integer", "sender_user": "User",
                      "sender_user_name": "String", "sender_chat": "Chat", "chat": "Chat",
                      "message_id": "Integer", "author_signature": "String"},
    "CallbackQuery": {"id": "String", "from": "User", "message": "Message",
                      "inline_message_id": "String", "chat_instance": "String",
                      "data": "String", "game_short_name": "String"},
    "ChatMemberUpdated": {"chat": "Chat", "from": "User", "date": "Integer",
                          "old_chat_member": "ChatMember", "new_chat_member": "ChatMember"},
    "ChatMember": {"user": "User", "status": "String", "until_date": "Integer",
                   "is_anonymous": "Boolean", "can_be_edited": "Boolean"},
    "PhotoSize": {"file_id": "String", "file_unique_id": "String", "width": "Integer",
                  "height": "Integer", "file_size": "Integer"},
    "Sticker": {"file_id": "String", "file_unique_id": "String", "type": "String",
                "width": "Integer", "height": "Integer", "is_animated": "Boolean",
                "is_video": "Boolean", "emoji": "String", "thumbnail": "PhotoSize"},
    "Voice": {"file_id": "String", "file_unique_id": "String", "duration": "Integer",
              "mime_type": "String", "file_size": "Integer"},
    "Document": {"file_id": "String", "file_unique_id": "String", "file_name": "String",
                 "mime_type": "String", "file_size": "Integer", "thumbnail": "PhotoSize"},
    "Video": {"file_id": "String", "file_unique_id": "String", "width": "Integer",
              "height": "Integer", "duration": "Integer", "thumbnail": "PhotoSize"},
    "Location": {"latitude": "Float", "longitude": "Float", "horizontal_accuracy": "Float",
                 "live_period": "Integer", "heading": "Integer"},
    "Contact": {"phone_number": "String", "first_name": "String", "user_id": "Integer",
                "vcard": "String"},
    "Poll": {"id": "String", "question": "String", "options": "Array of PollOption",
             "total_voter_count": "Integer", "is_closed": "Boolean", "is_anonymous": "Boolean",
             "type": "String", "allows_multiple_answers": "Boolean"},
    "PollOption": {"text": "String", "voter_count": "Integer"},
    "Dice": {"emoji": "String", "value": "Integer"},
    "Story": {"chat": "Chat", "id": "Integer"},
    "TextQuote": {"text": "String", "position": "Integer", "is_manual": "Boolean"},
    "LinkPreviewOptions": {"is_disabled": "Boolean", "url": "String",
                           "prefer_small_media": "Boolean", "show_above_text": "Boolean"},
}

_BEYOND_64_BITS = st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, -(10**40)])
_WIDE_INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), _BEYOND_64_BITS,
                       st.sampled_from([2**53 + 1, 2**40, -1, 0, 253402300800]))
_SHORT_TEXT = st.text(max_size=12)
_JUNK_OBJECTS = st.dictionaries(_SHORT_TEXT, json_values, max_size=4)
_JUNK_LISTS = st.lists(json_values, max_size=4)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
REMOVE = object()
"""Drawn instead of a value: the field is removed."""


def wrong_values(documented: str) -> st.SearchStrategy[Any]:
    """Values of any type but ``documented`` (and, for integers, integers of any size)."""
    if documented == "Integer":
        return st.one_of(_SHORT_TEXT, _FLOATS, st.booleans(), st.none(), _JUNK_OBJECTS,
                         _JUNK_LISTS, _WIDE_INTS, st.integers().map(str))
    if documented == "String":
        return st.one_of(_WIDE_INTS, _FLOATS, st.booleans(), st.none(), _JUNK_OBJECTS,
                         st.lists(_SHORT_TEXT, max_size=3))
    if documented == "Boolean":
        return st.one_of(st.sampled_from(["true", "false", 0, 1, "", []]), st.none(),
                         _JUNK_OBJECTS)
    if documented == "Float":
        return st.one_of(_SHORT_TEXT, st.booleans(), st.none(), _JUNK_LISTS,
                         _BEYOND_64_BITS)
    if documented.startswith("Array of "):
        return st.one_of(_JUNK_OBJECTS, _SHORT_TEXT, _WIDE_INTS, st.none(),
                         st.lists(st.one_of(st.none(), _SHORT_TEXT, _WIDE_INTS, _JUNK_LISTS),
                                  min_size=1, max_size=3))
    return st.one_of(_JUNK_LISTS, _SHORT_TEXT, _WIDE_INTS, st.none(), st.booleans(),
                     _JUNK_OBJECTS, json_values)  # an object type


def documented_type(value: Any, parent: str, name: str) -> str:
    known = FIELD_TYPES.get(parent, {}).get(name)
    if known is not None:
        return known
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array of Object"
    return "Object"


def typed_fields(value: Any, kind: str = "Update", path: Path_ = ()) -> list[tuple[Path_, str]]:
    """Every field under ``value`` with its documented type, depth first."""
    found: list[tuple[Path_, str]] = []
    if kind.startswith("Array of ") and isinstance(value, list):
        for index, item in enumerate(value):
            found.append(((*path, index), kind[len("Array of "):]))
            found += typed_fields(item, kind[len("Array of "):], (*path, index))
    elif isinstance(value, dict):
        for name, item in value.items():
            field_kind = documented_type(item, kind, name)
            found.append(((*path, name), field_kind))
            found += typed_fields(item, field_kind, (*path, name))
    return found


def replaced(update: dict[str, Any], changes: Sequence[tuple[Path_, Any]]) -> dict[str, Any]:
    """A copy of ``update`` with each path set to its value (or removed); a path under one
    changed before is skipped."""
    result = copy.deepcopy(update)
    for path, value in changes:
        node: Any = result
        for key in path[:-1]:
            node = _child(node, key)
            if node is None:
                break
        else:
            last = path[-1]
            if isinstance(node, dict) and isinstance(last, str):
                if value is REMOVE:
                    node.pop(last, None)
                else:
                    node[last] = value
            elif isinstance(node, list) and isinstance(last, int) and last < len(node):
                node[last] = None if value is REMOVE else value
    return result


def _child(node: Any, key: str | int) -> Any:
    """``node[key]`` where there is one, else ``None``."""
    if isinstance(node, dict) and isinstance(key, str):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


@st.composite
def mistyped(draw: st.DrawFn, bases: Sequence[dict[str, Any]], *, most: int = 3,
             keep_update_id: bool = True) -> dict[str, Any]:
    """One of ``bases`` with 1..``most`` fields wrongly typed (or removed)."""
    base = draw(st.sampled_from(bases))
    fields = [f for f in typed_fields(base) if not (keep_update_id and f[0] == ("update_id",))]
    picked = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=most,
                           unique_by=lambda f: f[0]))
    changes = [(path, draw(st.one_of(wrong_values(kind), st.just(REMOVE))))
               for path, kind in picked]
    return replaced(base, changes)


def body(update: Any) -> bytes:
    """JSON as a client may send it; the standard library writes integers past 64 bits."""
    return json.dumps(update, ensure_ascii=False).encode()


def expected_status(raw: bytes) -> int:
    """The contract: 400 unless the body is a JSON object with an integer ``update_id``
    (orjson reads an integer past 64 bits as a float: not one)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 400
    return 200 if isinstance(data, dict) and type(data.get("update_id")) is int else 400


CORPUS = Path(__file__).parent / "corpus"


@cache
def corpus_files() -> dict[str, tuple[dict[str, Any], ...]]:
    """``corpus/<name>.json`` → its entries (``kind``, ``source``, ``expect``, ``update``)."""
    return {path.stem: tuple(json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(CORPUS.glob("*.json"))}


def corpus_updates() -> tuple[dict[str, Any], ...]:
    return tuple(entry["update"] for entries in corpus_files().values() for entry in entries)


SERVED = ("message", "callback_query", "my_chat_member")


def served_updates() -> tuple[dict[str, Any], ...]:
    """The corpus updates that reach the readers (the rest is acknowledged unread)."""
    return tuple(u for u in corpus_updates() if any(kind in u for kind in SERVED))
