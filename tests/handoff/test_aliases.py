"""Case aliases are random per case: an erased person's next case cannot be linked by alias."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Sanad
from bot.messages import Inbound
from bot.store.models import Case
from handoff.queue import ALIAS_ALPHABET, ALIAS_LENGTH, new_alias


async def say(app: Sanad, user: str, text: str = "", button: str | None = None) -> None:
    ref = app.store.user_ref("terminal", user)
    await app.engine.handle_turn(Inbound(user=ref, text=text, button_id=button), address=user)


async def test_an_erased_persons_next_case_gets_a_new_alias(sanad: Sanad) -> None:
    await say(sanad, "returning", "hello")
    await say(sanad, "returning", button="menu:human")
    await say(sanad, "returning", "/delete")
    await say(sanad, "returning", button="pv:delete:yes")
    await say(sanad, "returning", "hello")
    await say(sanad, "returning", "yes")  # OK to continue here
    await say(sanad, "returning", button="menu:human")
    async with sanad.store.session() as db:
        cases = (await db.scalars(select(Case).order_by(Case.id))).all()
    assert len(cases) == 2
    erased, new = cases
    assert erased.user_id is None and new.user_id is not None
    assert erased.alias != new.alias


def test_aliases_are_random_readable_and_short() -> None:
    aliases = {new_alias() for _ in range(2000)}
    assert len(aliases) == 2000, "no collisions in a day's worth of cases"
    for alias in aliases:
        assert alias.startswith("S-") and len(alias) == 2 + ALIAS_LENGTH <= 16
        assert set(alias[2:]) <= set(ALIAS_ALPHABET)
    assert not set("01OIL") & set(ALIAS_ALPHABET), "nothing to misread aloud"
