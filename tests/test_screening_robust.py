"""Screening answers in every variety: ages in words, why-questions, dialect yes/no, skip,
stop, and resuming after leaving (through the real engine, on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from bot.app import Sanad
from bot.messages import ScreeningCompleted, Turn
from tests.test_screening import Chat, buttons


def text_of(turn: Turn) -> str:
    return "\n".join(m.text for m in turn.outbound)


async def at_age(chat: Chat, greeting: str = "hello") -> Turn:
    await chat(greeting)
    await chat(button="menu:check")
    turn = await chat(button="sc:consent:yes")
    assert "sc:age:under_18" in buttons(turn)
    return turn


async def at_first_question(chat: Chat, greeting: str = "hello") -> Turn:
    await at_age(chat, greeting)
    turn = await chat(button="sc:age:25_plus")
    assert "sc:ans:yes" in buttons(turn)
    return turn


def completed(chat: Chat) -> list[ScreeningCompleted]:
    return [e for e in chat.events if isinstance(e, ScreeningCompleted)]


@pytest.mark.parametrize(("greeting", "age"), [
    ("مرحبا", "ستة عشر"), ("مرحبا", "سطاشر سنة"), ("مرحبا", "عندي ١٦ سنة"),
    ("ahlan", "sta4ar"), ("ahlan", "ana 3andi 16 sana"), ("hello", "sixteen"),
    ("hello", "I'm 16"), ("bonjour", "seize"), ("bonjour", "j'ai 17 ans"),
    ("hello", "I'm still a minor"), ("مرحبا", "أنا في تانية إعدادي"),
])
async def test_age_in_words_in_every_language_is_read(
    sanad: Sanad, greeting: str, age: str
) -> None:
    chat = Chat(sanad, f"age-{age}")
    await at_age(chat, greeting)
    turn = await chat(age)
    assert "16000" in text_of(turn), "an age under 18 gets the child helpline"
    assert "sc:ans:yes" in buttons(turn), "and the first question"


async def test_adult_age_in_words_goes_to_the_questions_without_the_minor_note(
    sanad: Sanad,
) -> None:
    chat = Chat(sanad, "adult-words")
    await at_age(chat)
    turn = await chat("twenty one")
    assert "sc:ans:yes" in buttons(turn) and "16000" not in text_of(turn)


async def test_unreadable_age_gets_the_hint_once_then_moves_on(sanad: Sanad) -> None:
    chat = Chat(sanad, "age-miss")
    first = await at_age(chat)
    miss = await chat("blue banana")
    assert buttons(miss) == buttons(first) and len(miss.outbound) == 2, "hint + the question"
    moved = await chat("purple kiwi")
    assert "sc:ans:yes" in buttons(moved), "a second miss moves on instead of looping"
    for _ in range(20):
        if "sc:ans:yes" not in buttons(moved):
            break
        moved = await chat("no")
    assert completed(chat) and completed(chat)[0].age_band == "no_answer"


@pytest.mark.parametrize("why", [
    "why?", "why do you ask?", "why do you need that", "ليه بتسأل", "ليش عم تسأل", "لشنو",
    "pourquoi vous demandez", "leh", "leh bt2ol keda", "ليه؟",
])
async def test_why_in_every_variety_explains_and_asks_again(sanad: Sanad, why: str) -> None:
    chat = Chat(sanad, f"why-{why}")
    first = await at_first_question(chat)
    turn = await chat(why)
    assert buttons(turn) == buttons(first) and len(turn.outbound) == 2
    progress = first.outbound[-1].text.split("\n")[0].split()[-1]  # "1/13", in any language
    assert progress in turn.outbound[-1].text.split("\n")[0], "the same question again"


async def test_why_at_consent_and_age_gets_the_general_explanation(sanad: Sanad) -> None:
    chat = Chat(sanad, "why-early")
    await chat("hello")
    consent = await chat(button="menu:check")
    turn = await chat("why do you ask?")
    assert buttons(turn) == buttons(consent) and "confidential" in turn.outbound[0].text
    age = await chat(button="sc:consent:yes")
    turn = await chat("why")
    assert buttons(turn) == buttons(age) and "confidential" in turn.outbound[0].text
    assert "sc:age:under_18" in buttons(await chat("purple kiwi")), "why did not count as a miss"


@pytest.mark.parametrize(("greeting", "yes", "no"), [
    ("مرحبا", "ايه", "لأ"), ("مرحبا", "اي", "لا والله"), ("مرحبا", "إي", "لا ما"),
    ("مرحبا", "ايوه", "لا"), ("مرحبا", "اي والله", "مافي"), ("مرحبا", "اه", "لأ"),
    ("ahlan", "aywa", "la2"), ("ahlan", "ah", "mafeesh"), ("hello", "yeah", "nope"),
    ("hello", "yep", "nah"), ("bonjour", "ouais", "nan"), ("bonjour", "oui", "non"),
])
async def test_dialect_yes_and_no_are_recorded(
    sanad: Sanad, greeting: str, yes: str, no: str
) -> None:
    chat = Chat(sanad, f"yn-{yes}-{no}")
    first = await at_first_question(chat, greeting)
    second = await chat(yes)
    assert second.outbound[-1].text != first.outbound[-1].text, f"{yes!r} answers"
    third = await chat(no)
    assert third.outbound[-1].text != second.outbound[-1].text, f"{no!r} answers"


async def test_egyptian_what_is_not_a_yes(sanad: Sanad) -> None:
    chat = Chat(sanad, "eh-what")
    first = await at_first_question(chat, "مرحبا")
    turn = await chat("ايه؟")
    assert "2/" not in text_of(turn), "not recorded as an answer"
    if "sc:resume" in buttons(turn):  # the classifier read "what?" as "the menu"
        turn = await chat(button="sc:resume")
    assert turn.outbound[-1].text == first.outbound[-1].text, "still at question 1"


@pytest.mark.parametrize("word", ["skip", "تخطي", "عدي", "فوت", "pass", "passer", "5alli", "باس"])
async def test_skip_words_move_to_the_next_question(sanad: Sanad, word: str) -> None:
    chat = Chat(sanad, f"skip-{word}")
    first = await at_first_question(chat)
    turn = await chat(word)
    assert "sc:ans:yes" in buttons(turn)
    assert turn.outbound[-1].text != first.outbound[-1].text


@pytest.mark.parametrize("word", ["stop", "وقف", "wa2af", "arrêter"])
async def test_stop_leaves_with_one_tap_to_resume_where_the_user_was(
    sanad: Sanad, word: str
) -> None:
    chat = Chat(sanad, f"stop-{word}")
    await at_first_question(chat)
    await chat("yes")
    second = await chat("no")
    stopped = await chat(word)
    assert "menu:learn" in buttons(stopped) and "sc:resume" in buttons(stopped)
    resumed = await chat(button="sc:resume")
    assert "3/" in resumed.outbound[-1].text.split("\n")[0], "back at question 3"
    assert buttons(resumed) == buttons(second)
    result = resumed
    for _ in range(20):
        if "sc:ans:yes" not in buttons(result):
            break
        result = await chat("no")
    answers = dict(completed(chat)[0].answers)
    assert answers[next(iter(answers))] in {"yes", "no"} and "yes" in answers.values()


async def test_a_request_elsewhere_tells_the_user_and_offers_to_resume(sanad: Sanad) -> None:
    chat = Chat(sanad, "leave-human")
    first = await at_first_question(chat)
    away = await chat(button="menu:privacy")
    assert "sc:resume" in buttons(away)
    resumed = await chat(button="sc:resume")
    assert resumed.outbound[-1].text == first.outbound[-1].text


async def test_resume_without_saved_progress_starts_fresh(sanad: Sanad) -> None:
    chat = Chat(sanad, "resume-fresh")
    await chat("hello")
    turn = await chat(button="sc:resume")
    assert "sc:consent:yes" in buttons(turn)


async def test_quick_exit_from_screening_offers_no_resume(sanad: Sanad) -> None:
    chat = Chat(sanad, "exit")
    await at_first_question(chat)
    turn = await chat(button="exit")
    assert "sc:resume" not in buttons(turn)
