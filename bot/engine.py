"""The channel-agnostic core: ``handle_turn(Inbound) -> Turn``.

One turn: de-duplicate, load the user and their conversation, understand the text (language,
intent, yes/no), apply the global interrupts that must work from any state (emergency, quick
exit, delete my data, menu, language, a human), otherwise let the active flow answer, then
persist the new state, the events and their effects in the same transaction.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, replace
from typing import Generic

from bot.attribution import campaign_code, split_tag
from bot.config import SUPPORTED_LANGUAGES, Settings
from bot.content import ContentLibrary
from bot.core.clock import utcnow
from bot.core.ports import (
    CaseQueue,
    Outbox,
    Referrals,
    SafetyDetector,
    StaffAvailability,
    TurnStore,
    Tx,
    Understanding,
)
from bot.core.state import Conversation, Profile, Reading
from bot.effects import BackOffice, apply_effects
from bot.flood import FloodGuard, Verdict
from bot.flows import default_flows
from bot.flows.awareness import BESIDE_ANSWER, SURE_FOLLOW_UP, offers_coercion_help
from bot.flows.base import FlowRegistry, Step, TurnContext
from bot.flows.safety import lines as safety_lines
from bot.i18n import UiCatalog
from bot.messages import Attributed, Inbound, Outbound, Turn
from bot.words import fold, fold_label, folded
from nlu import ParseResult
from nlu.lexicon import skip as is_skip
from nlu.lexicon import yes_no
from nlu.safeguard import CLEAR

log = logging.getLogger(__name__)

INTENT_THRESHOLD = 0.5
"""Below this, an intent does not interrupt a flow (emergency is exempt: the safety net decides)."""

EMERGENCY_DOUBT = 0.2
"""A classifier-only emergency from this up to SAFETY_NET_CONFIDENCE gets a safety question:
the safety layer (nlu.safeguard) is what acts on danger; a weak intent guess asks."""
SAFETY_NET_CONFIDENCE = 0.95
MAX_EXIT_TOKENS = 5
IN_RELAY_CONFIDENCE = 0.95
"""In a case, words go to the caseworker; a request is taken out of them (privacy, language)
only when the classifier is near certain ("my secret story" must still reach the case)."""
LANGUAGE_SWITCH_CONFIDENCE = 0.9
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Command:
    """A slash command or one of the words that act like one."""

    name: str
    argument: str = ""


class Engine(Generic[Tx]):
    """Depends on ports only (``bot.core.ports``); ``bot.app`` gives it the concrete store,
    back office, outbox, NLU and safety layer. ``Tx`` is the store's turn transaction, which the
    engine hands to the back office and the outbox without looking into it."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: TurnStore[Tx],
        cases: CaseQueue[Tx],
        referrals: Referrals[Tx],
        outbox: Outbox[Tx],
        nlu: Understanding,
        content: ContentLibrary,
        ui: UiCatalog,
        flows: FlowRegistry | None = None,
        staff: StaffAvailability | None = None,
        flood: FloodGuard | None = None,
        safety: SafetyDetector | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.back_office = BackOffice(cases=cases, referrals=referrals)
        self.outbox = outbox
        self.nlu = nlu
        self.content = content
        self.ui = ui
        self.flows = flows or FlowRegistry(default_flows())
        self.routing = self.flows.routing
        self.staff = staff
        self.flood = flood or FloodGuard()
        self.safety = safety
        self._exit_words = ui.words("words.exit") | folded(settings.safe_words)
        self._exit_fillers = ui.words("words.exit_fillers")
        self._sos_words = ui.words("words.sos") | {"sos"}
        # Opt-out: these always unsubscribe; the short ones ("stop", "الغاء") only a subscriber,
        # and not where a flow gives them a meaning of its own (screening, a caseworker chat).
        self._unsubscribe_words = ui.words("words.unsubscribe")
        self._stop_words = ui.words("words.unsubscribe_short")

    async def handle_turn(
        self, inbound: Inbound, *, address: str | None = None, language: str | None = None
    ) -> Turn:
        """Answer one inbound message.

        ``address`` (a chat id) is sealed for later replies; ``language`` is a language the
        user chose outside the chat (``sanad chat --lang``) and wins over detection.
        """
        text = self._clean(inbound.text)
        # The safety layer reads every message first, independent of intents and of state,
        # so that danger is answered even at the end of a burst that flood control would drop.
        safety = self.safety.assess(text) if text and self.safety is not None else CLEAR
        verdict = await self.flood.admit(inbound.user.key, urgent=safety.urgent is not None)
        if verdict is not Verdict.PROCESS:
            log.warning("flood: message dropped on channel %s", inbound.user.channel)
            notice = Outbound(text=self.ui.text(self.settings.default_language, "errors.flood"))
            return Turn(outbound=(notice,) if verdict is Verdict.DROP_WITH_NOTICE else ())
        parse = await self.nlu.parse(text) if text else None
        staff = await self.staff() if self.staff is not None else None
        async with self.store.turn(inbound.user) as tx:
            loaded = await tx.load(claim=inbound.message_id or None, address=address)
            if loaded is None:
                return Turn(duplicate=True)
            profile, conversation = loaded
            lang = language or self._reply_language(profile, parse, text)
            if lang != profile.language or (language and not profile.language_locked):
                tx.set_language(lang, locked=language is not None)
            button_id = self._resolve_button(inbound, text, conversation)
            if button_id is not None and inbound.button_id is None:
                safety = safety.only_rules()  # a typed button title is a choice, not a cry
            ctx = TurnContext(
                inbound=inbound, text=text, understanding=self._understand(parse, text),
                button_id=button_id, lang=lang, profile=profile, conversation=conversation,
                content=self.content, ui=self.ui, flows=self.flows, now=utcnow(), staff=staff,
                safety=safety,
            )
            step = self._safely_route(ctx)
            code = campaign_code(text, inbound.start_payload) if profile.is_new else None
            if code:
                step.events.append(Attributed(code))
            if step.language:
                tx.set_language(step.language, locked=True)
            effects = await apply_effects(tx, step.events, self.back_office)
            outbox_ids: tuple[int, ...] = ()
            if not effects.erased:
                last = step.messages[-1].buttons if step.messages else ()
                offered = [(b.id, b.title) for b in last]
                tx.save(Conversation(step.flow, step.state, step.data, offered))
                if step.messages:
                    outbox_ids = (await self.outbox.record_turn_replies(
                        tx, channel=inbound.user.channel,
                        messages=step.messages, idempotency_key=_reply_key(inbound),
                    ),)
        if effects.erased:
            await self.store.after_erasure()
        log.info(
            "turn channel=%s state=%s->%s intent=%s safety=%s events=%s",
            inbound.user.channel, conversation.state, step.state, ctx.understanding.intent,
            ",".join(sorted(safety.labels)) or "-", ",".join(e.name for e in step.events) or "-",
        )
        return Turn(outbound=tuple(step.messages), events=tuple(step.events),
                    outbox_ids=outbox_ids, erased_message_ids=effects.erased_message_ids)

    # --- understanding -------------------------------------------------------------------
    def _clean(self, raw: str) -> str:
        """Strip control characters and cap the length; nothing a user sends can crash a turn."""
        text = _CONTROL.sub(" ", raw or "").strip()
        return text[: self.settings.max_message_chars]

    @staticmethod
    def _understand(parse: ParseResult | None, text: str) -> Reading:
        if parse is None:
            return Reading()
        return Reading(
            intent=parse.intent.name, confidence=parse.intent.confidence,
            yes_no=yes_no(text), skip=is_skip(text),
        )

    def _reply_language(self, profile: Profile, parse: ParseResult | None, text: str) -> str:
        """Keep the user's language; adopt the detected one when it is clear and not chosen."""
        current = profile.language
        if parse is None or text.startswith("/"):
            return current or self.settings.default_language
        detected = parse.language
        supported = detected.code in SUPPORTED_LANGUAGES
        if current is None:
            return detected.code if supported else self.settings.default_language
        if (
            supported and detected.code != current and not profile.language_locked
            and detected.confidence >= LANGUAGE_SWITCH_CONFIDENCE
            and len(_LETTER_RUN.findall(text)) >= 2
        ):
            return detected.code
        return current

    @staticmethod
    def _resolve_button(inbound: Inbound, text: str, conversation: Conversation) -> str | None:
        """A tapped button, or a typed number / title of one of the last buttons shown."""
        if inbound.button_id:
            return inbound.button_id
        if not text or not conversation.offered:
            return None
        typed = fold(text)
        if typed.isdigit() and 1 <= int(typed) <= len(conversation.offered):
            return conversation.offered[int(typed) - 1][0]
        for button_id, title in conversation.offered:
            if typed and typed == fold_label(title):
                return button_id
        return None

    # --- routing -------------------------------------------------------------------------
    def _safely_route(self, ctx: TurnContext) -> Step:
        """Route; a bug in a flow must not leave the user without an answer (or a traceback)."""
        try:
            return self._route(ctx)
        except Exception:
            log.exception("flow failed in state %s; answering with the menu",
                          ctx.conversation.state)
            return ctx.start("menu", intro="errors.flow_failed")

    def _route(self, ctx: TurnContext) -> Step:
        command = self._command(ctx)
        intent = ctx.understanding.intent
        confident = ctx.understanding.confidence >= INTENT_THRESHOLD
        current = ctx.conversation.flow
        in_relay = self.routing.of(current).relays and ctx.profile.open_case_id is not None

        if command and command.name == "exit":
            return ctx.start("exit")
        if "emergency" in ctx.safety:
            return self._also_answer(ctx, self._emergency(ctx, in_relay))
        if ctx.safety.urgent == "self_harm":
            return self._also_answer(
                ctx, ctx.start("safety", entry="self_harm", escalate_case=in_relay))
        if self._is_emergency(ctx):
            return self._emergency(ctx, in_relay)
        if ctx.profile.contact_paused and not self._fresh_button(ctx):
            return self._paused(ctx, command)
        if ctx.inbound.media is not None and not ctx.button_id:
            return self._continue(ctx, ctx.start("menu", media=ctx.inbound.media.value))
        if ctx.button_id:
            owner = self.flows.owner_of(ctx.button_id)
            step = owner.handle(ctx) if owner is not None else None
            if ctx.inbound.button_id is not None and (step is None or not step.understood):
                # A tap on a button no flow takes any more (an old message, a removed
                # module, an earlier release): say so, with the menu.
                return ctx.start("menu", intro="menu.stale_button")
            if step is not None:
                return step
        if command:
            return self._run_command(ctx, command, in_relay=in_relay)
        if ctx.profile.is_new and ctx.text and not split_tag(ctx.text)[0]:
            return ctx.start("menu", welcome=True)  # a click-to-chat message that is only a tag
        if in_relay:
            sure = ctx.understanding.confidence >= IN_RELAY_CONFIDENCE
            return self._in_relay(ctx, intent if sure else None)
        protection = self._protect(ctx)
        if protection is not None:
            return protection
        interrupt = self.routing.interrupt(intent, current) if confident else None
        if interrupt is not None and intent in BESIDE_ANSWER:
            # "can I delete the messages and block him?" while reading about blackmail asks
            # the module, not for Sanad's erasure: the answer, with the request one tap away
            # in case that is what was meant.
            answer = self._module_answer(ctx, sure=True)
            if answer is not None and answer.messages:
                button = BESIDE_ANSWER[intent]
                if button is not None:
                    last = answer.messages[-1]
                    answer.messages[-1] = replace(last, buttons=(
                        *last.buttons, ctx.button(*button)))
                return answer
        if interrupt is not None:
            return self._offer_help(ctx, ctx.start(interrupt.flow, **interrupt.entry))
        if not ctx.text:
            return ctx.start("menu", empty=True)
        if ctx.conversation.flow in self.flows:
            step = self.flows.get(ctx.conversation.flow).handle(ctx)
        else:
            step = ctx.start("menu")
        return self._offer_help(ctx, step)

    def _emergency(self, ctx: TurnContext, in_relay: bool) -> Step:
        step = ctx.start("emergency", escalate_case=in_relay)
        if "woman" in ctx.safety.ruled or "sexual_exploitation" in ctx.safety:
            women = safety_lines(ctx, "women", besides="emergency")
            if women and step.messages:
                first = step.messages[0]
                step.messages[0] = Outbound(
                    text=f"{first.text}\n\n{ctx.t('safety.women')}\n{women}",
                    buttons=first.buttons)
        return step

    @staticmethod
    def _fresh_button(ctx: TurnContext) -> bool:
        """A button of the last message we sent. A quick exit or an erasure leaves no buttons
        behind, so such a button was shown after it: a tap on it is the user acting now."""
        button = ctx.button_id
        return button is not None and any(button == shown for shown, _ in ctx.conversation.offered)

    def _paused(self, ctx: TurnContext, command: Command | None) -> Step:
        """Contact is paused (quick exit, erasure): danger was answered before this; deleting
        data still works; everything else first gets the neutral "OK to continue here?"."""
        wants_delete = (command is not None and command.name == "delete") or (
            ctx.understanding.intent == "delete_my_data"
            and ctx.understanding.confidence >= IN_RELAY_CONFIDENCE)
        if wants_delete:
            return ctx.start("privacy", entry="delete")
        if command is not None and command.name in ("sos", "help_now"):
            return ctx.start("emergency")
        return self.flows.get("contact").handle(ctx)

    def _in_relay(self, ctx: TurnContext, intent: str | None) -> Step:
        """Waiting for or talking to a person: words go to the case, except the requests that
        must work everywhere (privacy, language) and what the safety layer must flag."""
        handoff = self.flows.get(ctx.conversation.flow)  # the flow that relays
        if intent == "delete_my_data":
            return handoff.confirm_delete(ctx)  # type: ignore[attr-defined]
        if intent == "privacy_info":
            return self._continue(ctx, ctx.start("privacy", entry="mydata"))
        if intent == "change_language":
            return ctx.start("language")
        for label in ("child_at_risk", "minor"):
            if label in ctx.safety and not (label == "minor"
                                            and ctx.profile.age_band == "under_18"):
                return ctx.start("safety", entry=label, escalate_case=True)
        return handoff.handle(ctx)

    def _protect(self, ctx: TurnContext) -> Step | None:
        """Child protection and the safety question, before the flows, except where a flow
        waits for an answer (an age, a governorate, yes/no): there the flow reads it first and
        a worrying message it cannot read gets the safety question (``_offer_help``)."""
        if self.routing.of(ctx.conversation.flow).awaits_answer or not ctx.text:
            return None
        safety = ctx.safety
        if "child_at_risk" in safety:
            return self._also_answer(ctx, ctx.start("safety", entry="child_at_risk"))
        if "minor" in safety and ctx.profile.age_band != "under_18":
            return self._also_answer(ctx, ctx.start("safety", entry="minor"))
        weak_emergency = (ctx.understanding.intent == "emergency" and not safety.figurative
                          and ctx.understanding.confidence >= EMERGENCY_DOUBT)
        if not (safety.ask or weak_emergency):
            return None
        check = ctx.start("safety", entry="check")
        # Only a doubt: the module's answer first, the safety question last, so that a typed
        # "no" to it still reaches the emergency answer.
        answer = self._module_answer(ctx)
        if answer is not None:
            check.messages[:0] = answer.messages
            check.events[:0] = answer.events
        return check

    def _module_answer(self, ctx: TurnContext, *, sure: bool = False) -> Step | None:
        """The answer of the module being read when the message is one of its questions
        (``sure``: matched well enough to stand beside an alarm or win over an erasure
        word); else None."""
        module = ctx.data.get("module") if ctx.conversation.flow == "awareness" else None
        if not isinstance(module, str) or not ctx.text:
            return None
        asked = ctx.content.follow_up(module, ctx.lang, ctx.text)
        if asked is None or (sure and asked.score < SURE_FOLLOW_UP):
            return None
        answer = self.flows.get("awareness").handle(ctx)
        return answer if answer.data.get("question") == asked.question.id else None

    def _also_answer(self, ctx: TurnContext, alarm: Step) -> Step:
        """Danger is answered first and alone in its state; a question the module being read
        answers is answered after it (asking about blackmail while reading about it, a
        child's work while reading about child labour), so the person is helped both ways."""
        answer = self._module_answer(ctx, sure=True)
        if answer is not None:
            alarm.messages.extend(answer.messages)
            alarm.events.extend(answer.events)
        return alarm

    def _offer_help(self, ctx: TurnContext, step: Step) -> Step:
        """Never answer a worrying message with only the menu: ask when the flow did not
        understand; add the offer of screening and a person to imminent travel or signs of
        coercion."""
        safety = ctx.safety
        if not safety.worrying or self.routing.of(step.flow).answers_worry:
            return step
        if not step.understood and safety.labels - {"imminent_travel", *safety.indicators}:
            return ctx.start("safety", entry="check")
        if "imminent_travel" in safety:
            if not step.understood or step.flow != "awareness":
                step = ctx.start("awareness", intent="learn_irregular_migration")
            return self._append_offer(ctx, step, "travel")
        if safety.indicators:
            if not step.understood:
                return ctx.start("safety", entry="coercion")
            if not offers_coercion_help(step, safety.indicators):
                return step
            return self._append_offer(ctx, step, "coercion")
        if not step.understood:
            return ctx.start("safety", entry="check")
        return step

    @staticmethod
    def _append_offer(ctx: TurnContext, step: Step, entry: str) -> Step:
        """The offer goes first: the flow's own buttons stay last, where a typed number or
        title ("next") still finds them."""
        offer = ctx.start("safety", entry=entry)
        step.messages.insert(0, offer.messages[0])
        step.data = {**step.data, "indicators": offer.data.get("indicators", [])}
        return step

    def _stop_word(self, ctx: TurnContext, keeps_place: bool) -> Step:
        """A subscriber's bare "stop": opt-out, except inside screening or a caseworker chat,
        where the flow's own meaning wins and a one-tap "stop tips" is offered beside it."""
        opt_out = self.routing.command("unsubscribe")
        if not keeps_place and opt_out is not None:
            return ctx.start(opt_out.flow, **opt_out.entry)
        step = self.flows.get(ctx.conversation.flow).handle(ctx)
        offer = ctx.say("subscribe.stop_offer", ctx.button("sub:stop", "subscribe.stop_button"))
        last_has_buttons = bool(step.messages and step.messages[-1].buttons)
        step.messages.insert(len(step.messages) - 1 if last_has_buttons else len(step.messages),
                             offer)
        return step

    @staticmethod
    def _is_emergency(ctx: TurnContext) -> bool:
        """The classifier's own emergency (the safety layer's is handled before) acts only
        when it is near certain; a weaker guess is asked about (``_protect``), and never in a
        figurative context ("this exam is killing me") or for a typed button title."""
        return (ctx.understanding.intent == "emergency" and not ctx.safety.figurative
                and ctx.button_id is None
                and ctx.understanding.confidence >= SAFETY_NET_CONFIDENCE)

    def _continue(self, ctx: TurnContext, step: Step) -> Step:
        """Answer without leaving the current state (media, hints): keep flow, state and data."""
        conversation = ctx.conversation
        return Step(
            messages=step.messages, flow=conversation.flow, state=conversation.state,
            data=dict(conversation.data), events=step.events,
        )

    def _command(self, ctx: TurnContext) -> Command | None:
        text = ctx.text
        typed = fold(text)
        if ctx.button_id == "exit" or self._is_exit(typed):
            return Command("exit")
        if typed in self._sos_words:
            return Command("sos")
        if not text.startswith("/"):
            if typed in self._unsubscribe_words:
                return Command("unsubscribe")
            if typed in self._stop_words and ctx.profile.subscribed:
                return Command("stop_word")
            return None
        head, _, argument = text[1:].partition(" ")
        name = fold(head.split("@", 1)[0]).replace(" ", "_")  # "/Help_Now." is /help_now
        return Command(self.routing.command_name(name), argument.strip())

    def _is_exit(self, typed: str) -> bool:
        """An exit word alone, or with only fillers around it ("exit please", "خروج بسرعة",
        "je veux sortir"): never a longer sentence that merely contains one. ``typed`` is
        the message folded (:func:`bot.words.fold`)."""
        if typed in self._exit_words:
            return True
        tokens = typed.split()
        if not tokens or len(tokens) > MAX_EXIT_TOKENS:
            return False
        kept = " ".join(t for t in tokens if t not in self._exit_fillers)
        return kept in self._exit_words

    def _run_command(self, ctx: TurnContext, command: Command, *, in_relay: bool) -> Step:
        """A command starts the flow that declares it; where the current flow keeps the
        user's place, a command with an aside form is answered without leaving."""
        keeps_place = in_relay or self.routing.of(ctx.conversation.flow).keeps_place
        if command.name == "stop_word":
            return self._stop_word(ctx, keeps_place)
        route = self.routing.command(command.name)
        if route is None:
            return ctx.start("menu", unknown_command=True)
        if keeps_place and route.aside is not None:
            return self._continue(ctx, ctx.start(route.flow, **route.aside))
        return ctx.start(route.flow, **route.entry)


def _reply_key(inbound: Inbound) -> str:
    if inbound.message_id:
        return f"turn:{inbound.user.channel}:{inbound.message_id}"
    return f"turn:{uuid.uuid4().hex}"


def apology(ui: UiCatalog, content: ContentLibrary, lang: str) -> Outbound:
    """What a channel sends when the database is down: honest, with the emergency numbers.

    Built from memory only (content is loaded at start-up), so it works without a database.
    """
    numbers = [
        f"• {s.name.get(lang) or s.name.get('en', '')}: {s.phone}"
        for s in content.services(category="emergency") if s.phone
    ]
    return Outbound(text="\n".join([ui.text(lang, "errors.unavailable"), *numbers]))
