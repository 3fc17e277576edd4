"""The content library: loads, cross-checks and serves Sanad's content.

``ContentLibrary.load()`` validates everything and refuses to start with broken content
(raising ``ContentError`` with every problem). After that the library is read-only and safe
to share between all conversations. The lead's ``ui.yml`` files are not read here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from bot.languages import LANGUAGES as DECLARED_LANGUAGES

from .followups import FollowUpIndex, FollowUpMatch
from .gate import Served, serve
from .limits import LANGUAGES, LEARNING_INTENTS, REQUIRED_LANGUAGES, SERVICE_CATEGORIES
from .models import ContentError, Module, Problem, ProblemLog, ScreeningSpec, Service
from .modules import load_module, module_files
from .partners import check_partners
from .review import Approvals, Item, current_items
from .screening import load_screening
from .services import load_services
from .subscribe import SubscribeSpec, load_subscribe
from .topics import pick

#: Environment variable that points the bot at another content directory.
CONTENT_DIR_ENV = "SANAD_CONTENT_DIR"


def _source_root() -> Path:
    """``<repo>/content``, found from this file so that both a source checkout and an
    editable install (whose package files stay in the checkout) find it."""
    return Path(__file__).resolve().parents[2] / "content"


def default_content_root() -> Path:
    """The content directory: ``$SANAD_CONTENT_DIR`` if set, else the repository's."""
    override = os.environ.get(CONTENT_DIR_ENV)
    return Path(override).expanduser() if override else _source_root()


DEFAULT_CONTENT_ROOT: Path = default_content_root()


@dataclass(frozen=True, slots=True)
class _Parsed:
    """Everything read from one content directory, before it is known to be valid."""

    modules: Mapping[str, tuple[Module, ...]]
    services: tuple[Service, ...]
    screening: ScreeningSpec | None
    subscribe: SubscribeSpec


def parse_content(root: Path | None = None) -> tuple[_Parsed, list[Problem]]:
    """Read and check a content directory; never raises for bad content."""
    root = Path(root) if root is not None else default_content_root()
    log = ProblemLog()
    if not root.is_dir():
        log.add(root.as_posix(), "file", "content directory not found")
        return _Parsed(MappingProxyType({}), (), None, SubscribeSpec((), (), ())), log.problems

    modules: dict[str, tuple[Module, ...]] = {}
    for lang in LANGUAGES:
        loaded = [load_module(path, root, lang, log) for path in module_files(root, lang)]
        modules[lang] = tuple(sorted((m for m in loaded if m is not None),
                                     key=lambda m: (m.order, m.id)))
    services = load_services(root, log)
    check_partners(root, services, log)
    screening = load_screening(root, log, frozenset(s.id for s in services),
                               frozenset(s.id for s in services if s.verified))
    _cross_check_modules(root, modules, log)
    modules = _with_fallback_modules(modules)
    subscribe = load_subscribe(
        root, log, frozenset(m.id for lang in LANGUAGES for m in modules[lang]),
        frozenset(o.id for o in screening.age_options) if screening else frozenset())
    return _Parsed(MappingProxyType(modules), services, screening, subscribe), log.problems


def _with_fallback_modules(modules: Mapping[str, tuple[Module, ...]]
                           ) -> dict[str, tuple[Module, ...]]:
    """A progressive language (``complete=False``) shows each module it has not translated
    yet in its fallback language, so it can ship module by module."""
    by_lang = {lang: {m.id: m for m in modules.get(lang, ())} for lang in LANGUAGES}
    filled: dict[str, tuple[Module, ...]] = {}
    for lang in LANGUAGES:
        if lang in REQUIRED_LANGUAGES:
            filled[lang] = tuple(modules.get(lang, ()))
            continue
        chosen = dict(by_lang[lang])
        for code in DECLARED_LANGUAGES.chain(lang):
            for module_id, module in by_lang.get(code, {}).items():
                chosen.setdefault(module_id, module)
        filled[lang] = tuple(sorted(chosen.values(), key=lambda m: (m.order, m.id)))
    return filled


def _cross_check_modules(root: Path, modules: Mapping[str, tuple[Module, ...]],
                         log: ProblemLog) -> None:
    """Checks across files: translations, ordering, ``next`` references, intents."""

    def shown(lang: str, module_id: str) -> str:
        return f"{root.name}/{lang}/modules/{module_id}.yml"

    by_lang = {lang: {m.id: m for m in modules[lang]} for lang in LANGUAGES}
    all_ids = sorted(set().union(*(set(ids) for ids in by_lang.values())))
    if not all_ids:
        log.add(f"{root.name}/{LANGUAGES[0]}/modules", "file", "no awareness modules found")
    for module_id in all_ids:
        present = [lang for lang in LANGUAGES if module_id in by_lang[lang]]
        for lang in REQUIRED_LANGUAGES:
            if lang not in present:
                log.add(shown(lang, module_id), "file",
                        f"missing translation of module {module_id!r} "
                        f"(present in {', '.join(present)})")
        reference = by_lang[present[0]][module_id]
        for lang in present[1:]:
            module = by_lang[lang][module_id]
            if module.order != reference.order:
                log.add(shown(lang, module_id), "order",
                        f"{module.order} differs from {reference.order} in {present[0]}")
            if module.intents != reference.intents:
                log.add(shown(lang, module_id), "intents",
                        f"{list(module.intents)} differs from {list(reference.intents)} "
                        f"in {present[0]}")
            if module.subtopic_of != reference.subtopic_of:
                log.add(shown(lang, module_id), "subtopic_of",
                        f"{list(module.subtopic_of)} differs from "
                        f"{list(reference.subtopic_of)} in {present[0]}")
            if module.next != reference.next:
                log.add(shown(lang, module_id), "next",
                        f"{list(module.next)} differs from {list(reference.next)} "
                        f"in {present[0]}")
            ids = [q.id for q in module.questions]
            reference_ids = [q.id for q in reference.questions]
            if ids != reference_ids:
                log.add(shown(lang, module_id), "questions",
                        f"question ids {ids} differ from {reference_ids} in {present[0]} "
                        "(every language answers the same questions)")

    # A progressive language is checked as it is served: with its fallback's modules.
    modules = _with_fallback_modules(modules)
    by_lang = {lang: {m.id: m for m in modules[lang]} for lang in LANGUAGES}
    for lang in LANGUAGES:
        orders: dict[int, str] = {}
        for module in modules[lang]:
            if module.order in orders:
                log.add(shown(lang, module.id), "order",
                        f"{module.order} is also the order of {orders[module.order]!r}")
            orders.setdefault(module.order, module.id)
            for index, next_id in enumerate(module.next):
                if next_id not in by_lang[lang]:
                    log.add(shown(lang, module.id), f"next[{index}]",
                            f"unknown module {next_id!r}")
        if not modules[lang]:
            continue
        for intent in LEARNING_INTENTS:
            primary = [m.id for m in modules[lang] if m.intents[:1] == (intent,)]
            if len(primary) != 1:
                where = ", ".join(primary) if primary else "none"
                log.add(f"{root.name}/{lang}/modules", "intents",
                        f"{intent!r} must be the first intent of exactly one module "
                        f"(found: {where})")


class ContentLibrary:
    """Validated, read-only content. Build it with ``ContentLibrary.load()``."""

    __slots__ = ("_follow_ups", "_items", "_modules", "_root", "_screening", "_served",
                 "_services", "_show_drafts", "_subscribe")

    def __init__(self, parsed: _Parsed, *, show_drafts: bool,
                 items: tuple[Item, ...] = (), root: Path | None = None) -> None:
        if parsed.screening is None:  # only reachable with problems, which load() raises
            raise ValueError("cannot build a library without a valid screening")
        self._modules = parsed.modules
        self._services = parsed.services
        self._screening = parsed.screening
        self._show_drafts = show_drafts
        self._subscribe = parsed.subscribe
        self._follow_ups = MappingProxyType(
            {lang: FollowUpIndex(parsed.modules.get(lang, ())) for lang in LANGUAGES})
        self._items = items
        self._root = root if root is not None else default_content_root()
        self._served: Served | None = None
        if not show_drafts:
            self.apply_approvals(Approvals())

    @classmethod
    def load(cls, root: Path | None = None, *, show_drafts: bool = True) -> ContentLibrary:
        """Load and validate ``root`` (default: ``$SANAD_CONTENT_DIR`` or the repository's
        ``content/``). Raises ``ContentError`` listing every problem.

        ``show_drafts=False`` (production) serves only what a reviewer approved in the
        console (``bot.content.gate``): nothing until ``apply_approvals`` is called.
        """
        root = Path(root) if root is not None else default_content_root()
        parsed, problems = parse_content(root)
        if problems:
            raise ContentError(problems)
        items = tuple(current_items(root)) if not show_drafts else ()
        return cls(parsed, show_drafts=show_drafts, items=items, root=root)

    # --- review (docs/content-review.md) -------------------------------------------------
    def apply_approvals(self, approvals: Approvals) -> None:
        """Recompute what production serves; a no-op when drafts are shown. One reference
        is swapped, so conversations in flight see either the old or the new view."""
        if not self._show_drafts:
            self._served = serve(self._modules, self._screening, self._services,
                                 list(self._items), approvals)

    def review_items(self) -> list[Item]:
        """The reviewable items as the content directory holds them now (read afresh: a
        reviewer sees the file that would be approved)."""
        return current_items(self._root)

    @property
    def gated(self) -> bool:
        """True in production: only approved content is served."""
        return self._served is not None

    @property
    def served(self) -> Served | None:
        """What production serves and hides (None when drafts are shown)."""
        return self._served

    @property
    def services_approved(self) -> bool:
        """Whether a services directory approved in every language is served (without one,
        production lists only the verified emergency numbers)."""
        return self._served is None or not any(
            h.startswith("services directory") for h in self._served.hidden)

    @property
    def screening_offered(self) -> bool:
        """Whether the questionnaire may be offered: always with drafts shown; in production
        only if a version approved in every language exists."""
        return self._served is None or self._served.screening is not None

    # --- awareness modules -------------------------------------------------------------
    def modules(self, lang: str) -> tuple[Module, ...]:
        """The topic menu of one language, by ``order``; () for an unsupported language.
        In production: approved versions only (``bot.content.gate``)."""
        if self._served is not None:
            return self._served.modules.get(lang, ())
        return self._modules.get(lang, ())

    def module(self, module_id: str, lang: str) -> Module | None:
        """One module in one language, or None (unknown, or a hidden draft)."""
        return next((m for m in self.modules(lang) if m.id == module_id), None)

    def module_for_intent(self, intent: str, lang: str, text: str | None = None) -> Module | None:
        """The module an NLU intent opens: the one listing it first (its primary intent),
        else the first module in menu order that lists it at all. With the message's
        ``text``, a module that is a ``subtopic_of`` the intent and whose ``keywords`` the
        message names opens instead ("organ trafficking": ``bot.content.topics``)."""
        visible = self.modules(lang)
        primary = next((m for m in visible if m.intents[:1] == (intent,)), None)
        general = primary or next((m for m in visible if intent in m.intents), None)
        subtopics = [m for m in visible if intent in m.subtopic_of]
        return pick(subtopics, general, text or "")

    def follow_up(self, module_id: str, lang: str, text: str) -> FollowUpMatch | None:
        """The follow-up question of a visible module that ``text`` asks, or None."""
        index = self._follow_ups.get(lang)
        if index is None or self.module(module_id, lang) is None:
            return None
        return index.match(module_id, text)

    # --- services ----------------------------------------------------------------------
    def services(self, *, category: str | None = None) -> tuple[Service, ...]:
        """Verified services in file order, optionally of one category.

        Unverified services are never returned: they must not reach users as fact.
        """
        if category is not None and category not in SERVICE_CATEGORIES:
            raise ValueError(f"unknown service category {category!r}")
        pool = self._served.services if self._served is not None else self._services
        return tuple(
            s for s in pool
            if s.verified and (category is None or category in s.categories)
        )

    def configured_service(self, service_id: str) -> Service | None:
        """A verified service as ``services.yml`` has it, approved by a reviewer or not: for
        start-up consistency checks of configuration that names services (the referral
        partner directory), never for what users are shown."""
        return next((s for s in self._services if s.verified and s.id == service_id), None)

    def service(self, service_id: str) -> Service | None:
        """A verified service by id, or None (unknown or unverified)."""
        return next((s for s in self.services() if s.id == service_id), None)

    # --- screening ---------------------------------------------------------------------
    @property
    def screening(self) -> ScreeningSpec:
        """The risk questionnaire: in production its approved version when there is one
        (check ``screening_offered`` before offering it)."""
        if self._served is not None and self._served.screening is not None:
            return self._served.screening
        return self._screening

    # --- opt-in choices ------------------------------------------------------------------
    @property
    def subscribe(self) -> SubscribeSpec:
        """Topics, governorates and age bands a user may choose when opting in to tips."""
        return self._subscribe
