"""The emergency answer itself: what a woman in danger is shown, each number once."""

from __future__ import annotations

from bot.app import build
from nlu import EmbeddedNLU
from nlu.safeguard import SafetyAssessment
from tests.conftest import make_settings
from tests.test_safeguarding import Chat, names, text_of


class WomanInDanger:
    """A detector double: every message is an emergency written by a woman."""

    def assess(self, text: str) -> SafetyAssessment:
        return SafetyAssessment(labels=frozenset({"emergency"}), ruled=frozenset({"woman"}))


async def test_a_womans_emergency_lists_each_number_once(
    database_url: str, embedded_nlu: EmbeddedNLU,
) -> None:
    """The women's lines are added to the emergency answer, but one already listed there
    (the Women's Complaints Office is both) is not repeated."""
    app = await build(make_settings(database_url), nlu=embedded_nlu, safety=WomanInDanger())
    try:
        turn = await Chat(app, "woman").say("ana f mosiba")
        assert "EmergencyTriggered" in names(turn)
        text = text_of(turn)
        women = app.content.services(category="women")
        assert women, "the directory lists services for women"
        for service in women:
            assert text.count(service.phone or "") == 1, service.id
    finally:
        await app.store.engine.dispose()
