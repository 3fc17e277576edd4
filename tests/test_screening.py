"""Screening end to end in every variety, the emergency interrupt, and the scoring rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import Sanad, build
from bot.content import ContentLibrary
from bot.flows.screening import score
from bot.messages import EmergencyTriggered, HandoffRequested, Inbound, ScreeningCompleted, Turn
from handoff.queue import list_cases
from nlu import EmbeddedNLU
from tests.conftest import SECRET, make_settings

VARIETIES = {
    # variety: (greeting, yes, no, expected reply language)
    "ar": ("السلام عليكم", "نعم", "لا", "ar"),
    "arz": ("ازيك عامل ايه", "ايوه", "لأ", "ar"),
    "arabizi": ("ezayak ya sanad", "aywa", "la2", "ar"),
    "en": ("hello there", "yes", "no", "en"),
    "fr": ("bonjour", "oui", "non", "fr"),
}


class Chat:
    def __init__(self, sanad: Sanad, user: str) -> None:
        self.sanad, self.user = sanad, sanad.store.user_ref("terminal", user)
        self.events: list[object] = []

    async def __call__(self, text: str = "", button: str | None = None) -> Turn:
        turn = await self.sanad.engine.handle_turn(
            Inbound(user=self.user, text=text, button_id=button))
        self.events.extend(turn.events)
        return turn


def buttons(turn: Turn) -> list[str]:
    return [b.id for m in turn.outbound for b in m.buttons]


async def answer_all(chat: Chat, answer: str, *, age: str = "sc:age:18_24") -> Turn:
    await chat(button="menu:check")
    turn = await chat(answer if answer in {"yes", "oui", "نعم", "ايوه", "aywa"} else "yes")
    assert any(b.startswith("sc:age:") for b in buttons(turn)), "consent leads to the age question"
    turn = await chat(button=age)
    for _ in range(30):
        if "sc:ans:yes" not in buttons(turn):
            return turn
        turn = await chat(answer)
    raise AssertionError("screening never ended")


@pytest.mark.parametrize("variety", VARIETIES)
async def test_all_yes_ends_high_with_a_caseworker_who_gets_the_case(
    sanad: Sanad, variety: str
) -> None:
    greeting, yes, _, lang = VARIETIES[variety]
    chat = Chat(sanad, f"all-yes-{variety}")
    await chat(greeting)
    result = await answer_all(chat, yes)
    completed = [e for e in chat.events if isinstance(e, ScreeningCompleted)]
    assert completed and completed[0].risk_level in {"high", "urgent"}
    assert "sc:handoff:yes" in buttons(result)
    accepted = await chat(yes)
    request = [e for e in accepted.events if isinstance(e, HandoffRequested)]
    assert request and request[0].priority in {"high", "urgent"}
    async with sanad.store.session() as db:
        cases = await list_cases(db)
    assert len(cases) == 1 and cases[0].risk_level == completed[0].risk_level
    assert cases[0].language == lang and "documents_retained" in cases[0].indicators


@pytest.mark.parametrize("variety", VARIETIES)
async def test_all_no_ends_low_with_suggestions_and_no_case(sanad: Sanad, variety: str) -> None:
    greeting, _, no, _ = VARIETIES[variety]
    chat = Chat(sanad, f"all-no-{variety}")
    await chat(greeting)
    result = await answer_all(chat, no)
    completed = [e for e in chat.events if isinstance(e, ScreeningCompleted)]
    assert completed and completed[0].risk_level == "low" and completed[0].indicators == ()
    assert any(b.startswith("aw:open:") for b in buttons(result))
    async with sanad.store.session() as db:
        assert await list_cases(db) == []


@pytest.mark.parametrize(("greeting", "danger"), [
    ("مرحبا", "الحقوني في واحد حابسني في الشقة ومش عارفة اخرج"),
    ("hello", "help me they locked me in the room and took my phone"),
    ("bonjour", "aidez moi on m'a enfermée et il me frappe"),
    ("ahlan", "el ragel beyedrabni w 2afal 3alaya el bab"),
])
async def test_emergency_interrupts_screening_and_one_yes_opens_an_urgent_case(
    sanad_sqlite: Sanad, greeting: str, danger: str
) -> None:
    chat = Chat(sanad_sqlite, f"em-{greeting}")
    await chat(greeting)
    await chat(button="menu:check")
    await chat(button="sc:consent:yes")
    await chat(button="sc:age:25_plus")
    turn = await chat(danger)
    assert any(isinstance(e, EmergencyTriggered) for e in turn.events)
    text = "\n".join(m.text for m in turn.outbound)
    assert "122" in text and "123" in text, "emergency numbers come first"
    assert "em:human" in buttons(turn)
    await chat(button="em:human")
    async with sanad_sqlite.store.session() as db:
        cases = await list_cases(db)
    assert [c.priority for c in cases] == ["urgent"]


async def test_under_18_is_offered_the_child_helpline_and_a_caseworker(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite, "minor")
    await chat("hello")
    await chat(button="menu:check")
    await chat(button="sc:consent:yes")
    turn = await chat("16")
    assert "16000" in "\n".join(m.text for m in turn.outbound)
    result = await answer_all_from_here(chat, turn, "no")
    assert "sc:handoff:yes" in buttons(result)
    assert "16000" in "\n".join(m.text for m in result.outbound)


async def answer_all_from_here(chat: Chat, turn: Turn, answer: str) -> Turn:
    while "sc:ans:yes" in buttons(turn):
        turn = await chat(answer)
    return turn


async def test_skip_stop_and_why(sanad_sqlite: Sanad) -> None:
    chat = Chat(sanad_sqlite, "skipper")
    await chat("hello")
    await chat(button="menu:check")
    await chat(button="sc:consent:yes")
    first = await chat(button="sc:age:no_answer")
    why = await chat("why?")
    assert buttons(why) == buttons(first) and len(why.outbound) == 2
    skipped = await chat("skip")
    assert skipped.outbound[0].text != first.outbound[0].text, "skip moves to the next question"
    stopped = await chat("stop")
    assert "menu:learn" in buttons(stopped)
    assert not [e for e in chat.events if isinstance(e, ScreeningCompleted)]


def test_red_flags_raise_the_level_on_their_own() -> None:
    spec = ContentLibrary.load().screening
    assert score(spec, {}, minor=False).level == "low"
    assert score(spec, {}, minor=True).level == "high"
    assert score(spec, {"violence_threats": "yes"}, minor=False).level in {"high", "urgent"}
    both = {"documents_retained": "yes", "not_free_to_leave": "yes"}
    assert score(spec, both, minor=False).level in {"high", "urgent"}
    assert score(spec, {"violence_threats": "yes", "not_free_to_leave": "yes"},
                 minor=False).level == "urgent"
    everything = {q.id: "yes" for q in spec.questions}
    assessment = score(spec, everything, minor=False)
    assert assessment.level == "urgent" and set(assessment.indicators) == set(everything)


async def test_cases_list_json_shows_the_queue_without_personal_data(
    tmp_path: Path, embedded_nlu: EmbeddedNLU, nlu_cache: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    app = await build(make_settings(url), nlu=embedded_nlu)
    chat = Chat(app, "201112223344")
    await chat("hello")
    await answer_all(chat, "yes")
    await chat(button="sc:handoff:yes")
    await app.store.engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "SANAD_SECRET_KEY": SECRET.decode(),
           "SANAD_CACHE_DIR": str(nlu_cache)}
    out = subprocess.run([sys.executable, "-m", "bot", "cases", "list", "--json"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    cases = json.loads(out)
    assert len(cases) == 1
    case = cases[0]
    assert set(case) == {"id", "alias", "status", "priority", "risk_level", "indicators",
                         "language", "channel", "created_at", "claimed_at", "assignee",
                         "contact_paused", "trigger", "labels", "waiting_since",
                         "last_user_message_at", "unanswered", "window"}
    assert case["status"] == "waiting" and case["priority"] in {"high", "urgent"}
    assert case["trigger"] == "screening" and case["window"] is None
    assert "201112223344" not in out
