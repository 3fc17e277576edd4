"""Hypothesis fuzzing: no input a user (or a forger) can send makes the engine or a webhook
fail. Counts of generated inputs are reported in the closing note."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import Sanad
from bot.messages import Inbound, MediaKind
from tests.transcript import state_of

EXAMPLES = 200
_counter = itertools.count()

texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(["/start", "/exit", "/delete", "خروج", "1", "99", "", "\u200f", "aywa"]),
)
buttons = st.one_of(
    st.none(),
    st.text(max_size=70),
    st.sampled_from(["menu", "aw:open:nope", "aw:next:check_job_offer:99", "aw:qa:x:1:myth",
                     "sc:age:alien", "sc:ans:maybe", "lang:xx", "pv:delete:yes", "ho:end",
                     "em:human", "sv:unknown", "aw:next:check_job_offer:-1", "sub:yes"]),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.tuples(texts, buttons, st.none() | st.sampled_from(list(MediaKind))),
                      min_size=1, max_size=4))
async def test_the_engine_answers_anything(sanad_sqlite: Sanad, steps: list[Any]) -> None:
    name = f"fuzz-{next(_counter)}"
    user = sanad_sqlite.store.user_ref("terminal", name)
    for text, button, media in steps:
        turn = await sanad_sqlite.engine.handle_turn(
            Inbound(user=user, text=text, button_id=button, media=media))
        state, _ = await state_of(sanad_sqlite, name)
        # An answer, except while messages are relayed to a caseworker (acknowledged once).
        assert turn.outbound or state == "handoff.waiting", state
        for message in turn.outbound:
            assert message.text.strip()
            assert all(len(b.id.encode()) <= 64 for b in message.buttons)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["update_id", "message", "callback_query", "text", "chat",
                                       "id", "from", "data", "date", "type", "message_id",
                                       "first_name", "is_bot", "chat_instance"])
                      | st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
