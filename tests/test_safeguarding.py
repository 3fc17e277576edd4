"""Safeguarding through the real engine, on SQLite and PostgreSQL: danger however it is said,
from any state; no everyday word ends a case; global requests work in the queue; quick exit in
natural words and no trace of earlier use afterwards."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.app import Sanad, build
from bot.messages import Inbound, Turn
from handoff import queue
from nlu import EmbeddedNLU
from nlu.safeguard import SafetyAssessment, SafetyDetector
from tests.conftest import make_settings
from tests.transcript import state_of


class Chat:
    """One terminal user talking to the engine."""

    def __init__(self, app: Sanad, user: str) -> None:
        self.app, self.user = app, user
        self.ref = app.store.user_ref("terminal", user)

    async def say(self, text: str) -> Turn:
        return await self.app.engine.handle_turn(Inbound(user=self.ref, text=text),
                                                 address=self.user)

    async def tap(self, button: str) -> Turn:
        return await self.app.engine.handle_turn(Inbound(user=self.ref, button_id=button),
                                                 address=self.user)

    async def queue_for_a_person(self) -> None:
        await self.say("hello")
        await self.tap("menu:human")

    async def state(self) -> str | None:
        return (await state_of(self.app, self.user))[0]

    async def cases(self) -> list[queue.CaseSummary]:
        async with self.app.store.session() as db:
            return await queue.list_cases(db)


def names(turn: Turn) -> list[str]:
    return [e.name for e in turn.events]


def text_of(turn: Turn) -> str:
    return "\n".join(m.text for m in turn.outbound)


def buttons(turn: Turn) -> list[str]:
    return [b.id for m in turn.outbound for b in m.buttons]


# --- no everyday word ends a case ----------------------------------------------------------
@pytest.mark.parametrize("word", ["خلاص", "bye", "ok", "شكرا", "merci", "yalla bye"])
async def test_an_everyday_word_while_queued_keeps_the_case(sanad: Sanad, word: str) -> None:
    chat = Chat(sanad, "queued")
    await chat.queue_for_a_person()
    turn = await chat.say(word)
    assert "HandoffEnded" not in names(turn)
    assert "RelayedToCase" in names(turn)
    assert await chat.state() == "handoff.waiting"
    assert [c.status for c in await chat.cases()] == ["waiting"]
    assert "ho:end" in buttons(turn)  # reassured, with the explicit way out


async def test_an_urgent_case_survives_khalas_and_leaving_needs_a_confirmation(
    sanad: Sanad,
) -> None:
    chat = Chat(sanad, "urgent")
    assert "EmergencyTriggered" in names(await chat.say("help me they locked me in"))
    await chat.tap("em:human")
    await chat.say("خلاص")
    (case,) = await chat.cases()
    assert (case.status, case.priority) == ("waiting", "urgent")
    confirm = await chat.tap("ho:end")
    assert "HandoffEnded" not in names(confirm)
    assert buttons(confirm) == ["ho:end:yes", "ho:stay"]
    await chat.tap("ho:stay")
    assert [c.status for c in await chat.cases()] == ["waiting"]
    await chat.tap("ho:end")
    ended = await chat.tap("ho:end:yes")
    assert "HandoffEnded" in names(ended)
    assert await chat.cases() == []


# --- global requests in the queue and in screening ------------------------------------------
async def test_delete_my_data_in_the_queue_asks_there_then_erases(sanad: Sanad) -> None:
    chat = Chat(sanad, "erase-queued")
    await chat.queue_for_a_person()
    turn = await chat.say("delete my data")
    assert "pv:delete:yes" in buttons(turn)
    assert "RelayedToCase" not in names(turn)
    assert await chat.state() == "handoff.waiting"
    erased = await chat.say("yes")
    assert "DataErased" in names(erased)
    assert await chat.state() is None  # the user and their conversation are gone
    assert await chat.cases() == []


async def test_cancelling_a_deletion_in_the_queue_keeps_the_place(sanad: Sanad) -> None:
    chat = Chat(sanad, "erase-cancel")
    await chat.queue_for_a_person()
    await chat.say("احذف بياناتي")
    kept = await chat.tap("ho:keep")
    assert "DataErased" not in names(kept)
    assert await chat.state() == "handoff.waiting"
    assert "RelayedToCase" in names(await chat.say("are you there?"))


@pytest.mark.parametrize("question", ["what do you know about me", "ايه البيانات اللي عندكم عني"])
async def test_what_do_you_know_is_answered_in_the_queue(sanad: Sanad, question: str) -> None:
    chat = Chat(sanad, "mydata-queued")
    await chat.queue_for_a_person()
    turn = await chat.say(question)
    assert "RelayedToCase" not in names(turn)
    assert "pv:delete" in buttons(turn)
    assert await chat.state() == "handoff.waiting"


async def test_delete_my_data_works_inside_screening(sanad: Sanad) -> None:
    chat = Chat(sanad, "erase-screening")
    await chat.say("hello")
    await chat.tap("menu:check")
    await chat.tap("sc:consent:yes")
    turn = await chat.say("delete my data")
    assert "pv:delete:yes" in buttons(turn)
    assert "DataErased" in names(await chat.tap("pv:delete:yes"))


# --- quick exit in natural words, and no trace afterwards -----------------------------------
@pytest.mark.parametrize("words", [
    "/exit", "exit", "exit please", "EXIT!!", "خروج", "خروج بسرعة", "5orog", "khorog plz",
    "sortir", "sortir stp", "quitter", "hide chat",
    # natural ways to say "close / wipe this chat" (written for this list, 2026-12-07)
    "اقفل الشات بسرعة", "سكر المحادثة", "امسح المحادثة دلوقتي", "e2fel el chat", "close this",
    "Close the chat now!", "clear the chat please", "ferme la conversation", "efface tout vite",
])
async def test_quick_exit_phrasings(sanad: Sanad, words: str) -> None:
    chat = Chat(sanad, "exit-words")
    await chat.say("hello")
    await chat.tap("menu:check")
    turn = await chat.say(words)
    assert names(turn) == ["QuickExit"]
    assert await chat.state() == "menu.start"


@pytest.mark.parametrize("sentence", [
    "how do I exit the country legally", "je veux sortir de cette maison ils m'enferment",
    # wanting to get out of a place is never taken for hiding the chat
    "عايز اخرج", "I want to leave", "je veux partir", "close the door", "اقفل الباب عليا",
    "bye", "خلاص",
])
async def test_a_sentence_that_contains_an_exit_word_is_not_an_exit(sanad: Sanad,
                                                                    sentence: str) -> None:
    chat = Chat(sanad, "exit-sentence")
    await chat.say("hello")
    assert "QuickExit" not in names(await chat.say(sentence))


@pytest.mark.parametrize(("greeting", "tells"), [
    ("hi", ["again", "back"]), ("مرحبا", ["تاني", "تانى", "مجددا", "مجدداً"]),
    ("bonjour", ["re-bonjour", "de nouveau", "encore"]),
])
async def test_no_again_after_a_quick_exit(sanad: Sanad, greeting: str, tells: list[str]) -> None:
    chat = Chat(sanad, "exit-again")
    await chat.say(greeting)
    await chat.tap("menu:learn")
    await chat.say("exit")
    answer = text_of(await chat.say(greeting)).casefold()
    for tell in tells:
        assert tell not in answer


# --- danger in a flood burst -----------------------------------------------------------------
async def test_an_emergency_at_the_end_of_a_flood_burst_is_answered(
    database_url: str, embedded_nlu: EmbeddedNLU, safety_detector: SafetyDetector,
) -> None:
    settings = replace(make_settings(database_url), flood_rate=0.001, flood_burst=3)
    app = await build(settings, nlu=embedded_nlu, safety=safety_detector)
    try:
        chat = Chat(app, "burst")
        answers = [await chat.say(f"hello {n}") for n in range(6)]
        assert not answers[-1].outbound  # the flood is being dropped
        turn = await chat.say("help me they will kill me")
        assert "EmergencyTriggered" in names(turn)
        assert "122" in text_of(turn)
    finally:
        await app.store.engine.dispose()


# --- self-harm, minors, children at risk -----------------------------------------------------
@pytest.mark.parametrize("message", [
    "مش عايز اعيش تاني",                     # Egyptian
    "لا أريد أن أعيش بعد الآن",              # MSA
    "ما بدي عيش خلص",                        # Levantine
    "ana 3ayez amoot",                       # Arabizi
    "I don't want to live anymore",          # English
    "je veux mourir",                        # French
    "I'm going to kill myself tonight",
])
async def test_self_harm_gets_crisis_support_in_every_language(sanad: Sanad,
                                                               message: str) -> None:
    chat = Chat(sanad, "self-harm")
    await chat.say("hello")
    turn = await chat.say(message)
    assert "SelfHarmDisclosed" in names(turn)
    assert "ScreeningStarted" not in names(turn)
    assert "08008880700" in text_of(turn)  # the sourced mental-health line
    assert "sf:human:self_harm" in buttons(turn)
    await chat.tap("sf:human:self_harm")
    (case,) = await chat.cases()
    assert case.priority == "urgent"


async def test_self_harm_while_queued_raises_the_case(sanad: Sanad) -> None:
    chat = Chat(sanad, "self-harm-queued")
    await chat.queue_for_a_person()
    turn = await chat.say("I want to die")
    assert "SelfHarmDisclosed" in names(turn) and "RelayedToCase" in names(turn)
    (case,) = await chat.cases()
    assert case.priority == "urgent"
    assert await chat.state() == "handoff.waiting"


@pytest.mark.parametrize("message", [
    "عمري ستة عشر عاما وعرض علي شخص عملا في الخارج",   # MSA, in words
    "انا عندي سطاشر سنة وواحد عايز يسفرني ليبيا",       # Egyptian, in words
    "ana 3andi sta4ar sana w 3ayez asafer italy",        # Arabizi, in words
    "I'm sixteen and a man offered me a job in Dubai",   # English, in words
    "j'ai seize ans et on m'a proposé un travail en Italie",  # French, in words
    "عندي ١٥ سنة وعايز اسافر",                           # Arabic-Indic digits
])
async def test_a_minor_gets_child_protection(sanad: Sanad, message: str) -> None:
    chat = Chat(sanad, "minor")
    await chat.say("hello")
    turn = await chat.say(message)
    assert "MinorDisclosed" in names(turn)
    assert "16000" in text_of(turn)
    await chat.tap("sf:human:minor")
    (case,) = await chat.cases()
    assert "minor" in case.indicators


async def test_an_age_in_words_is_understood_by_screening(sanad: Sanad) -> None:
    chat = Chat(sanad, "minor-screening")
    await chat.say("hello")
    await chat.tap("menu:check")
    await chat.tap("sc:consent:yes")
    turn = await chat.say("ستة عشر")
    assert "16000" in text_of(turn)
    assert (await chat.state() or "").startswith("screening.q.")


async def test_a_child_at_risk_reported_by_a_relative(sanad: Sanad) -> None:
    chat = Chat(sanad, "child")
    await chat.say("hello")
    turn = await chat.say("my little sister is 14 and my father wants to marry her to an old "
                          "man for money")
    assert "ChildAtRiskReported" in names(turn)
    assert "16000" in text_of(turn)


@pytest.mark.parametrize("message", [
    "this exam is killing me", "I'm 24 and I want to work in Italy legally",
    "الامتحان ده هيموتني", "j'ai 30 ans, comment avoir un visa de travail ?",
])
async def test_hard_negatives_get_no_alarm(sanad: Sanad, message: str) -> None:
    chat = Chat(sanad, "negative")
    await chat.say("hello")
    turn = await chat.say(message)
    alarms = {"EmergencyTriggered", "SelfHarmDisclosed", "MinorDisclosed",
              "ChildAtRiskReported"}
    assert not alarms & set(names(turn))


class Doubtful:
    """A detector double that finds every message worrying but unclear."""

    def assess(self, text: str) -> SafetyAssessment:
        return SafetyAssessment(doubts=frozenset({"emergency"}))


async def test_a_doubt_is_asked_about_never_answered_with_only_the_menu(
    database_url: str, embedded_nlu: EmbeddedNLU,
) -> None:
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=Doubtful())
    try:
        chat = Chat(app, "doubt")
        await chat.tap("menu")
        asked = await chat.say("I wonder about the weather")
        assert "SafetyCheckAsked" in names(asked)
        assert buttons(asked) == ["sf:unsafe", "sf:safe"]
        assert "122" in text_of(asked)
        turn = await chat.tap("sf:unsafe")
        assert "EmergencyTriggered" in names(turn)
        await chat.say("I wonder about the weather")
        safe = await chat.tap("sf:safe")
        assert "EmergencyTriggered" not in names(safe)
        assert await chat.state() == "menu.main"
    finally:
        await app.store.engine.dispose()


async def test_a_typed_no_to_the_safety_question_is_an_emergency(
    database_url: str, embedded_nlu: EmbeddedNLU,
) -> None:
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=Doubtful())
    try:
        chat = Chat(app, "doubt-typed")
        await chat.tap("menu")
        await chat.say("I wonder about the weather")
        assert "EmergencyTriggered" in names(await chat.say("لا"))
    finally:
        await app.store.engine.dispose()


# --- a doubt beside a question the module answers ---------------------------------------------
class FlagsOnly:
    """A detector double: the given messages carry these labels, every other one is clear."""

    def __init__(self, texts: tuple[str, ...], labels: frozenset[str] = frozenset({"grey"})
                 ) -> None:
        self.texts, self.labels = texts, labels

    def assess(self, text: str) -> SafetyAssessment:
        return SafetyAssessment(labels=self.labels) if text in self.texts else SafetyAssessment()


FOLLOW_UPS = [  # (greeting, a follow-up question of check_job_offer, a word of its answer, "no")
    ("bonjour", "le contrat, je le reçois seulement en arrivant, c'est normal ?", "contrat écrit",
     "non"),
    ("مرحبا", "أسلمه الباسبور؟", "الباسبور الأصلي مكانه مع صاحبه", "لا"),
]


async def _reading(app: Sanad, user: str, greeting: str) -> Chat:
    chat = Chat(app, user)
    await chat.say(greeting)
    await chat.tap("aw:open:check_job_offer")
    return chat


@pytest.mark.parametrize(("greeting", "question", "answer", "no"), FOLLOW_UPS)
async def test_a_doubt_on_a_module_question_gets_the_answer_and_the_safety_question(
    database_url: str, embedded_nlu: EmbeddedNLU, greeting: str, question: str, answer: str,
    no: str,
) -> None:
    app = await build(make_settings(database_url), nlu=embedded_nlu,
                      safety=FlagsOnly((question,)))
    try:
        chat = await _reading(app, "grey-followup", greeting)
        turn = await chat.say(question)
        assert answer in turn.outbound[0].text  # the module's answer first ...
        assert "SafetyCheckAsked" in names(turn)  # ... and the safety question, last
        assert [b.id for b in turn.outbound[-1].buttons] == ["sf:unsafe", "sf:safe"]
        assert "122" in turn.outbound[-1].text
        assert await chat.state() == "safety.check"
        assert "EmergencyTriggered" in names(await chat.say(no))  # a typed "no" still acts
    finally:
        await app.store.engine.dispose()


async def test_a_doubt_on_anything_else_inside_a_module_is_only_asked_about(
    database_url: str, embedded_nlu: EmbeddedNLU,
) -> None:
    words = "I wonder about the weather"
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=FlagsOnly((words,)))
    try:
        chat = await _reading(app, "grey-other", "hello")
        turn = await chat.say(words)
        assert names(turn) == ["SafetyCheckAsked"]
        assert len(turn.outbound) == 1 and buttons(turn) == ["sf:unsafe", "sf:safe"]
    finally:
        await app.store.engine.dispose()


@pytest.mark.parametrize("label", ["emergency", "self_harm"])
async def test_an_urgent_label_on_a_module_question_comes_first(
    database_url: str, embedded_nlu: EmbeddedNLU, label: str,
) -> None:
    """The urgent answer is the first message, on its own, and its state wins; the question
    the module answers is answered after it (tests/test_module_answer_beside_alarm.py)."""
    greeting, question, answer, _ = FOLLOW_UPS[1]
    app = await build(make_settings(database_url), nlu=embedded_nlu,
                      safety=FlagsOnly((question,), frozenset({label})))
    try:
        chat = await _reading(app, "urgent-followup", greeting)
        turn = await chat.say(question)
        assert answer not in turn.outbound[0].text
        assert {"emergency": "EmergencyTriggered", "self_harm": "SelfHarmDisclosed"}[label] \
            in names(turn)
        assert not (await chat.state() or "").startswith("awareness"), "the alarm's state wins"
    finally:
        await app.store.engine.dispose()

