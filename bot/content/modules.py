"""Parsing and per-file validation of awareness modules (``content/<lang>/modules/*.yml``).

Checks that need more than one file (translations present in every language, ``next``
references, intent mapping) live in ``loader.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._fields import Fields, display_path, read_yaml, utf16_length
from .limits import (
    DIGIT_RE,
    FOLLOW_UP_ANSWER_MAX,
    FOLLOW_UP_CALLBACK_PREFIX,
    FOLLOW_UP_EXAMPLE_MAX,
    FOLLOW_UP_EXAMPLES_MAX,
    FOLLOW_UP_EXAMPLES_MIN,
    FOLLOW_UP_ID_RE,
    FOLLOW_UP_QUESTIONS_MAX,
    KNOWN_INTENTS,
    MODULE_CALLBACK_PREFIX,
    MODULE_ID_RE,
    MODULE_MESSAGE_MAX,
    MODULE_MESSAGES_MAX,
    MODULE_MESSAGES_MIN,
    MODULE_TITLE_MAX,
    QUIZ_ANSWERS,
    QUIZ_FEEDBACK_MAX,
    QUIZ_ITEMS_MAX,
    QUIZ_ITEMS_MIN,
    QUIZ_STATEMENT_MAX,
    TELEGRAM_CALLBACK_DATA_MAX_BYTES,
    TELEGRAM_MESSAGE_MAX,
    WHATSAPP_LIST_ROW_DESCRIPTION_MAX,
    WHATSAPP_LIST_ROW_TITLE_MAX,
    WHATSAPP_REPLY_BUTTON_MAX,
)
from .models import FollowUp, Module, ModuleMessage, ProblemLog, QuizItem, Source
from .sources import parse_sources

MODULE_FIELDS = (
    "id", "order", "title", "button", "summary", "intents", "keywords", "reviewed",
    "reviewer", "sources", "messages", "quiz", "next", "questions", "subtopic_of",
)

#: The "sources" button shows every source of a module in one message, with a heading.
SOURCES_LIST_MAX = TELEGRAM_MESSAGE_MAX - 100

#: The button title doubles as a WhatsApp list row title; keep both limits honest.
BUTTON_MAX = min(WHATSAPP_REPLY_BUTTON_MAX, WHATSAPP_LIST_ROW_TITLE_MAX)


def module_files(root: Path, lang: str) -> list[Path]:
    """The module files of one language, sorted for a stable report order."""
    folder = root / lang / "modules"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def load_module(path: Path, root: Path, lang: str, log: ProblemLog) -> Module | None:
    """Parse one module file; every problem goes to ``log``. None if it is unusable."""
    shown = display_path(path, root)
    if path.suffix != ".yml":
        log.add(shown, "file", "module files must end in .yml")
        return None
    data = read_yaml(path, shown, log)
    if data is None:
        return None
    return parse_module(data, shown, path.stem, lang, log)


def parse_module(data: Any, shown: str, stem: str, lang: str, log: ProblemLog) -> Module | None:
    """Check one module's parsed YAML (``stem`` is its file name without ``.yml``); also
    used for the approved revisions the review workflow keeps."""
    fields = Fields(data, shown, "", log)
    if not fields.ok:
        return None
    fields.only(MODULE_FIELDS)

    module_id = fields.string("id")
    if module_id is not None:
        if not MODULE_ID_RE.match(module_id):
            fields.problem("id", f"{module_id!r} must match [a-z0-9_]{{1,32}}")
        if module_id != stem:
            fields.problem("id", f"{module_id!r} differs from the file name {stem!r}")
        callback = f"{MODULE_CALLBACK_PREFIX}{module_id}"
        size = len(callback.encode("utf-8"))
        if size > TELEGRAM_CALLBACK_DATA_MAX_BYTES:
            fields.problem("id", f"callback data {callback!r} is {size} bytes "
                                 f"(limit {TELEGRAM_CALLBACK_DATA_MAX_BYTES})")

    order = fields.integer("order", minimum=0)
    title = fields.string("title", max_len=MODULE_TITLE_MAX)
    button = fields.string("button", max_len=BUTTON_MAX)
    summary = fields.string("summary", max_len=WHATSAPP_LIST_ROW_DESCRIPTION_MAX)

    intents = fields.strings("intents", required=False)
    for index, intent in enumerate(intents):
        if intent not in KNOWN_INTENTS:
            log.add(shown, f"intents[{index}]", f"unknown intent {intent!r}")
    keywords = fields.strings("keywords", required=False)
    subtopic_of = fields.strings("subtopic_of", required=False)
    for index, intent in enumerate(subtopic_of):
        if intent not in KNOWN_INTENTS:
            log.add(shown, f"subtopic_of[{index}]", f"unknown intent {intent!r}")
        elif intent in intents:
            log.add(shown, f"subtopic_of[{index}]", f"{intent!r} is already in intents")
    if subtopic_of and not keywords:
        fields.problem("subtopic_of", "a subtopic is found by its keywords: list some")

    # Obsolete since approval moved to the console (docs/content-review.md): still
    # accepted, never required, never what decides whether a module is served.
    reviewed = fields.boolean("reviewed", default=False)
    reviewer = fields.string("reviewer", required=False)
    if reviewed and reviewer is None:
        fields.problem("reviewer", "a reviewed module must name its reviewer")

    sources = parse_sources(fields, "sources")
    listed = sum(len(s.title) + len(s.url or s.publisher or "") + 5 for s in sources)
    if listed > SOURCES_LIST_MAX:
        fields.problem("sources", f"the full list is {listed} characters, too long for one "
                                  f"message (limit {SOURCES_LIST_MAX}): shorten titles")
    messages = _messages(fields, sources)
    quiz = _quiz(fields)
    questions = _questions(fields, sources, module_id or "")
    cited = {c for m in messages for c in m.sources} | {c for q in questions for c in q.sources}
    for index, source in enumerate(sources):
        if source.id not in cited and messages:
            fields.problem(f"sources[{index}]", f"{source.id!r} is cited by no message or "
                                                "answer: cite it or remove it")
    next_ids = fields.strings("next", required=False)
    if module_id is not None and module_id in next_ids:
        fields.problem("next", "a module cannot suggest itself")

    if None in (module_id, order, title, button, summary):
        return None
    assert module_id is not None and order is not None  # narrowed for mypy
    assert title is not None and button is not None and summary is not None
    return Module(
        id=module_id, lang=lang, order=order, title=title, button=button, summary=summary,
        intents=intents, keywords=keywords, reviewed=reviewed, reviewer=reviewer,
        sources=sources, messages=messages, quiz=quiz, next=next_ids, questions=questions,
        subtopic_of=subtopic_of,
    )


def _messages(fields: Fields, sources: tuple[Source, ...]) -> tuple[ModuleMessage, ...]:
    known = {s.id for s in sources}
    items = fields.items("messages")
    if fields.present("messages") and not (
        MODULE_MESSAGES_MIN <= len(items) <= MODULE_MESSAGES_MAX
    ):
        fields.problem("messages", f"{len(items)} messages (a module has "
                                   f"{MODULE_MESSAGES_MIN} to {MODULE_MESSAGES_MAX})")
    result: list[ModuleMessage] = []
    cited = False
    for index, item in enumerate(items):
        message = Fields(item, fields.file, f"messages[{index}]", fields.log)
        if not message.ok:
            continue
        message.only(("text", "sources"))
        text = message.string("text", max_len=MODULE_MESSAGE_MAX)
        if text is not None and utf16_length(text) > TELEGRAM_MESSAGE_MAX:
            message.problem("text", f"{utf16_length(text)} UTF-16 units "
                                    f"(Telegram limit {TELEGRAM_MESSAGE_MAX})")
        if not message.present("sources"):
            message.problem("sources", "is required: the ids of the sources behind this "
                                       "message, or [] if it states no fact")
        cites = message.strings("sources", required=False)
        for cite_index, cite in enumerate(cites):
            if cite not in known:
                fields.log.add(fields.file, f"messages[{index}].sources[{cite_index}]",
                               f"unknown source id {cite!r}")
        cited = cited or bool(cites)
        _number_needs_source(message, text, cites)
        if text is not None:
            result.append(ModuleMessage(text=text, sources=cites))
    if result and not cited:
        fields.problem("messages", "no message cites a source: every factual claim needs one")
    return tuple(result)


def _quiz(fields: Fields) -> tuple[QuizItem, ...]:
    if not fields.present("quiz"):
        return ()
    items = fields.items("quiz")
    if not QUIZ_ITEMS_MIN <= len(items) <= QUIZ_ITEMS_MAX:
        fields.problem("quiz", f"{len(items)} items (a quiz has {QUIZ_ITEMS_MIN} to "
                               f"{QUIZ_ITEMS_MAX}; leave it out for none)")
    result: list[QuizItem] = []
    for index, item in enumerate(items):
        entry = Fields(item, fields.file, f"quiz[{index}]", fields.log)
        if not entry.ok:
            continue
        entry.only(("statement", "answer", "feedback"))
        statement = entry.string("statement", max_len=QUIZ_STATEMENT_MAX)
        answer = entry.choice("answer", QUIZ_ANSWERS)
        feedback = entry.string("feedback", max_len=QUIZ_FEEDBACK_MAX)
        if statement is not None and answer is not None and feedback is not None:
            result.append(QuizItem(statement=statement, answer=answer, feedback=feedback))
    return tuple(result)


def _number_needs_source(fields: Fields, text: str | None, cites: tuple[str, ...]) -> None:
    """Every number has a source: a text with a digit (a figure, a year, a law's number, a
    phone line) and ``sources: []`` is a fact nobody can check."""
    if text is not None and not cites and DIGIT_RE.search(text):
        fields.problem("sources", "the text states a number but cites no source")


def _questions(fields: Fields, sources: tuple[Source, ...],
               module_id: str) -> tuple[FollowUp, ...]:
    """The optional ``questions`` list: follow-up answers reached by free text from inside
    the module. Each cites the module's sources like a message does."""
    if not fields.present("questions"):
        return ()
    known = {s.id for s in sources}
    items = fields.items("questions")
    if len(items) > FOLLOW_UP_QUESTIONS_MAX:
        fields.problem("questions", f"{len(items)} questions (limit {FOLLOW_UP_QUESTIONS_MAX})")
    result: list[FollowUp] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        entry = Fields(item, fields.file, f"questions[{index}]", fields.log)
        if not entry.ok:
            continue
        entry.only(("id", "examples", "answer", "sources"))
        question_id = entry.string("id")
        if question_id is not None:
            if not FOLLOW_UP_ID_RE.match(question_id):
                entry.problem("id", f"{question_id!r} must match [a-z0-9_]{{1,24}}")
            elif question_id in seen:
                entry.problem("id", f"duplicate question id {question_id!r}")
            callback = f"{FOLLOW_UP_CALLBACK_PREFIX}{module_id}:{question_id}"
            size = len(callback.encode("utf-8"))
            if size > TELEGRAM_CALLBACK_DATA_MAX_BYTES:
                entry.problem("id", f"callback data {callback!r} is {size} bytes "
                                    f"(limit {TELEGRAM_CALLBACK_DATA_MAX_BYTES})")
        examples = entry.strings("examples")
        if entry.present("examples") and not (
            FOLLOW_UP_EXAMPLES_MIN <= len(examples) <= FOLLOW_UP_EXAMPLES_MAX
        ):
            entry.problem("examples", f"{len(examples)} examples (a question has "
                                      f"{FOLLOW_UP_EXAMPLES_MIN} to {FOLLOW_UP_EXAMPLES_MAX} "
                                      "varied phrasings)")
        for example_index, example in enumerate(examples):
            if len(example) > FOLLOW_UP_EXAMPLE_MAX:
                entry.problem(f"examples[{example_index}]",
                              f"{len(example)} characters (limit {FOLLOW_UP_EXAMPLE_MAX})")
        answer = entry.string("answer", max_len=FOLLOW_UP_ANSWER_MAX)
        if not entry.present("sources"):
            entry.problem("sources", "is required: the ids of the sources behind this answer, "
                                     "or [] if it is guidance that states no fact")
        cites = entry.strings("sources", required=False)
        for cite_index, cite in enumerate(cites):
            if cite not in known:
                entry.problem(f"sources[{cite_index}]", f"unknown source id {cite!r}")
        _number_needs_source(entry, answer, cites)
        if question_id is None or answer is None or not examples or question_id in seen:
            continue
        seen.add(question_id)
        result.append(FollowUp(id=question_id, examples=examples, answer=answer, sources=cites))
    return tuple(result)
