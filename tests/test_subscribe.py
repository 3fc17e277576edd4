"""Opt-in with choices, opt-out from anywhere, and campaign attribution, through the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from bot.app import Sanad
from bot.attribution import campaign_code, split_tag, valid_code
from bot.content import check
from bot.messages import Event, Inbound, LanguageChanged, Subscribed, Turn, Unsubscribed
from bot.store.models import Subscription, User

ALL_TOPICS = ("jobs", "travel", "trafficking", "rights")


class Chat:
    """One terminal user talking to the engine; ``tap:<id>`` taps a button."""

    def __init__(self, app: Sanad, user: str = "sub-user") -> None:
        self.app, self.user = app, user
        self.ref = app.store.user_ref("terminal", user)
        self.last: Turn = Turn()

    async def __call__(self, *steps: str) -> list[Event]:
        events: list[Event] = []
        for step in steps:
            button = step[4:] if step.startswith("tap:") else None
            self.last = await self.app.engine.handle_turn(
                Inbound(user=self.ref, text="" if button else step, button_id=button),
                address=self.user)
            events.extend(self.last.events)
        return events

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.last.outbound)

    @property
    def buttons(self) -> list[str]:
        return [b.id for m in self.last.outbound for b in m.buttons]

    async def row(self) -> User:
        async with self.app.store.session() as db:
            user = await db.scalar(select(User).where(User.key == self.ref.key))
        assert user is not None
        return user

    async def topics(self) -> list[str] | None:
        user = await self.row()
        async with self.app.store.session() as db:
            return await db.scalar(select(Subscription.topics)
                                   .where(Subscription.user_id == user.id))


def ui(app: Sanad, lang: str, key: str) -> str:
    return app.ui.text(lang, key)


def subscribed(events: list[Event]) -> Subscribed:
    found = [e for e in events if isinstance(e, Subscribed)]
    assert len(found) == 1, events
    return found[0]


async def subscribe_all(chat: Chat) -> None:
    await chat("hello", "send me tips", "tap:sub:yes", "tap:sub:topic:all", "tap:sub:lang:en",
               "tap:sub:gov:skip", "tap:sub:age:skip")


# --- opt-in ----------------------------------------------------------------------------------
async def test_opt_in_all_topics_skipping_everything_optional(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await chat("hello", "send me tips")
    assert chat.buttons == ["sub:yes", "sub:no"]
    await chat("tap:sub:yes")
    assert chat.buttons[0] == "sub:topic:all" and len(chat.buttons) <= 10
    assert {f"sub:topic:{t}" for t in ALL_TOPICS} <= set(chat.buttons)
    await chat("tap:sub:topic:all")
    assert chat.buttons == ["sub:lang:en", "sub:lang:ar", "sub:lang:fr"]  # 3: reply buttons
    assert "English" in chat.text
    await chat("tap:sub:lang:en")
    assert chat.buttons[-1] == "sub:gov:skip" and len(chat.buttons) <= 10
    assert "sub:gov:cairo" in chat.buttons
    await chat("tap:sub:gov:skip")
    assert chat.buttons == ["sub:age:under_18", "sub:age:18_24", "sub:age:25_plus",
                            "sub:age:skip"]
    events = await chat("tap:sub:age:skip")
    event = subscribed(events)
    assert event == Subscribed(topics=ALL_TOPICS, governorate=None, age_band=None)
    assert "Job offers" in chat.text and "stop" in chat.text
    assert await chat.topics() == list(ALL_TOPICS)
    user = await chat.row()
    assert user.governorate is None and user.age_band is None


async def test_opt_in_in_arabic_with_typed_answers(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    chat = Chat(app, "sub-ar")
    await chat("مرحبا", "عايز اشترك في النصايح", "أيوه")
    assert "sub:topic:jobs" in chat.buttons
    await chat("2")  # typed number: the second button (jobs)
    assert chat.buttons[0] == "sub:done" and "sub:topic:jobs" not in chat.buttons
    assert "عروض الشغل" in chat.text
    await chat("كمّل")  # typed title of "continue"
    assert chat.buttons[0] == "sub:lang:ar"
    await chat("1")
    assert ui(app, "ar", "subscribe.governorate") in chat.text
    await chat("محافظة مش موجودة")
    assert ui(app, "ar", "subscribe.governorate_hint") in chat.text
    await chat("اسكندريه")
    assert ui(app, "ar", "subscribe.age") in chat.text
    events = await chat("16")  # under 18 may subscribe to tips
    assert subscribed(events) == Subscribed(topics=("jobs",), governorate="alexandria",
                                            age_band="under_18")
    user = await chat.row()
    assert (user.governorate, user.age_band) == ("alexandria", "under_18")
    assert await chat.topics() == ["jobs"]


async def test_resubscribing_updates_and_skips_what_is_known(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await chat("hello", "send me tips", "tap:sub:yes", "tap:sub:topic:all", "tap:sub:lang:en",
               "tap:sub:gov:giza", "tap:sub:age:18_24")
    await chat("send me tips")
    assert chat.buttons == ["sub:change", "sub:stop", "menu"] and "Safe travel" in chat.text
    await chat("tap:sub:change", "tap:sub:topic:rights", "tap:sub:topic:jobs")
    events = await chat("tap:sub:done", "tap:sub:lang:en")  # governorate and age are known
    assert subscribed(events).topics == ("rights", "jobs")
    assert await chat.topics() == ["rights", "jobs"]
    async with sanad_sqlite.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(Subscription)) == 1
    user = await chat.row()
    assert (user.governorate, user.age_band) == ("giza", "18_24")


async def test_choosing_another_language_for_tips(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    events = await chat("hello", "send me tips", "tap:sub:yes", "tap:sub:topic:all",
                        "tap:sub:lang:fr")
    assert LanguageChanged("fr") in events
    assert ui(sanad_sqlite, "fr", "subscribe.governorate") in chat.text
    await chat("Le Caire", "tap:sub:age:skip")
    user = await chat.row()
    assert (user.language, user.language_locked, user.governorate) == ("fr", True, "cairo")


async def test_declining_subscribes_nothing(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    events = await chat("hello", "send me tips", "no")
    assert not any(isinstance(e, Subscribed) for e in events)
    assert await chat.topics() is None


# --- opt-out ---------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["stop", "STOP", "الغاء", "إلغاء", "الغاء الاشتراك",
                                  "unsubscribe", "désabonner", "/stop"])
async def test_opt_out_words(sanad_sqlite: Sanad, word: str) -> None:
    chat = Chat(sanad_sqlite)
    await subscribe_all(chat)
    events = await chat(word)
    assert Unsubscribed() in events
    assert await chat.topics() is None
    assert '"tips"' in chat.text or "نصايح" in chat.text  # says how to opt in again


async def test_opt_out_from_the_middle_of_a_module(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await subscribe_all(chat)
    await chat("tap:aw:open:check_job_offer")
    events = await chat("unsubscribe")
    assert Unsubscribed() in events and await chat.topics() is None


async def test_stop_inside_screening_stops_the_questions_and_offers_opt_out(
        sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    chat = Chat(app)
    await subscribe_all(chat)
    await chat("tap:menu:check", "tap:sc:consent:yes", "tap:sc:age:18_24")
    events = await chat("stop")
    assert ui(app, "en", "screening.stopped") in chat.text
    assert not any(isinstance(e, Unsubscribed) for e in events)
    assert "sub:stop" in chat.buttons and chat.buttons[-1] != "sub:stop"  # typed 1 = menu
    assert await chat.topics() == list(ALL_TOPICS)
    events = await chat("tap:sub:stop")
    assert Unsubscribed() in events and await chat.topics() is None


async def test_unambiguous_opt_out_inside_screening_keeps_the_question(
        sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await subscribe_all(chat)
    await chat("tap:menu:check", "tap:sc:consent:yes", "tap:sc:age:18_24")
    events = await chat("unsubscribe")
    assert Unsubscribed() in events
    events = await chat("yes")  # the screening goes on where it was
    assert not any(isinstance(e, Unsubscribed) for e in events)
    assert "Question 2/" in chat.text


async def test_stop_from_someone_not_subscribed_emits_nothing(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    events = await chat("hello", "stop")
    assert not any(isinstance(e, Unsubscribed) for e in events)
    assert ui(sanad_sqlite, "en", "subscribe.not_subscribed") in chat.text
    await chat("tap:menu:check", "tap:sc:consent:yes", "tap:sc:age:18_24")
    await chat("stop")
    assert "sub:stop" not in chat.buttons  # not subscribed: only the screening stops


async def test_typed_cancel_title_cancels_the_deletion_not_the_tips(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite, "sub-ar-cancel")
    await chat("مرحبا", "عايز اشترك في النصايح", "tap:sub:yes", "tap:sub:topic:all",
               "tap:sub:lang:ar", "tap:sub:gov:skip", "tap:sub:age:skip")
    await chat("امسح بياناتي")
    assert "pv:delete:no" in chat.buttons
    events = await chat("إلغاء")  # the title of the Cancel button
    assert not any(isinstance(e, Unsubscribed) for e in events)
    assert ui(sanad_sqlite, "ar", "privacy.kept") in chat.text
    assert await chat.topics() == list(ALL_TOPICS)


# --- privacy ---------------------------------------------------------------------------------
async def test_my_data_shows_the_subscription_and_deletion_removes_it(
        sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await chat("/start ngo-42", "send me tips", "tap:sub:yes", "tap:sub:topic:travel",
               "tap:sub:done", "tap:sub:lang:en", "tap:sub:gov:giza", "tap:sub:age:skip")
    await chat("/mydata")
    assert "Governorate: Giza" in chat.text and "Tips: ✈️ Safe travel" in chat.text
    assert ui(sanad_sqlite, "en", "privacy.joined_link") in chat.text
    assert "ngo-42" not in chat.text
    await chat("tap:pv:delete", "tap:pv:delete:yes")
    async with sanad_sqlite.store.session() as db:
        assert await db.scalar(select(func.count()).select_from(Subscription)) == 0
        # only the do-not-contact mark stays, with nothing of what the user told us
        user = (await db.scalars(select(User))).one()
        assert user.contact_paused_at is not None and user.joined_via is None
        assert user.governorate is None and user.address_enc is None


# --- attribution -----------------------------------------------------------------------------
async def test_deep_link_sets_joined_via_once(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await chat("/start partner-x_1")
    assert "partner-x_1" not in chat.text and "menu:learn" in chat.buttons
    assert (await chat.row()).joined_via == "partner-x_1"
    await chat("/start other")
    assert (await chat.row()).joined_via == "partner-x_1"


async def test_no_attribution_for_known_users_or_invalid_codes(sanad_sqlite: Sanad) -> None:
    old = Chat(sanad_sqlite, "old")
    await old("hello", "/start late-code")
    assert (await old.row()).joined_via is None
    bad = Chat(sanad_sqlite, "bad")
    await bad("/start bad code!")
    assert "bad code" not in bad.text and (await bad.row()).joined_via is None


@pytest.mark.parametrize(("text", "code", "greeting"), [
    ("مرحبا سند #caritas-alex", "caritas-alex", "سند"),
    ("Hi Sanad #partner-x", "partner-x", "Sanad"),
    ("#ngo_7", "ngo_7", "Sanad"),
])
async def test_click_to_chat_tag_attributes_a_new_user(sanad_sqlite: Sanad, text: str,
                                                        code: str, greeting: str) -> None:
    chat = Chat(sanad_sqlite, f"wa-{code}")
    await chat(text)
    assert (await chat.row()).joined_via == code
    assert code not in chat.text and greeting in chat.text and "menu:learn" in chat.buttons


def test_code_rules() -> None:
    assert valid_code("a" * 64) and valid_code("A-b_9") == "A-b_9"
    assert valid_code("a" * 65) is None and valid_code("x y") is None and valid_code("é") is None
    assert campaign_code("/start@sanad_bot camp") == "camp"
    assert campaign_code("/start") is None and campaign_code("/start ../etc") is None
    assert campaign_code("anything", start_payload="tg-1") == "tg-1"
    assert split_tag("hello #camp-1") == ("hello", "camp-1")
    assert split_tag("#2") == ("#2", None)  # a typed number is not a campaign
    assert split_tag("tag #in the middle") == ("tag #in the middle", None)


# --- content ---------------------------------------------------------------------------------
def test_subscribe_content_is_checked(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "content"
    shutil.copytree(Path(__file__).parents[1] / "content", root)
    path = root / "subscribe.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["governorates"][0]["id"] = "atlantis"
    data["topics"][0]["modules"].append("no_such_module")
    data["age_bands"].append("40_plus")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    fields = {p.field for p in check(root) if p.file == "content/subscribe.yml"}
    assert {"governorates[0].id", "topics[0].modules[3]", "age_bands[3]"} <= fields


async def test_in_a_caseworker_chat_stop_is_relayed_and_unsubscribe_keeps_the_chat(
        sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite)
    await subscribe_all(chat)
    await chat("tap:menu:human", "my boss keeps my passport")
    events = await chat("stop")
    assert any(e.name == "RelayedToCase" for e in events)
    assert not any(isinstance(e, Unsubscribed) for e in events) and "sub:stop" in chat.buttons
    events = await chat("unsubscribe")
    assert Unsubscribed() in events and await chat.topics() is None
    events = await chat("are you there?")
    assert any(e.name == "RelayedToCase" for e in events)  # still talking to the caseworker
