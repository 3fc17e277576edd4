"""Telegram updates → what the channel should do with them (pure translation, no I/O).

Only private chats are served. Text, ``/start <payload>``, button taps and media become an
:class:`Inbound`; the bot being added to a group becomes :class:`LeaveChat`; the user blocking
the bot becomes :class:`Blocked`; everything else is ignored (``None``).

Three readers, one meaning: :func:`read_plain` (the hot path, straight from the JSON),
:func:`read_update` (PTB's ``Update``; raises :class:`Malformed` on a wrongly typed field,
which PTB does not check) and :func:`read_raw` (what an update PTB cannot read still says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from telegram import CallbackQuery, Chat, ChatMember, ChatMemberUpdated, Message, Update, User
from telegram.constants import ChatMemberStatus, ChatType

from bot.messages import Inbound, MediaKind, UserRef

UserRefFor = Callable[[int], UserRef]
"""Maps a private chat id to the pseudonymous user (``store.user_ref("telegram", id)``)."""

_JOINED = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR})
_LEFT = frozenset({ChatMemberStatus.BANNED, ChatMemberStatus.LEFT})
_IDS = range(-(2**63), 2**63)
"""Telegram's ids fit a signed 64-bit integer (chat ids have at most 52 significant bits)."""
_DATES = range(0, 2**33)
"""Unix times up to the year 2242: any later one is junk (``datetime`` stops at 9999)."""


class Malformed(ValueError):
    """A field of an update is not of the type the Bot API documents (PTB builds its objects
    without checking: ``text`` may be a dict, ``chat`` may be missing). The message names the
    field, never its value, so it can be logged."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """Something for the engine (``inbound``), and what the channel must acknowledge."""

    chat_id: int
    inbound: Inbound | None
    """``None`` when there is nothing to process (a tap in a chat we do not serve)."""
    user_message_id: int | None = None
    """The user's own message in the chat: deleted too on quick exit."""
    callback_query_id: str | None = None
    """Always answered, whatever happens, so the user's button stops spinning."""
    language_hint: str | None = None
    """The Telegram app's language: used only when the database is not there to tell."""


@dataclass(frozen=True, slots=True)
class LeaveChat:
    """The bot was added to a group or channel: it leaves without saying anything there."""

    chat_id: int


@dataclass(frozen=True, slots=True)
class Blocked:
    """The user blocked the bot (``my_chat_member`` → kicked)."""

    chat_id: int
    user: UserRef


Action = Incoming | LeaveChat | Blocked


def dedupe_id(update: Update) -> str:
    """The de-duplication key: per bot, because Telegram restarts ``update_id`` for a new token
    and may jump to a random value after a week without updates."""
    bot_id = update.get_bot().token.split(":", 1)[0]
    return f"tg:{bot_id}:{update.update_id}"


def read_update(update: Update, user_ref: UserRefFor) -> Action | None:
    """What PTB's ``update`` asks for; :class:`Malformed` if a field we read has the wrong
    type (the caller then falls back to :func:`read_raw`)."""
    if update.message is not None:
        return _from_message(update, update.message, user_ref)
    if update.callback_query is not None:
        return _from_callback(update, update.callback_query, user_ref)
    if update.my_chat_member is not None:
        return _from_membership(update.my_chat_member, user_ref)
    return None


class Uncommon:
    """The update is not one of the plain shapes :func:`read_plain` knows."""


UNCOMMON: Final = Uncommon()

_PLAIN_MESSAGE_KEYS = frozenset({"message_id", "from", "chat", "date", "text"})
"""A typed message with no entities (commands, links: PTB reads those)."""
_PLAIN_CALLBACK_KEYS = frozenset({"id", "from", "message", "chat_instance", "data"})


def read_plain(data: Mapping[str, Any], bot_id: str,
               user_ref: UserRefFor) -> Incoming | Uncommon:
    """The two updates that make nearly all traffic, read from the webhook's JSON as they are:
    a text message and a button tap, in a private chat. Building PTB's ``Update`` (dozens of
    frozen objects) cost ~12% of a webhook's CPU. Anything else, or any field not of the
    expected type, is :data:`UNCOMMON`: the caller parses it with PTB and :func:`read_update`,
    which give the same result for the shapes read here (``tests/telegram/test_translation``).
    """
    update_id = data.get("update_id")
    if type(update_id) is not int or len(data) != 2:
        return UNCOMMON
    message = data.get("message")
    if message is not None:
        return _plain_message(message, f"tg:{bot_id}:{update_id}", user_ref)
    query = data.get("callback_query")
    if query is not None:
        return _plain_callback(query, f"tg:{bot_id}:{update_id}", user_ref)
    return UNCOMMON


def _plain_message(message: Any, dedupe: str, user_ref: UserRefFor) -> Incoming | Uncommon:
    if type(message) is not dict or not message.keys() <= _PLAIN_MESSAGE_KEYS:
        return UNCOMMON
    chat_id, message_id, date, text = (_private_chat_id(message.get("chat")),
                                       message.get("message_id"), message.get("date"),
                                       message.get("text"))
    hint = _plain_language(message.get("from"))
    received_at = _timestamp(date)
    if (chat_id is None or not _is_id(message_id) or received_at is None
            or type(text) is not str or isinstance(hint, Uncommon)):
        return UNCOMMON
    inbound = Inbound(user=user_ref(chat_id), text=text, message_id=dedupe,
                      start_payload=start_payload(text), received_at=received_at)
    return Incoming(chat_id, inbound, user_message_id=message_id, language_hint=hint)


def _plain_callback(query: Any, dedupe: str, user_ref: UserRefFor) -> Incoming | Uncommon:
    if type(query) is not dict or not query.keys() <= _PLAIN_CALLBACK_KEYS:
        return UNCOMMON
    message, query_id, button = query.get("message"), query.get("id"), query.get("data")
    if type(message) is not dict:
        return UNCOMMON
    hint = _plain_language(query.get("from"))
    chat_id = _private_chat_id(message.get("chat"))
    if (chat_id is None or type(query_id) is not str or type(button) is not str or not button
            or not _is_id(message.get("message_id")) or _timestamp(message.get("date")) is None
            or isinstance(hint, Uncommon) or type(query.get("chat_instance")) is not str):
        return UNCOMMON
    inbound = Inbound(user=user_ref(chat_id), button_id=button, message_id=dedupe)
    return Incoming(chat_id, inbound, callback_query_id=query_id, language_hint=hint)


def _private_chat_id(chat: Any) -> int | None:
    if type(chat) is not dict or chat.get("type") != ChatType.PRIVATE:
        return None
    chat_id = chat.get("id")
    return chat_id if _is_id(chat_id) else None


def _is_id(value: Any) -> bool:
    return type(value) is int and value in _IDS


def _timestamp(value: Any) -> datetime | None:
    """A Bot API date (Unix time) as PTB reads it, or ``None`` for anything else."""
    if type(value) is not int or value not in _DATES:
        return None
    return datetime.fromtimestamp(value, UTC)


def _plain_language(sender: Any) -> str | Uncommon | None:
    """The sender's language hint, or UNCOMMON when ``from`` is not a plain user object."""
    if type(sender) is not dict or type(sender.get("id")) is not int:
        return UNCOMMON
    if type(sender.get("is_bot")) is not bool or type(sender.get("first_name")) is not str:
        return UNCOMMON
    code = sender.get("language_code")
    if code is not None and type(code) is not str:
        return UNCOMMON
    return _language(code)


def _from_message(update: Update, message: Message, user_ref: UserRefFor) -> Incoming | None:
    chat = _chat(message.chat, "message.chat")
    if chat.type != ChatType.PRIVATE:
        return None
    chat_id = _id(chat.id, "message.chat.id")
    media = media_kind(message)
    typed = _optional_str(message.text, "message.text")
    text = typed if typed is not None else (_optional_str(message.caption, "message.caption")
                                            or "")
    if media is None and typed is None:
        return None  # a service message (pinned, auto-delete timer, ...): nothing to answer
    message_id = _id(message.message_id, "message.message_id")
    inbound = Inbound(
        user=user_ref(chat_id), text=text, media=media, message_id=dedupe_id(update),
        start_payload=start_payload(text), received_at=message.date,
    )
    return Incoming(chat_id, inbound, user_message_id=message_id,
                    language_hint=_hint(message.from_user, "message.from"))


def _from_callback(update: Update, query: CallbackQuery, user_ref: UserRefFor) -> Incoming:
    query_id = _optional_str(query.id, "callback_query.id")
    sender = query.from_user
    if query_id is None or not isinstance(sender, User):
        raise Malformed("callback_query.id" if query_id is None else "callback_query.from")
    message = query.message
    chat = None if message is None else _chat(message.chat, "callback_query.message.chat")
    private = chat is None or chat.type == ChatType.PRIVATE
    # In a private chat the chat id is the user's id, also when the message is too old to see.
    chat_id = (_id(chat.id, "callback_query.message.chat.id") if chat is not None
               else _id(sender.id, "callback_query.from.id"))
    hint = _hint(sender, "callback_query.from")
    data = _optional_str(query.data, "callback_query.data")
    if not private or not data:
        return Incoming(chat_id, None, callback_query_id=query_id, language_hint=hint)
    inbound = Inbound(user=user_ref(chat_id), button_id=data, message_id=dedupe_id(update))
    return Incoming(chat_id, inbound, callback_query_id=query_id, language_hint=hint)


def _from_membership(change: ChatMemberUpdated, user_ref: UserRefFor) -> Action | None:
    chat = _chat(change.chat, "my_chat_member.chat")
    member = change.new_chat_member
    if not isinstance(member, ChatMember):
        raise Malformed("my_chat_member.new_chat_member")
    status = member.status
    chat_id = _id(chat.id, "my_chat_member.chat.id")
    if chat.type != ChatType.PRIVATE:
        return LeaveChat(chat_id) if status in _JOINED else None
    if status in _LEFT:
        return Blocked(chat_id, user_ref(chat_id))
    return None  # unblocked: the next message marks the user reachable again


def _chat(chat: Any, field: str) -> Chat:
    if not isinstance(chat, Chat):
        raise Malformed(field)
    return chat


def _id(value: Any, field: str) -> int:
    if type(value) is not int or value not in _IDS:
        raise Malformed(field)
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is not None and type(value) is not str:
        raise Malformed(field)
    return value


def _hint(sender: Any, field: str) -> str | None:
    """The sender's app language; ``None`` without a sender (a channel's post)."""
    if sender is None:
        return None
    if not isinstance(sender, User):
        raise Malformed(field)
    return _language(_optional_str(sender.language_code, f"{field}.language_code"))


def read_raw(data: Mapping[str, Any], bot_id: str, user_ref: UserRefFor) -> Action | None:
    """What an update that PTB cannot build (or that :func:`read_update` finds malformed)
    still says, read leniently from its JSON; never raises. A private chat's text is still
    answered, a tap still stops spinning (and is followed when its data is readable), a block
    or a group still counts. Anything else is ``None``: acknowledged, not answered."""
    update_id = data.get("update_id")
    if type(update_id) is not int:
        return None
    dedupe = f"tg:{bot_id}:{update_id}"
    if "message" in data:
        return _raw_message(data["message"], dedupe, user_ref)
    if "callback_query" in data:
        return _raw_callback(data["callback_query"], dedupe, user_ref)
    if "my_chat_member" in data:
        return _raw_membership(data["my_chat_member"], user_ref)
    return None


def _raw_message(message: Any, dedupe: str, user_ref: UserRefFor) -> Incoming | None:
    if type(message) is not dict:
        return None
    chat_id, text = _private_chat_id(message.get("chat")), message.get("text")
    if chat_id is None or type(text) is not str:
        return None
    message_id = message.get("message_id")
    inbound = Inbound(user=user_ref(chat_id), text=text, message_id=dedupe,
                      start_payload=start_payload(text),
                      received_at=_timestamp(message.get("date")))
    return Incoming(chat_id, inbound,
                    user_message_id=message_id if _is_id(message_id) else None,
                    language_hint=_raw_language(message.get("from")))


def _raw_callback(query: Any, dedupe: str, user_ref: UserRefFor) -> Incoming | None:
    if type(query) is not dict or type(query.get("id")) is not str:
        return None  # nothing to answer it with
    sender, message = query.get("from"), query.get("message")
    user_id = sender.get("id") if type(sender) is dict else None
    if message is None:  # a tap in a private chat: the chat's id is the user's
        chat_id = user_id if _is_id(user_id) else None
    else:
        chat_id = _private_chat_id(message.get("chat")) if type(message) is dict else None
    data, hint = query.get("data"), _raw_language(sender)
    if chat_id is None or type(data) is not str or not data:
        return Incoming(chat_id or 0, None, callback_query_id=query["id"], language_hint=hint)
    inbound = Inbound(user=user_ref(chat_id), button_id=data, message_id=dedupe)
    return Incoming(chat_id, inbound, callback_query_id=query["id"], language_hint=hint)


def _raw_membership(change: Any, user_ref: UserRefFor) -> Action | None:
    if type(change) is not dict or type(change.get("chat")) is not dict:
        return None
    member = change.get("new_chat_member")
    status = member.get("status") if type(member) is dict else None
    chat = change["chat"]
    chat_id = chat.get("id")
    if not _is_id(chat_id) or type(status) is not str:
        return None
    if chat.get("type") != ChatType.PRIVATE:
        return LeaveChat(chat_id) if status in _JOINED else None
    return Blocked(chat_id, user_ref(chat_id)) if status in _LEFT else None


def _raw_language(sender: Any) -> str | None:
    code = sender.get("language_code") if type(sender) is dict else None
    return _language(code) if type(code) is str else None


def media_kind(message: Message) -> MediaKind | None:
    """The kind of non-text content, or ``None`` for a text (or service) message."""
    if message.sticker is not None:
        return MediaKind.STICKER
    if message.voice is not None:
        return MediaKind.VOICE
    if message.audio is not None:
        return MediaKind.AUDIO
    if message.photo:
        return MediaKind.PHOTO
    if message.video is not None or message.video_note is not None or message.animation:
        return MediaKind.VIDEO
    if message.document is not None:
        return MediaKind.DOCUMENT
    if message.location is not None or message.venue is not None:
        return MediaKind.LOCATION
    if message.contact is not None:
        return MediaKind.CONTACT
    if any(getattr(message, kind, None) for kind in _OTHER_CONTENT):
        return MediaKind.OTHER
    return None


_OTHER_CONTENT = ("poll", "dice", "game", "story", "paid_media", "invoice", "checklist",
                  "giveaway", "giveaway_winners")
"""Content a person sent (or forwarded) that we cannot read: answered like media, not ignored
like a service message."""


def start_payload(text: str) -> str | None:
    """``/start <payload>`` (a deep link ``t.me/bot?start=payload``) → ``payload``."""
    head, _, rest = text.partition(" ")
    if head.split("@", 1)[0].lower() != "/start":
        return None
    return rest.strip() or None


def _language(code: str | None) -> str | None:
    return code.split("-", 1)[0].lower() if code else None
