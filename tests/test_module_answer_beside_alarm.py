"""A question the module being read answers is answered even when the same message raises an
alarm (after the alarm's own answer) or uses an erasure word ("can I delete the chat with
him?" asks the module, not for Sanad's erasure). Found by the new-module transcripts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.app import Sanad, build
from bot.flows.awareness import SURE_FOLLOW_UP
from nlu import EmbeddedNLU
from nlu.results import IntentScore, ParseResult
from nlu.safeguard import SafetyAssessment
from tests.conftest import make_settings
from tests.test_safeguarding import Chat, buttons, names, text_of


class Labels:
    """A detector double: the given texts carry ``labels``, every other text is clear."""

    def __init__(self, texts: set[str], labels: frozenset[str]) -> None:
        self.texts, self.labels = texts, labels

    def assess(self, text: str) -> SafetyAssessment:
        return SafetyAssessment(labels=self.labels) if text in self.texts else SafetyAssessment()


async def reading(app: Sanad, user: str, module_id: str) -> Chat:
    chat = Chat(app, user)
    await chat.tap("menu")
    await chat.tap(f"aw:open:{module_id}")
    return chat


def answers_of(app: Sanad, module_id: str) -> list[str]:
    module = app.content.module(module_id, "en")
    assert module is not None and module.questions
    return [q.answer for q in module.questions]


BLACKMAIL = "if I pay him the money, will he leave me alone and delete the pictures?"
NEPHEW = "my nephew is 13 and works all day in a car workshop, is that even allowed?"


@pytest.mark.parametrize(("module_id", "text", "label", "alarm"), [
    ("sexual_exploitation", BLACKMAIL, "emergency", "EmergencyTriggered"),
    ("child_labour", NEPHEW, "child_at_risk", "ChildAtRiskReported"),
])
async def test_the_alarm_comes_first_and_the_question_is_answered_after_it(
    database_url: str, embedded_nlu: EmbeddedNLU, module_id: str, text: str, label: str,
    alarm: str,
) -> None:
    app = await build(make_settings(database_url), nlu=embedded_nlu,
                      safety=Labels({text}, frozenset({label})))
    try:
        chat = await reading(app, "beside", module_id)
        turn = await chat.say(text)
        assert alarm in names(turn)
        first = turn.outbound[0].text
        assert not any(answer in first for answer in answers_of(app, module_id)), \
            "the alarm's answer comes first, on its own"
        later = "\n".join(m.text for m in turn.outbound[1:])
        assert any(answer in later for answer in answers_of(app, module_id))
    finally:
        await app.store.engine.dispose()


async def test_deleting_a_chat_with_a_blackmailer_is_a_question_not_an_erasure(
    database_url: str, embedded_nlu: EmbeddedNLU,
) -> None:
    question = "can I just block him and delete all the messages?"
    parsed = await embedded_nlu.parse(question)
    assert parsed.intent.name == "delete_my_data", "the words alone read as an erasure request"
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=Labels(set(),
                                                                                  frozenset()))
    try:
        chat = await reading(app, "blackmail-chat", "sexual_exploitation")
        turn = await chat.say(question)
        assert "pv:delete:yes" not in buttons(turn)
        assert any(answer in text_of(turn) for answer in answers_of(app, "sexual_exploitation"))
        assert "pv:delete" in buttons(turn), "the erasure stays one tap away"
        erase = await chat.tap("pv:delete")
        assert "pv:delete:yes" in buttons(erase)
    finally:
        await app.store.engine.dispose()


class Forced:
    """An NLU double: the given texts read as ``intent`` (sure), the rest as the real NLU
    reads them. The words decide whether a request or a module question is meant, not the
    classifier's mood of the day."""

    def __init__(self, nlu: EmbeddedNLU, texts: set[str], intent: str) -> None:
        self.nlu, self.texts, self.intent = nlu, texts, intent

    async def parse(self, text: str) -> ParseResult:
        parsed = await self.nlu.parse(text)
        if text not in self.texts:
            return parsed
        return replace(parsed, intent=IntentScore(self.intent, 0.95),
                       ranking=(IntentScore(self.intent, 0.95),))

    async def aclose(self) -> None:
        pass


PICTURES = "how can I stop my private pictures from being shared online?"
WHO_TO_CALL = "someone is threatening me online, what number do I call?"


@pytest.mark.parametrize(("intent", "text", "button"), [
    ("unsubscribe", PICTURES, None),
    ("find_services", WHO_TO_CALL, "menu:help"),
    ("talk_to_human", WHO_TO_CALL, "menu:human"),
    ("privacy_info", PICTURES, "pv:mydata"),
])
async def test_a_sure_module_question_wins_over_the_request_its_words_suggest(
    database_url: str, embedded_nlu: EmbeddedNLU, intent: str, text: str,
    button: str | None,
) -> None:
    app = await build(make_settings(database_url), nlu=Forced(embedded_nlu, {text}, intent),
                      safety=Labels(set(), frozenset()))
    try:
        asked = app.content.follow_up("online_safety", "en", text)
        assert asked is not None and asked.score >= SURE_FOLLOW_UP, "a sure match to begin"
        chat = await reading(app, f"beside-{intent}", "online_safety")
        turn = await chat.say(text)
        assert asked.question.answer in text_of(turn)
        assert "HandoffRequested" not in names(turn)
        if button is not None:
            assert button in buttons(turn), "the request stays one tap away"
        # Outside a module the same words are the request.
        elsewhere = Chat(app, f"elsewhere-{intent}")
        await elsewhere.tap("menu")
        direct = await elsewhere.say(text)
        assert asked.question.answer not in text_of(direct)
    finally:
        await app.store.engine.dispose()
