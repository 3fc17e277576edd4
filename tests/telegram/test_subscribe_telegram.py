"""Opt-in, /stop and deep-link attribution through the real webhook and the fake Bot API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.store.models import Subscription, User
from tests.telegram.conftest import Harness

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def buttons(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def user_row(h: Harness, chat_id: int) -> User:
    key = h.sanad.store.user_ref("telegram", chat_id).key
    async with h.sanad.store.session() as db:
        user = await db.scalar(select(User).where(User.key == key))
    assert user is not None
    return user


async def test_deep_link_attributes_a_new_user_once_without_echo(tg_any_db: Harness) -> None:
    h = tg_any_db
    assert await h.post(h.updates.message("/start ngo-giza_2", chat_id=7101)) == 200
    assert h.texts(7101) and not any("ngo-giza_2" in t for t in h.texts(7101))
    assert (await user_row(h, 7101)).joined_via == "ngo-giza_2"
    assert await h.post(h.updates.message("/start other-campaign", chat_id=7101)) == 200
    assert (await user_row(h, 7101)).joined_via == "ngo-giza_2"
    assert await h.post(h.updates.message("/start not a slug!", chat_id=7102)) == 200
    assert (await user_row(h, 7102)).joined_via is None


async def test_opt_in_with_taps_then_stop_command(tg: Harness) -> None:
    h = tg
    await h.post(h.updates.message("/subscribe"))
    assert buttons(h.sent()[-1]) == ["sub:yes", "sub:no"]
    for data in ("sub:yes", "sub:topic:jobs", "sub:done", "sub:lang:ar", "sub:gov:cairo",
                 "sub:age:25_plus"):
        assert await h.post(h.updates.callback(data)) == 200
    user = await user_row(h, h.updates.chat_id)
    assert (user.governorate, user.age_band) == ("cairo", "25_plus")
    async with h.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) == ["jobs"]
    assert await h.post(h.updates.message("/stop")) == 200
    assert h.sanad.ui.text("ar", "subscribe.stopped") in h.texts()[-1]
    async with h.sanad.store.session() as db:
        assert await db.scalar(select(Subscription.topics)) is None
