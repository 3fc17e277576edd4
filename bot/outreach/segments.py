"""Segments: a small expression language that picks campaign recipients, parsed here (no eval).

    language=ar and channel=telegram and governorate in (cairo, giza) and age_band=18_24
    and active_within=30d and joined_via=partner-x and topics has trafficking

Conditions are ``field = value``, ``field != value``, ``field in (a, b)``, ``field not in (a, b)``
and ``topics has value``; they combine with ``and``, ``or``, ``not`` and parentheses. Values are
bare words or quoted strings. Unknown fields and values outside a field's vocabulary are errors
that name the field, so a typo never silently targets everybody or nobody.

A segment only narrows: the opt-in (a ``Subscription`` row) and reachability are required by the
targeting query itself, whatever the segment says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import String, and_, cast, false, func, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from bot.config import SUPPORTED_LANGUAGES
from bot.content.limits import SERVICE_AREAS
from bot.messages import Channel
from bot.store.models import Subscription, User


class SegmentError(ValueError):
    """The expression cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str  # = | != | in | not in | has
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Condition | AllOf | AnyOf | Not

# --- fields ---------------------------------------------------------------------------------
_CHOICE_OPS: Final = ("=", "!=", "in", "not in")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS: Final = {"h": "hours", "d": "days", "w": "weeks"}

FIELD_OPS: Final[Mapping[str, tuple[str, ...]]] = {
    "language": _CHOICE_OPS,
    "channel": _CHOICE_OPS,
    "governorate": _CHOICE_OPS,
    "age_band": _CHOICE_OPS,
    "joined_via": _CHOICE_OPS,
    "active_within": ("=",),
    "inactive_for": ("=",),
    "joined_within": ("=",),
    "topics": ("has",),
}
DURATION_FIELDS: Final = frozenset({"active_within", "inactive_for", "joined_within"})


def default_vocabulary(age_bands: tuple[str, ...] = ()) -> dict[str, frozenset[str]]:
    """Allowed values per field; a field missing here accepts any lower-case slug."""
    vocabulary = {
        "language": frozenset(SUPPORTED_LANGUAGES),
        "channel": frozenset(c.value for c in Channel),
        "governorate": frozenset(SERVICE_AREAS - {"national"}),
    }
    if age_bands:
        vocabulary["age_band"] = frozenset(age_bands)
    return vocabulary


# --- parsing --------------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:
    (?P<punct>!=|[=(),])
  | "(?P<dq>[^"]*)"
  | '(?P<sq>[^']*)'
  | (?P<word>[^\s=!(),"']+)
)""", re.VERBOSE)
_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "has"})


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # punct | word | quoted | end
    text: str
    pos: int


def _tokens(source: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if match is None:
            raise SegmentError(f"unexpected character {source[pos:].lstrip()[:1]!r} at "
                               f"position {pos + 1}")
        start = match.start(match.lastgroup or 0)
        if match.group("punct") is not None:
            out.append(_Tok("punct", match.group("punct"), start))
        elif match.group("word") is not None:
            out.append(_Tok("word", match.group("word"), start))
        else:
            quoted = match.group("dq") if match.group("dq") is not None else match.group("sq")
            out.append(_Tok("quoted", quoted, start))
        pos = match.end()
    out.append(_Tok("end", "", len(source) + 1))
    return out


class _Parser:
    def __init__(self, source: str, vocabulary: Mapping[str, frozenset[str]]) -> None:
        self.toks = _tokens(source)
        self.i = 0
        self.vocabulary = vocabulary

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _keyword(self, word: str) -> bool:
        if self.tok.kind == "word" and self.tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def _expect(self, punct: str) -> None:
        if self.tok.kind != "punct" or self.tok.text != punct:
            raise SegmentError(f"expected {punct!r} at position {self.tok.pos}, "
                               f"found {self.tok.text or 'the end'!r}")
        self.i += 1

    def parse(self) -> Node:
        node = self._or()
        if self.tok.kind != "end":
            raise SegmentError(f"unexpected {self.tok.text!r} at position {self.tok.pos} "
                               "(combine conditions with 'and' / 'or')")
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self._keyword("or"):
            items.append(self._and())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def _and(self) -> Node:
        items = [self._not()]
        while self._keyword("and"):
            items.append(self._not())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def _not(self) -> Node:
        if self._keyword("not"):
            return Not(self._not())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.i += 1
            node = self._or()
            self._expect(")")
            return node
        return self._condition()

    def _condition(self) -> Condition:
        tok = self.tok
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise SegmentError(f"expected a field name at position {tok.pos}, "
                               f"found {tok.text or 'the end'!r}")
        name = tok.text.lower()
        if name not in FIELD_OPS:
            raise SegmentError(f"unknown field {tok.text!r} at position {tok.pos} "
                               f"(known fields: {', '.join(FIELD_OPS)})")
        self.i += 1
        op = self._operator(name)
        values = self._values() if op in ("in", "not in") else (self._value(name),)
        for value in values:
            self._check_value(name, value)
        return Condition(name, op, values)

    def _operator(self, name: str) -> str:
        tok = self.tok
        if tok.kind == "punct" and tok.text in ("=", "!="):
            op = tok.text
            self.i += 1
        elif self._keyword("in"):
            op = "in"
        elif self._keyword("has"):
            op = "has"
        elif self.tok.kind == "word" and self.tok.text.lower() == "not":
            self.i += 1
            if not self._keyword("in"):
                raise SegmentError(f"expected 'in' after 'not' at position {self.tok.pos}")
            op = "not in"
        else:
            raise SegmentError(f"expected an operator after {name!r} at position {tok.pos}, "
                               f"found {tok.text or 'the end'!r}")
        if op not in FIELD_OPS[name]:
            allowed = " / ".join(repr(o) for o in FIELD_OPS[name])
            raise SegmentError(f"field {name!r} takes {allowed}, not {op!r}")
        return op

    def _values(self) -> tuple[str, ...]:
        self._expect("(")
        values = [self._value(None)]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.i += 1
            values.append(self._value(None))
        self._expect(")")
        return tuple(values)

    def _value(self, name: str | None) -> str:
        tok = self.tok
        if tok.kind == "quoted" or (tok.kind == "word" and tok.text.lower() not in _KEYWORDS):
            self.i += 1
            return tok.text.strip()
        what = f" for {name!r}" if name else ""
        raise SegmentError(f"expected a value{what} at position {tok.pos}, "
                           f"found {tok.text or 'the end'!r}")

    def _check_value(self, name: str, value: str) -> None:
        if name in DURATION_FIELDS:
            if _DURATION.match(value) is None:
                raise SegmentError(f"field {name!r} needs a duration like 30d, 12h or 2w, "
                                   f"got {value!r}")
            return
        allowed = self.vocabulary.get(name)
        if allowed is not None and value not in allowed:
            raise SegmentError(f"field {name!r} has no value {value!r} "
                               f"(one of: {', '.join(sorted(allowed))})")
        if allowed is None and _SLUG.match(value) is None:
            raise SegmentError(f"field {name!r}: {value!r} is not a valid value "
                               "(letters, digits, '_', '-', '.', ':')")


def parse(source: str, vocabulary: Mapping[str, frozenset[str]] | None = None) -> Node | None:
    """Parse a segment expression; None for an empty one (every opted-in user)."""
    if not source or not source.strip():
        return None
    return _Parser(source, default_vocabulary() if vocabulary is None else vocabulary).parse()


def describe(node: Node | None) -> str:
    """A canonical text of the expression (what ``campaign show`` prints)."""
    match node:
        case None:
            return "(everyone who opted in)"
        case Condition(field=name, op=op, values=values):
            if op in ("in", "not in"):
                return f"{name} {op} ({', '.join(values)})"
            return f"{name} {op} {values[0]}" if op == "has" else f"{name}{op}{values[0]}"
        case AllOf(items=items):
            return " and ".join(_grouped(i) for i in items)
        case AnyOf(items=items):
            return " or ".join(_grouped(i) for i in items)
        case Not(item=item):
            return f"not {_grouped(item)}"
    raise TypeError(node)  # pragma: no cover


def _grouped(node: Node) -> str:
    return f"({describe(node)})" if isinstance(node, AllOf | AnyOf) else describe(node)


# --- compiling ------------------------------------------------------------------------------
def duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if match is None:
        raise SegmentError(f"not a duration: {value!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def to_clause(node: Node | None, *, now: datetime,
              default_language: str = "ar") -> ColumnElement[bool]:
    """The SQL condition on ``users`` joined with ``subscriptions`` (the caller joins them).

    A user without a language gets the bot's default language, so ``language=ar`` matches
    them: that is the language they are answered in.
    """
    if node is None:
        return true()
    match node:
        case AllOf(items=items):
            return and_(*(to_clause(i, now=now, default_language=default_language)
                          for i in items))
        case AnyOf(items=items):
            return or_(*(to_clause(i, now=now, default_language=default_language)
                         for i in items))
        case Not(item=item):
            return not_(to_clause(item, now=now, default_language=default_language))
        case Condition():
            return _condition(node, now, default_language)
    raise TypeError(node)  # pragma: no cover


def _condition(cond: Condition, now: datetime, default_language: str) -> ColumnElement[bool]:
    if cond.field == "active_within":
        return User.last_active_at >= now - duration(cond.values[0])
    if cond.field == "inactive_for":
        return User.last_active_at < now - duration(cond.values[0])
    if cond.field == "joined_within":
        return User.created_at >= now - duration(cond.values[0])
    if cond.field == "topics":
        # Topics are slugs (checked when parsing), so their JSON text is '"slug"': a portable
        # substring test on the JSON array, with LIKE wildcards escaped.
        return cast(Subscription.topics, String).contains(f'"{cond.values[0]}"', autoescape=True)
    column = {
        "language": func.coalesce(User.language, default_language),
        "channel": User.channel,
        "governorate": User.governorate,
        "age_band": User.age_band,
        "joined_via": User.joined_via,
    }[cond.field]
    if cond.op == "=":
        return column == cond.values[0]
    if cond.op == "in":
        return column.in_(cond.values)
    # != and not in: a user without the attribute is "not in" too (NULL would hide them)
    values = cond.values
    return or_(column.is_(None), column.not_in(values)) if values else false()
