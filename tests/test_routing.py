"""Routing from the flows' own declarations (bot.flows.routes), and words matched one way.

The tables below are what the engine's hard-coded tables said before the flows declared their
routes: they pin that nothing changed on the way, and a new flow reaches the engine by
declaring its routes alone (``test_a_new_flow_is_routed_from_its_declaration``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from bot.app import Sanad
from bot.channels.telegram_commands import COMMANDS as TELEGRAM_MENU
from bot.engine import Engine
from bot.flows import FlowRegistry, default_flows
from bot.flows.base import Step, TurnContext
from bot.flows.routes import Routes, RoutingTable
from bot.messages import HandoffEnded, Inbound, QuickExit, Turn

ROUTING = FlowRegistry(default_flows()).routing

COMMANDS: dict[str, tuple[str, dict[str, Any]]] = {
    "start": ("menu", {"welcome": True}), "menu": ("menu", {}), "help": ("menu", {}),
    "language": ("language", {}), "lang": ("language", {}),
    "delete": ("privacy", {"entry": "delete"}), "privacy": ("privacy", {"entry": "info"}),
    "mydata": ("privacy", {"entry": "mydata"}), "human": ("handoff", {"reason": "user_request"}),
    "help_now": ("emergency", {}), "sos": ("emergency", {}), "services": ("services", {}),
    "check": ("screening", {}), "learn": ("awareness", {}), "subscribe": ("subscribe", {}),
    "unsubscribe": ("subscribe", {"entry": "stop"}), "stop": ("subscribe", {"entry": "stop"}),
    "exit": ("exit", {}), "quit": ("exit", {}),
}
# Intent → the flows it does not take the user out of (where it means something local).
INTERRUPTS: dict[str, tuple[str, ...]] = {
    "delete_my_data": ("privacy",), "talk_to_human": ("handoff",),
    "change_language": ("language",), "menu": ("menu",), "privacy_info": ("privacy",),
    "find_services": ("services",), "unsubscribe": ("subscribe", "screening", "handoff"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_reaches_the_flow_that_declares_it(name: str) -> None:
    route = ROUTING.command(name)
    assert route is not None and (route.flow, dict(route.entry)) == COMMANDS[name]


def test_every_command_in_the_telegram_menu_has_a_route() -> None:
    assert [name for name in TELEGRAM_MENU if ROUTING.command(name) is None] == []


def test_an_unknown_command_has_no_route() -> None:
    assert ROUTING.command("frobnicate") is None
    assert ROUTING.command("stop_word") is None


@pytest.mark.parametrize("intent", sorted(INTERRUPTS))
def test_interrupts_spare_only_the_flows_where_they_mean_something_local(intent: str) -> None:
    spared = {flow.name for flow in default_flows()
              if ROUTING.interrupt(intent, flow.name) is None}
    assert spared == set(INTERRUPTS[intent])


def test_only_declared_intents_interrupt() -> None:
    for intent in ("greet", "start_screening", "learn_trafficking", "subscribe", None):
        assert ROUTING.interrupt(intent, "awareness") is None
    assert ROUTING.intent("start_screening") is not None  # free text still goes there


@pytest.mark.parametrize(("flow", "awaits", "worry", "keeps"), [
    ("screening", True, True, True), ("safety", True, True, False),
    ("subscribe", True, False, False), ("language", True, False, False),
    ("privacy", True, False, False), ("handoff", False, True, True),
    ("emergency", False, True, False), ("menu", False, False, False),
    ("awareness", False, False, False), ("no_such_flow", False, False, False),
])
def test_flows_declare_how_global_rules_apply(flow: str, awaits: bool, worry: bool,
                                              keeps: bool) -> None:
    routes = ROUTING.of(flow)
    assert (routes.awaits_answer, routes.answers_worry, ROUTING.holds_place(flow)) == (
        awaits, worry, keeps)


class ToyFlow:
    """A flow the engine has never heard of: only its declaration routes to it."""

    name: ClassVar[str] = "toy"
    button_prefixes: ClassVar[tuple[str, ...]] = ("toy",)
    routes: ClassVar[Routes] = Routes(commands={"toy": {"entry": "hello"}},
                                      aliases={"play": "toy"}, keeps_place=True)

    def start(self, ctx: TurnContext, entry: str = "") -> Step:
        return Step(messages=[ctx.say_text(f"toy:{entry}")], flow="toy", state="toy.playing")

    def handle(self, ctx: TurnContext) -> Step:
        return Step(messages=[ctx.say_text(f"toy heard {ctx.text}")], flow="toy",
                    state="toy.playing")


class Twin(ToyFlow):
    name: ClassVar[str] = "twin"


@pytest.mark.parametrize(("routes", "message"), [
    ({"intents": {"a": {}}, "interrupts": frozenset({"b"})}, "interrupts without"),
    ({"commands": {"a": {}}, "aliases": {"b": "c"}}, "aliases must name"),
    ({"commands": {"a": {}}, "aliases": {"a": "a"}}, "aliases must name"),
])
def test_inconsistent_declarations_fail_at_start(routes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Routes(**routes)


def test_two_flows_claiming_one_command_fail_at_start() -> None:
    with pytest.raises(ValueError, match="command 'toy' is declared twice"):
        RoutingTable([ToyFlow(), Twin()])
    with pytest.raises(ValueError, match="command 'menu' is declared twice"):
        FlowRegistry([*default_flows(), type("Menu2", (ToyFlow,), {
            "name": "menu2", "routes": Routes(commands={"menu": {}})})()])


def inbound(app: Sanad, user: str, text: str = "", **kw: Any) -> Inbound:
    return Inbound(user=app.store.user_ref("terminal", user), text=text, **kw)


async def test_a_new_flow_is_routed_from_its_declaration(sanad_sqlite: Sanad) -> None:
    app = sanad_sqlite
    core = app.engine
    engine = Engine(settings=core.settings, store=core.store, cases=core.back_office.cases,
                    referrals=core.back_office.referrals, outbox=core.outbox, nlu=core.nlu,
                    content=core.content, ui=core.ui, safety=core.safety,
                    flows=FlowRegistry([*default_flows(), ToyFlow()]))
    await engine.handle_turn(inbound(app, "toy", "hello"))
    for command in ("/toy", "/PLAY@SanadBot", "/Toy.", "/ＴＯＹ"):
        turn = await engine.handle_turn(inbound(app, "toy", command))
        assert turn.outbound[0].text == "toy:hello"
    # It keeps its place: "/stop" confirms the opt-out without leaving the toy.
    turn = await engine.handle_turn(inbound(app, "toy", "/stop"))
    assert turn.outbound[-1].text == app.ui.text("en", "subscribe.not_subscribed")
    turn = await engine.handle_turn(inbound(app, "toy", "blue"))
    assert turn.outbound[0].text == "toy heard blue"


# --- words that act, matched one way (bot.words.fold) --------------------------------------
async def _say(app: Sanad, user: str, *steps: str) -> Turn:
    """Each step is typed text, or a button id when it starts with "@"."""
    turn = Turn()
    for step in steps:
        if step.startswith("@"):
            turn = await app.engine.handle_turn(inbound(app, user, button_id=step[1:]))
        else:
            turn = await app.engine.handle_turn(inbound(app, user, step))
    return turn


async def _state(app: Sanad, user: str) -> tuple[str, str]:
    async with app.store.turn(inbound(app, user).user) as tx:
        loaded = await tx.load(claim=None)
    assert loaded is not None
    return loaded[1].flow, loaded[1].state


IN_SCREENING = ("hello", "@menu:check", "@sc:consent:yes", "@sc:age:18_24")


@pytest.mark.parametrize("word", [
    "stop", "stop.", "Stop!", " STOP ", "stooop", "stop the questions!", "enough",
    "وقف", "وقف.", "وقـف", "كفايه", "كفاية!", "arrête", "ARRETER",
])
async def test_stop_words_end_screening_for_an_english_speaking_user(
    sanad_sqlite: Sanad, word: str,
) -> None:
    user = f"stop-{word}"
    turn = await _say(sanad_sqlite, user, *IN_SCREENING, word)
    assert await _state(sanad_sqlite, user) == ("menu", "menu.main")
    assert sanad_sqlite.ui.text("en", "screening.stopped") in turn.outbound[-1].text


@pytest.mark.parametrize("word", [
    "exit", "exit!", "EXIT", " Exit. ", "ＥＸＩＴ", "/quit", "/exit@SanadBot", "exit please!",
    "خروج", "خروج.", "خروج!!", "خــروج", "اخفى", "إخفي", "khorog.", "sortir !",
])
async def test_quick_exit_words_in_any_spelling(sanad_sqlite: Sanad, word: str) -> None:
    turn = await _say(sanad_sqlite, f"exit-{word}", *IN_SCREENING, word)
    assert [e.name for e in turn.events] == ["QuickExit"]
    assert len(turn.outbound) == 1 and not turn.outbound[0].buttons


@pytest.mark.parametrize("text", [
    "how do I exit Egypt safely", "exit the country legally how", "the stop is near my house",
])
async def test_a_sentence_containing_an_act_word_is_not_the_act(
    sanad_sqlite: Sanad, text: str,
) -> None:
    turn = await _say(sanad_sqlite, f"sentence-{text}", "hello", text)
    assert not any(isinstance(e, QuickExit) for e in turn.events)


@pytest.mark.parametrize(("typed", "lang"), [
    ("English!", "en"), ("english.", "en"), ("انجليزى.", "en"), ("بالإنجليزي", "en"),
    ("Français!", "fr"), ("francais ?", "fr"), ("العربيه", "ar"), ("عربي!", "ar"),
])
async def test_a_typed_language_name_in_any_spelling(
    sanad_sqlite: Sanad, typed: str, lang: str,
) -> None:
    user = f"lang-{typed}"
    turn = await _say(sanad_sqlite, user, "bonjour" if lang != "fr" else "hello",
                      "@menu:language", typed)
    assert [e.name for e in turn.events] == ["LanguageChanged"]
    async with sanad_sqlite.store.turn(inbound(sanad_sqlite, user).user) as tx:
        loaded = await tx.load(claim=None)
    assert loaded is not None and loaded[0].language == lang


@pytest.mark.parametrize("typed", ["2", "٢", "۲", "2.", "(2)", " 2 "])
async def test_a_typed_number_picks_a_button(sanad_sqlite: Sanad, typed: str) -> None:
    await _say(sanad_sqlite, f"number-{typed}", "hello", typed)
    # Button 2 of the menu is "check my situation": screening asks for consent.
    assert await _state(sanad_sqlite, f"number-{typed}") == ("screening", "screening.consent")


@pytest.mark.parametrize("word", [
    "خلاص", "خلاص.", "bye", "Bye!", "ok", "stop", "stop.", "end", "انهاء", "مع السلامة", "fin",
])
async def test_no_everyday_word_ends_a_case(sanad_sqlite: Sanad, word: str) -> None:
    user = f"case-{word}"
    turn = await _say(sanad_sqlite, user, "hello", "@menu:human", word)
    assert not any(isinstance(e, HandoffEnded) for e in turn.events)
    assert (await _state(sanad_sqlite, user))[0] == "handoff"
