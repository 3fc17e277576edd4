"""The segment language: parsing, clear errors, and the users it selects on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.outreach.segments import (
    AllOf,
    AnyOf,
    Condition,
    Not,
    SegmentError,
    default_vocabulary,
    describe,
    parse,
    to_clause,
)
from bot.store.models import Subscription, User
from bot.store.repository import Store, utcnow
from tests.outreach.conftest import add_users

VOCABULARY = default_vocabulary(("under_18", "18_24", "25_plus", "no_answer"))
FULL = ("language=ar and channel=telegram and governorate in (cairo, giza) and age_band=18_24 "
        "and active_within=30d and joined_via=partner-x and topics has trafficking")


def test_the_full_example_parses() -> None:
    node = parse(FULL, VOCABULARY)
    assert node == AllOf((
        Condition("language", "=", ("ar",)), Condition("channel", "=", ("telegram",)),
        Condition("governorate", "in", ("cairo", "giza")), Condition("age_band", "=", ("18_24",)),
        Condition("active_within", "=", ("30d",)), Condition("joined_via", "=", ("partner-x",)),
        Condition("topics", "has", ("trafficking",)),
    ))
    assert parse(describe(node), VOCABULARY) == node


@pytest.mark.parametrize(("source", "expected"), [
    ("", None),
    ("   ", None),
    ("LANGUAGE = en", Condition("language", "=", ("en",))),
    ("language != ar", Condition("language", "!=", ("ar",))),
    ("governorate not in (cairo,'giza')", Condition("governorate", "not in", ("cairo", "giza"))),
    ('joined_via="Partner.X"', Condition("joined_via", "=", ("Partner.X",))),
    ("language=ar or language=en and channel=whatsapp", AnyOf((
        Condition("language", "=", ("ar",)),
        AllOf((Condition("language", "=", ("en",)), Condition("channel", "=", ("whatsapp",)))),
    ))),
    ("not (language=ar or inactive_for=2w)", Not(AnyOf((
        Condition("language", "=", ("ar",)), Condition("inactive_for", "=", ("2w",)))))),
])
def test_valid_expressions(source: str, expected: object) -> None:
    assert parse(source, VOCABULARY) == expected


@pytest.mark.parametrize(("source", "message"), [
    ("contry=eg", "unknown field 'contry'"),
    ("language=ar and gouvernorate=cairo", "unknown field 'gouvernorate'"),
    ("language=xx", "field 'language' has no value 'xx'"),
    ("governorate in (cairo, atlantis)", "field 'governorate' has no value 'atlantis'"),
    ("age_band=30_40", "field 'age_band' has no value '30_40'"),
    ("active_within=30", "field 'active_within' needs a duration"),
    ("active_within in (3d)", "field 'active_within' takes '='"),
    ("topics=trafficking", "field 'topics' takes 'has'"),
    ("language has ar", "field 'language' takes"),
    ("(language=ar", "expected ')'"),
    ("language=ar channel=telegram", "unexpected 'channel'"),
    ("language=", "expected a value for 'language'"),
    ("and language=ar", "expected a field name"),
    ("joined_via=a;drop", "not a valid value"),
    ("language=ar; drop table users", "field 'language' has no value 'ar;'"),
    ("language=ar & channel=web", "unexpected '&'"),
    ("language=ar\x00", "field 'language' has no value"),
])
def test_invalid_expressions_say_why(source: str, message: str) -> None:
    with pytest.raises(SegmentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(source, VOCABULARY)


async def _selected(store: Store, source: str) -> set[str]:
    clause = to_clause(parse(source, VOCABULARY), now=utcnow(), default_language="ar")
    async with store.session() as db:
        keys = await db.scalars(select(User.key).join(Subscription)
                                .where(User.unreachable.is_(False), clause))
    named = {store.pseudonyms.user_key(c, f"{p}{n}"): f"{p}{n}"
             for c in ("telegram", "whatsapp") for p in ("a", "b", "c", "d", "e")
             for n in range(2)}
    return {named[k] for k in keys}


async def test_segments_select_the_right_people(store: Store) -> None:
    old = utcnow() - timedelta(days=60)
    await add_users(store, 2, prefix="a", governorate="cairo", age_band="18_24",
                    joined_via="partner-x", topics=["trafficking", "jobs"])
    await add_users(store, 2, prefix="b", channel="whatsapp", language="en",
                    governorate="giza", last_active_at=old, topics=["jobs"])
    await add_users(store, 2, prefix="c", language=None, governorate="aswan",
                    topics=["trafficking_x"])
    await add_users(store, 2, prefix="d", subscribed=False, governorate="cairo")
    await add_users(store, 2, prefix="e", unreachable=True, governorate="cairo")

    assert await _selected(store, "") == {"a0", "a1", "b0", "b1", "c0", "c1"}
    assert await _selected(store, FULL) == {"a0", "a1"}
    assert await _selected(store, "language=ar") == {"a0", "a1", "c0", "c1"}  # c: default
    assert await _selected(store, "governorate in (cairo, giza)") == {"a0", "a1", "b0", "b1"}
    assert await _selected(store, "governorate != cairo") == {"b0", "b1", "c0", "c1"}
    assert await _selected(store, "age_band not in (18_24)") == {"b0", "b1", "c0", "c1"}
    assert await _selected(store, "active_within=30d") == {"a0", "a1", "c0", "c1"}
    assert await _selected(store, "inactive_for=30d") == {"b0", "b1"}
    assert await _selected(store, "topics has trafficking") == {"a0", "a1"}
    assert await _selected(store, "topics has jobs and not channel=telegram") == {"b0", "b1"}
    assert await _selected(store, "channel=whatsapp or joined_via=partner-x") == {
        "a0", "a1", "b0", "b1"}
