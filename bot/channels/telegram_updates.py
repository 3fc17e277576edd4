"""Telegram updates → what the channel should do with them (pure translation, no I/O).

Only private chats are served. Text, ``/start <payload>``, button taps and media become an
:class:`Inbound`; the bot being added to a group becomes :class:`LeaveChat`; the user blocking
the bot becomes :class:`Blocked`; everything else is ignored (``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from telegram import CallbackQuery, ChatMemberUpdated, Message, Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.messages import Inbound, MediaKind, UserRef

UserRefFor = Callable[[int], UserRef]
"""Maps a private chat id to the pseudonymous user (``store.user_ref("telegram", id)``)."""

_JOINED = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR})
_LEFT = frozenset({ChatMemberStatus.BANNED, ChatMemberStatus.LEFT})


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
    if (chat_id is None or type(message_id) is not int or type(date) is not int
            or type(text) is not str or isinstance(hint, Uncommon)):
        return UNCOMMON
    inbound = Inbound(user=user_ref(chat_id), text=text, message_id=dedupe,
                      start_payload=start_payload(text),
                      received_at=datetime.fromtimestamp(date, UTC))
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
            or type(message.get("message_id")) is not int or type(message.get("date")) is not int
            or isinstance(hint, Uncommon) or type(query.get("chat_instance")) is not str):
        return UNCOMMON
    inbound = Inbound(user=user_ref(chat_id), button_id=button, message_id=dedupe)
    return Incoming(chat_id, inbound, callback_query_id=query_id, language_hint=hint)


def _private_chat_id(chat: Any) -> int | None:
    if type(chat) is not dict or chat.get("type") != ChatType.PRIVATE:
        return None
    chat_id = chat.get("id")
    return chat_id if type(chat_id) is int else None


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
    if message.chat.type != ChatType.PRIVATE:
        return None
    chat_id = message.chat.id
    media = media_kind(message)
    text = message.text if message.text is not None else (message.caption or "")
    if media is None and message.text is None:
        return None  # a service message (pinned, auto-delete timer, ...): nothing to answer
    inbound = Inbound(
        user=user_ref(chat_id), text=text, media=media, message_id=dedupe_id(update),
        start_payload=start_payload(text), received_at=message.date,
    )
    sender = message.from_user
    return Incoming(chat_id, inbound, user_message_id=message.message_id,
                    language_hint=_language(sender.language_code if sender else None))


def _from_callback(update: Update, query: CallbackQuery, user_ref: UserRefFor) -> Incoming:
    message = query.message
    private = message is None or message.chat.type == ChatType.PRIVATE
    # In a private chat the chat id is the user's id, also when the message is too old to see.
    chat_id = message.chat.id if message is not None else query.from_user.id
    hint = _language(query.from_user.language_code)
    if not private or not query.data:
        return Incoming(chat_id, None, callback_query_id=query.id, language_hint=hint)
    inbound = Inbound(user=user_ref(chat_id), button_id=query.data,
                      message_id=dedupe_id(update))
    return Incoming(chat_id, inbound, callback_query_id=query.id, language_hint=hint)


def _from_membership(change: ChatMemberUpdated, user_ref: UserRefFor) -> Action | None:
    status = change.new_chat_member.status
    if change.chat.type != ChatType.PRIVATE:
        return LeaveChat(change.chat.id) if status in _JOINED else None
    if status in _LEFT:
        return Blocked(change.chat.id, user_ref(change.chat.id))
    return None  # unblocked: the next message marks the user reachable again


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


_OTHER_CONTENT = ("poll", "dice", "game", "story", "paid_media", "invoice", "checklist")


def start_payload(text: str) -> str | None:
    """``/start <payload>`` (a deep link ``t.me/bot?start=payload``) → ``payload``."""
    head, _, rest = text.partition(" ")
    if head.split("@", 1)[0].lower() != "/start":
        return None
    return rest.strip() or None


def _language(code: str | None) -> str | None:
    return code.split("-", 1)[0].lower() if code else None
