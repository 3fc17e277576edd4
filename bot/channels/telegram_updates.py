"""Telegram updates → what the channel should do with them (pure translation, no I/O).

Only private chats are served. Text, ``/start <payload>``, button taps and media become an
:class:`Inbound`; the bot being added to a group becomes :class:`LeaveChat`; the user blocking
the bot becomes :class:`Blocked`; everything else is ignored (``None``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
