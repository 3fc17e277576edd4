"""Every awareness module, in every language: reachable by buttons and by free text, finished,
rated and quizzed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.app import Sanad
from bot.content import LANGUAGES
from bot.messages import (
    Inbound,
    ModuleCompleted,
    ModuleRated,
    QuizAnswered,
    Subscribed,
    Turn,
)


class Reader:
    def __init__(self, app: Sanad, user: str, lang: str) -> None:
        self.app, self.lang = app, lang
        self.ref = app.store.user_ref("terminal", user)
        self.events: list[object] = []

    async def __call__(self, text: str = "", button: str | None = None) -> Turn:
        turn = await self.app.engine.handle_turn(
            Inbound(user=self.ref, text=text, button_id=button), language=self.lang)
        self.events.extend(turn.events)
        return turn


def ids(turn: Turn) -> list[str]:
    return [b.id for m in turn.outbound for b in m.buttons]


async def read_to_the_end(reader: Reader, turn: Turn) -> Turn:
    for _ in range(10):
        nxt = [b for b in ids(turn) if b.startswith("aw:next:")]
        if not nxt:
            return turn
        turn = await reader(button=nxt[0])
    raise AssertionError("module never ended")


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_module_by_buttons_with_rating_and_quiz(sanad_sqlite: Sanad, lang: str) -> None:
    modules = sanad_sqlite.content.modules(lang)
    assert len(modules) >= 10
    reader = Reader(sanad_sqlite, f"reader-{lang}", lang)
    topics = await reader(button="menu:learn")
    for module in modules:
        assert f"aw:open:{module.id}" in ids(topics) or len(modules) >= 10
        turn = await reader(button=f"aw:open:{module.id}")
        assert module.title in turn.outbound[0].text
        end = await read_to_the_end(reader, turn)
        assert f"aw:rate:{module.id}:1" in ids(end)
        # Sources: one short line on the phone screen, the full list one tap away.
        assert f"aw:src:{module.id}" in ids(end), "a sources button"
        listed = await reader(button=f"aw:src:{module.id}")
        assert all(s.title in listed.outbound[-1].text for s in module.sources), "sources"
        await reader(button=f"aw:rate:{module.id}:1")
        if module.quiz:
            quiz = await reader(button=f"aw:quiz:{module.id}")
            for index, item in enumerate(module.quiz):
                assert item.statement in quiz.outbound[-1].text
                quiz = await reader(button=f"aw:qa:{module.id}:{index}:{item.answer}")
                assert item.feedback in "\n".join(m.text for m in quiz.outbound)
    completed = {e.module_id for e in reader.events if isinstance(e, ModuleCompleted)}
    assert completed == {m.id for m in modules}
    assert sum(isinstance(e, ModuleRated) for e in reader.events) == len(modules)
    quizzes = [e for e in reader.events if isinstance(e, QuizAnswered)]
    assert quizzes and all(e.correct for e in quizzes)
    again = await reader(button="aw:topics")
    assert str(len(modules)) in again.outbound[0].text


@pytest.mark.parametrize(("lang", "question", "module_intent"), [
    ("ar", "ازاي اعرف ان عرض الشغل ده نصب؟", "check_job_offer"),
    ("ar", "يعني ايه اتجار بالبشر", "learn_trafficking"),
    ("ar", "ana 3ayez asafer italya fel markeb", "learn_irregular_migration"),
    ("en", "is the boat to Italy safe", "learn_irregular_migration"),
    ("en", "can my employer keep my passport?", "know_rights"),
    ("en", "how do I get a legal work visa", "safe_migration"),
    ("fr", "comment savoir si une offre d'emploi à l'étranger est une arnaque", "check_job_offer"),
    ("fr", "c'est quoi la traite des êtres humains", "learn_trafficking"),
])
async def test_free_text_questions_open_the_right_module(
    sanad_sqlite: Sanad, lang: str, question: str, module_intent: str
) -> None:
    expected = sanad_sqlite.content.module_for_intent(module_intent, lang)
    assert expected is not None
    reader = Reader(sanad_sqlite, f"asker-{lang}-{module_intent}", lang)
    turn = await reader(question)
    answer = "\n".join(m.text for m in turn.outbound)  # a safety offer may come first
    assert expected.title in answer, answer[:200]


async def test_drafts_are_hidden_when_not_shown(sanad_sqlite: Sanad) -> None:
    from bot.content import ContentLibrary

    hidden = ContentLibrary.load(show_drafts=False)
    reviewed = [m for m in sanad_sqlite.content.modules("en") if m.reviewed]
    assert len(hidden.modules("en")) == len(reviewed)


async def test_hotlines_are_reachable_in_every_language(sanad_sqlite: Sanad) -> None:
    for lang in LANGUAGES:
        reader = Reader(sanad_sqlite, f"help-{lang}", lang)
        turn = await reader(button="menu:help")
        text = turn.outbound[0].text
        assert "122" in text and "123" in text
        child = await reader(button="sv:child")
        assert "16000" in child.outbound[0].text



async def test_a_useful_module_offers_tips_until_the_user_subscribes(sanad_sqlite: Sanad) -> None:
    reader = Reader(sanad_sqlite, "tips-offer", "en")
    end = await read_to_the_end(reader, await reader(button="aw:open:check_job_offer"))
    assert "sub:yes" not in ids(end)  # "was this useful?" comes first
    rated = await reader(button="aw:rate:check_job_offer:1")
    assert "sub:yes" in ids(rated)
    topics = await reader(button="sub:yes")  # one tap from the module to the choice of topics
    assert "sub:topic:all" in ids(topics)
    for tap in ("sub:topic:all", "sub:lang:en", "sub:gov:skip", "sub:age:skip"):
        await reader(button=tap)
    assert any(isinstance(e, Subscribed) for e in reader.events)
    await read_to_the_end(reader, await reader(button="aw:open:online_recruitment"))
    rated_again = await reader(button="aw:rate:online_recruitment:1")
    assert "sub:yes" not in ids(rated_again)  # subscribed: no more offers
    assert "aw:topics" in ids(rated_again)



SMALL_TALK_INTENTS = ("greet", "goodbye", "thanks", "affirm", "deny")


def held_out_small_talk() -> list[str]:
    """Short greetings, thanks, goodbyes, yes and no from the intent held-out set."""
    data = yaml.safe_load((Path(__file__).parents[1] / "nlu" / "tests" / "heldout.yml")
                          .read_text("utf-8"))
    found = []
    for block in data["nlu"]:
        if block.get("intent") in SMALL_TALK_INTENTS:
            found += [line[2:].strip() for line in block["examples"].splitlines()
                      if line.startswith("- ") and len(line[2:].split()) <= 4]
    return found


def answers_a_question(app: Sanad, module_id: str, shown: str) -> bool:
    """Whether ``shown`` holds one of the module's follow-up answers, in any language."""
    return any(q.answer in shown for lang in LANGUAGES
               if (module := app.content.module(module_id, lang)) is not None
               for q in module.questions)


async def test_small_talk_inside_a_module_is_not_answered_as_a_question(
    sanad_sqlite: Sanad,
) -> None:
    """A greeting or a thank-you while reading is never taken for one of the module's
    questions (a loose match once answered "hello there" with "who to call")."""
    messages = held_out_small_talk()
    assert len(messages) >= 30
    answered = []
    for module_id in ("what_is_trafficking", "check_job_offer", "services_help",
                      "organ_trafficking"):
        for number, text in enumerate(messages):
            reader = Reader(sanad_sqlite, f"small-talk-{module_id}-{number}", "en")
            await reader(button=f"aw:open:{module_id}")
            turn = await reader(text)
            if answers_a_question(sanad_sqlite, module_id,
                                  "\n".join(m.text for m in turn.outbound)):
                answered.append((module_id, text))
    assert answered == []
