"""The channel-agnostic core: ``handle_turn(Inbound) -> Turn``.

One turn: de-duplicate, load the user and their conversation, understand the text (language,
intent, yes/no), apply the global interrupts that must work from any state (emergency, quick
exit, delete my data, menu, language, a human), otherwise let the active flow answer, then
persist the new state, the events and their effects in the same transaction.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.attribution import campaign_code, split_tag
from bot.config import SUPPORTED_LANGUAGES, Settings
from bot.content import ContentLibrary
from bot.effects import apply_effects
from bot.flood import FloodGuard, Verdict
from bot.flows import default_flows
from bot.flows.base import FlowRegistry, StaffAvailability, Step, TurnContext, Understanding
from bot.i18n import UiCatalog
from bot.messages import Attributed, Inbound, Outbound, Turn
from bot.outbox import record_turn_replies
from bot.store.repository import Conversation, Profile, Store, utcnow
from nlu import NLUBackend, ParseResult
from nlu.lexicon import skip as is_skip
from nlu.lexicon import yes_no

log = logging.getLogger(__name__)

INTENT_THRESHOLD = 0.5
"""Below this, an intent does not interrupt a flow (emergency is exempt: the safety net decides)."""

EMERGENCY_THRESHOLD = 0.4
"""A classifier-only emergency below this is not acted on (the safety net forces ≥ 0.95)."""
SAFETY_NET_CONFIDENCE = 0.95
LANGUAGE_SWITCH_CONFIDENCE = 0.9
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Command:
    """A slash command or one of the words that act like one."""

    name: str
    argument: str = ""


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        nlu: NLUBackend,
        content: ContentLibrary,
        ui: UiCatalog,
        flows: FlowRegistry | None = None,
        staff: Callable[[], Awaitable[StaffAvailability]] | None = None,
        flood: FloodGuard | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.nlu = nlu
        self.content = content
        self.ui = ui
        self.flows = flows or FlowRegistry(default_flows())
        self.staff = staff
        self.flood = flood or FloodGuard()
        self._exit_words = {
            _fold(w) for w in (*ui_words(ui, "words.exit"), *settings.safe_words)
        }
        self._sos_words = {_fold(w) for w in ("sos", *ui_words(ui, "words.sos"))}
        # Opt-out: these always unsubscribe; the short ones ("stop", "الغاء") only a subscriber,
        # and not where a flow gives them a meaning of its own (screening, a caseworker chat).
        self._unsubscribe_words = {_fold(w) for w in ui_words(ui, "words.unsubscribe")}
        self._stop_words = {_fold(w) for w in ui_words(ui, "words.unsubscribe_short")}

    async def handle_turn(
        self, inbound: Inbound, *, address: str | None = None, language: str | None = None
    ) -> Turn:
        """Answer one inbound message.

        ``address`` (a chat id) is sealed for later replies; ``language`` is a language the
        user chose outside the chat (``sanad chat --lang``) and wins over detection.
        """
        verdict = await self.flood.admit(inbound.user.key)
        if verdict is not Verdict.PROCESS:
            log.warning("flood: message dropped on channel %s", inbound.user.channel)
            notice = Outbound(text=self.ui.text(self.settings.default_language, "errors.flood"))
            return Turn(outbound=(notice,) if verdict is Verdict.DROP_WITH_NOTICE else ())
        text = self._clean(inbound.text)
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
            ctx = TurnContext(
                inbound=inbound, text=text, understanding=self._understand(parse, text),
                button_id=self._resolve_button(inbound, text, conversation), lang=lang,
                profile=profile, conversation=conversation, content=self.content, ui=self.ui,
                flows=self.flows, now=utcnow(), staff=staff,
            )
            step = self._safely_route(ctx)
            code = campaign_code(text, inbound.start_payload) if profile.is_new else None
            if code:
                step.events.append(Attributed(code))
            if step.language:
                tx.set_language(step.language, locked=True)
            effects = await apply_effects(tx, step.events)
            outbox_ids: tuple[int, ...] = ()
            if not effects.erased:
                last = step.messages[-1].buttons if step.messages else ()
                offered = [(b.id, b.title) for b in last]
                tx.save(Conversation(step.flow, step.state, step.data, offered))
                if step.messages:
                    outbox_ids = (await record_turn_replies(
                        tx.connection, tx.cipher, user_id=profile.user_id,
                        channel=inbound.user.channel,
                        messages=step.messages, idempotency_key=_reply_key(inbound),
                    ),)
        log.info(
            "turn channel=%s state=%s->%s intent=%s events=%s",
            inbound.user.channel, conversation.state, step.state,
            ctx.understanding.intent, ",".join(e.name for e in step.events) or "-",
        )
        return Turn(outbound=tuple(step.messages), events=tuple(step.events),
                    outbox_ids=outbox_ids, erased_message_ids=effects.erased_message_ids)

    # --- understanding -------------------------------------------------------------------
    def _clean(self, raw: str) -> str:
        """Strip control characters and cap the length; nothing a user sends can crash a turn."""
        text = _CONTROL.sub(" ", raw or "").strip()
        return text[: self.settings.max_message_chars]

    @staticmethod
    def _understand(parse: ParseResult | None, text: str) -> Understanding:
        if parse is None:
            return Understanding()
        return Understanding(
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
        typed = _fold(text)
        digits = typed.translate(_ARABIC_DIGITS).rstrip(".)-")
        if digits.isdigit() and 1 <= int(digits) <= len(conversation.offered):
            return conversation.offered[int(digits) - 1][0]
        for button_id, title in conversation.offered:
            if typed == _fold(title):
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
        in_relay = ctx.conversation.flow == "handoff" and ctx.profile.open_case_id is not None

        if command and command.name == "exit":
            return ctx.start("exit")
        if intent == "emergency" and self._is_emergency(ctx):
            return ctx.start("emergency", escalate_case=in_relay)
        if ctx.inbound.media is not None and not ctx.button_id:
            return self._continue(ctx, ctx.start("menu", media=ctx.inbound.media.value))
        if ctx.button_id:
            owner = self.flows.owner_of(ctx.button_id)
            if owner is not None:
                return owner.handle(ctx)
        if command:
            return self._run_command(ctx, command, in_relay=in_relay)
        if ctx.profile.is_new and ctx.text and not split_tag(ctx.text)[0]:
            return ctx.start("menu", welcome=True)  # a click-to-chat message that is only a tag
        if in_relay:
            return self.flows.get("handoff").handle(ctx)
        if confident and intent in _INTERRUPTS and ctx.conversation.flow not in _INTERRUPTS[intent]:
            flow, kwargs = _INTERRUPT_TARGETS[intent]
            return ctx.start(flow, **kwargs)
        if not ctx.text:
            return ctx.start("menu", empty=True)
        if ctx.conversation.flow in self.flows:
            return self.flows.get(ctx.conversation.flow).handle(ctx)
        return ctx.start("menu")

    def _stop_word(self, ctx: TurnContext, keeps_place: bool) -> Step:
        """A subscriber's bare "stop": opt-out, except inside screening or a caseworker chat,
        where the flow's own meaning wins and a one-tap "stop tips" is offered beside it."""
        if not keeps_place:
            return ctx.start("subscribe", entry="stop")
        step = self.flows.get(ctx.conversation.flow).handle(ctx)
        offer = ctx.say("subscribe.stop_offer", ctx.button("sub:stop", "subscribe.stop_button"))
        last_has_buttons = bool(step.messages and step.messages[-1].buttons)
        step.messages.insert(len(step.messages) - 1 if last_has_buttons else len(step.messages),
                             offer)
        return step

    @staticmethod
    def _is_emergency(ctx: TurnContext) -> bool:
        """The safety net always wins; a weak classifier guess never overrides a button the
        user picked by typing its title (the quiz answer "خرافة" is not a cry for help)."""
        confidence = ctx.understanding.confidence
        if confidence >= SAFETY_NET_CONFIDENCE:
            return True
        return ctx.button_id is None and confidence >= EMERGENCY_THRESHOLD

    def _continue(self, ctx: TurnContext, step: Step) -> Step:
        """Answer without leaving the current state (media, hints): keep flow, state and data."""
        conversation = ctx.conversation
        return Step(
            messages=step.messages, flow=conversation.flow, state=conversation.state,
            data=dict(conversation.data), events=step.events,
        )

    def _command(self, ctx: TurnContext) -> Command | None:
        text = ctx.text
        if ctx.button_id == "exit" or _fold(text) in self._exit_words:
            return Command("exit")
        if _fold(text) in self._sos_words:
            return Command("sos")
        if not text.startswith("/"):
            if _fold(text) in self._unsubscribe_words:
                return Command("unsubscribe")
            if _fold(text) in self._stop_words and ctx.profile.subscribed:
                return Command("stop_word")
            return None
        head, _, argument = text[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        return Command(_COMMAND_ALIASES.get(name, name), argument.strip())

    def _run_command(self, ctx: TurnContext, command: Command, *, in_relay: bool) -> Step:
        if command.name == "start":
            return ctx.start("menu", welcome=True)
        keeps_place = in_relay or ctx.conversation.flow == "screening"
        if command.name == "unsubscribe" and keeps_place:
            return self._continue(ctx, ctx.start("subscribe", entry="stop_here"))
        if command.name == "stop_word":
            return self._stop_word(ctx, keeps_place)
        target = _COMMAND_TARGETS.get(command.name)
        if target is None:
            return ctx.start("menu", unknown_command=True)
        flow, kwargs = target
        return ctx.start(flow, **kwargs)


# Intents that interrupt any flow except the listed ones (where they mean something local).
_INTERRUPTS: dict[str, tuple[str, ...]] = {
    "delete_my_data": ("privacy",),
    "talk_to_human": ("handoff",),
    "change_language": ("language",),
    "menu": (),
    "privacy_info": ("privacy",),
    "find_services": ("services",),
    "unsubscribe": ("subscribe", "screening", "handoff"),
}
_INTERRUPT_TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "delete_my_data": ("privacy", {"entry": "delete"}),
    "talk_to_human": ("handoff", {"reason": "user_request"}),
    "change_language": ("language", {}),
    "menu": ("menu", {}),
    "privacy_info": ("privacy", {"entry": "info"}),
    "find_services": ("services", {}),
    "unsubscribe": ("subscribe", {"entry": "stop"}),
}
_COMMAND_ALIASES = {"help": "menu", "lang": "language", "quit": "exit", "stop": "unsubscribe"}
_COMMAND_TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "menu": ("menu", {}),
    "language": ("language", {}),
    "delete": ("privacy", {"entry": "delete"}),
    "privacy": ("privacy", {"entry": "info"}),
    "mydata": ("privacy", {"entry": "mydata"}),
    "human": ("handoff", {"reason": "user_request"}),
    "help_now": ("emergency", {}),
    "sos": ("emergency", {}),
    "services": ("services", {}),
    "check": ("screening", {}),
    "learn": ("awareness", {}),
    "subscribe": ("subscribe", {}),
    "unsubscribe": ("subscribe", {"entry": "stop"}),
}

_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def _reply_key(inbound: Inbound) -> str:
    if inbound.message_id:
        return f"turn:{inbound.user.channel}:{inbound.message_id}"
    return f"turn:{uuid.uuid4().hex}"


def _fold(text: str) -> str:
    """Case-, accent-, emoji- and punctuation-insensitive form, so that typing "next" or
    "التالي" picks the button titled "Next ▶" or "التالي ◀"."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    kept = "".join(
        " " if unicodedata.category(c)[0] in "PSZ" else c
        for c in decomposed if not unicodedata.combining(c) and c not in _INVISIBLE
    )
    return " ".join(kept.split())


_INVISIBLE = {"\u200f", "\u200e", "\u200d", "\ufe0f", "\u0640"}


def ui_words(ui: UiCatalog, key: str) -> Sequence[str]:
    """A comma-separated word list from the interface texts, in every language."""
    words: list[str] = []
    for table in ui.texts.values():
        words.extend(w.strip() for w in table.get(key, "").split(",") if w.strip())
    return words


def apology(ui: UiCatalog, content: ContentLibrary, lang: str) -> Outbound:
    """What a channel sends when the database is down: honest, with the emergency numbers.

    Built from memory only (content is loaded at start-up), so it works without a database.
    """
    numbers = [
        f"• {s.name.get(lang) or s.name.get('en', '')}: {s.phone}"
        for s in content.services(category="emergency") if s.phone
    ]
    return Outbound(text="\n".join([ui.text(lang, "errors.unavailable"), *numbers]))
