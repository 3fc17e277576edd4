"""Real Telegram ``Update`` JSON, as the Bot API posts it to a webhook."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BOT = {"id": 123, "is_bot": True, "first_name": "Sanad", "username": "sanad_test_bot"}


def user(user_id: int, language_code: str | None = "ar") -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Mona"}
    if language_code:
        data["language_code"] = language_code
    return data


def private_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "Mona"}


def group_chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": "Some group"}


@dataclass
class Updates:
    """Builds updates with increasing ``update_id`` and per-test message ids."""

    chat_id: int = 5001
    language_code: str | None = "ar"
    clock: Callable[[], float] = time.time
    """Unix time for the dates (a test of the 48-hour rule gives the fake's clock)."""
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(700001))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def message(self, text: str | None = None, *, chat_id: int | None = None,
                chat: dict[str, Any] | None = None, **content: Any) -> dict[str, Any]:
        chat_id = chat_id or self.chat_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(self.clock()),
            "chat": chat or private_chat(chat_id), "from": user(chat_id, self.language_code),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(" ", 1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(command)}]
        message.update(content)
        return {"update_id": self.next_update_id(), "message": message}

    def callback(self, data: str, *, message_id: int = 1, chat_id: int | None = None,
                 chat: dict[str, Any] | None = None) -> dict[str, Any]:
        chat_id = chat_id or self.chat_id
        update_id = self.next_update_id()
        return {"update_id": update_id, "callback_query": {
            "id": f"cb{update_id}", "from": user(chat_id, self.language_code),
            "chat_instance": "42", "data": data,
            "message": {"message_id": message_id, "date": int(self.clock()),
                        "chat": chat or private_chat(chat_id), "from": BOT, "text": "…"},
        }}

    def sticker(self) -> dict[str, Any]:
        return self.message(sticker={
            "file_id": "CAACAgIAAxk", "file_unique_id": "AgAD", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
        })

    def voice(self) -> dict[str, Any]:
        return self.message(voice={"file_id": "AwACAgIAAxk", "file_unique_id": "AgAE",
                                   "duration": 3, "mime_type": "audio/ogg"})

    def location(self) -> dict[str, Any]:
        return self.message(location={"latitude": 30.0444, "longitude": 31.2357})

    def photo(self, caption: str | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"caption": caption} if caption else {}
        return self.message(photo=[{"file_id": "AgACAgIAAxk", "file_unique_id": "AQAD",
                                    "width": 90, "height": 90}], **extra)

    def my_chat_member(self, status: str, *, chat: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        old = "left" if status in ("member", "administrator") else "member"
        return {"update_id": self.next_update_id(), "my_chat_member": {
            "chat": chat or private_chat(self.chat_id), "from": user(self.chat_id),
            "date": int(self.clock()),
            "old_chat_member": {"user": BOT, "status": old},
            "new_chat_member": _member(status),
        }}


def _member(status: str) -> dict[str, Any]:
    member: dict[str, Any] = {"user": BOT, "status": status}
    if status == "kicked":
        member["until_date"] = 0
    if status == "administrator":
        member.update({
            "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
            "can_delete_messages": False, "can_manage_video_chats": False,
            "can_restrict_members": False, "can_promote_members": False,
            "can_change_info": False, "can_invite_users": True, "can_post_stories": False,
            "can_edit_stories": False, "can_delete_stories": False,
        })
    return member
