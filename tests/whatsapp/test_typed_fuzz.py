"""Typed-field fuzzing of the signed webhook: documented payloads with fields of the wrong type.

The Graph webhook types are documented (ids and timestamps are strings, message contents
objects, ``entry`` / ``changes`` / ``messages`` / ``statuses`` / ``errors`` arrays, error codes
integers, ``voice`` / ``forwarded`` booleans). Each example takes a real-shaped payload of the
corpus and puts, at one to three of its fields, a value of another type: a number for a string,
an object for a string, a list for an object, ``null``, numbers past 64 bits or past a double,
deep junk. Every body is signed and POSTed to the real route; none may get a 5xx.

2,000 signed bodies in all: :data:`TYPE_SWAPS` + :data:`STRUCTURE`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.whatsapp_payload import read_notifications
from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import PHONE_NUMBER_ID
from tests.whatsapp.test_corpus import corpus

TYPE_SWAPS = 1_300
STRUCTURE = 700
Path = tuple[str | int, ...]

BODIES = [item["body"] for _, item in corpus()]


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every field and element below ``value`` (not ``value`` itself)."""
    found: list[Path] = []
    children = (value.items() if isinstance(value, dict)
                else enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


PATHS = [paths(body) for body in BODIES]


def get(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def put(body: Any, path: Path, new: Any) -> Any:
    changed = copy.deepcopy(body)
    get(changed, path[:-1])[path[-1]] = new
    return changed


HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**64 + 7, 10**40, -(10**40), 1.7976931348623157e308,
                        5e-324, 10**400])
"""Past int64, past a double (``10**400`` reads as infinity: refused as JSON), the tiniest."""
SHORT = st.text(max_size=12)
SMALL_OBJECT = st.dictionaries(SHORT, SHORT | st.integers(), max_size=3)
SMALL_LIST = st.lists(SHORT | st.integers() | st.none(), max_size=4)
DEEP = st.integers(min_value=20, max_value=200).map(
    lambda depth: _nest(depth))


def _nest(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value, "type": "text"}
    return value


def wrong_for(original: Any) -> st.SearchStrategy[Any]:
    """A value of another type than ``original`` (its documented type)."""
    numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False) | HUGE
    if isinstance(original, bool):
        return st.sampled_from(["true", "1", "", 0, 1]) | st.none() | SMALL_OBJECT
    if isinstance(original, str):
        return numbers | st.booleans() | st.none() | SMALL_OBJECT | SMALL_LIST | DEEP
    if isinstance(original, int | float):
        return SHORT | st.booleans() | st.none() | HUGE | SMALL_LIST | SMALL_OBJECT
    if isinstance(original, dict):
        return SMALL_LIST | SHORT | numbers | st.none() | st.booleans() | DEEP
    if isinstance(original, list):
        return SMALL_OBJECT | SHORT | numbers | st.none() | DEEP
    return SHORT | numbers | SMALL_OBJECT | SMALL_LIST


@st.composite
def type_swapped(draw: st.DrawFn) -> bytes:
    index = draw(st.integers(0, len(BODIES) - 1))
    body, fields = BODIES[index], PATHS[index]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(fields))
        try:
            parent = get(body, path[:-1])
            original = parent[path[-1]]
        except (KeyError, IndexError, TypeError):  # an earlier swap replaced a parent
            continue
        if isinstance(parent, dict | list):
            body = put(body, path, draw(wrong_for(original)))
    return json.dumps(body, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def restructured(draw: st.DrawFn) -> bytes:
    """Containers emptied, duplicated, or given junk members; ids of other types."""
    index = draw(st.integers(0, len(BODIES) - 1))
    body = copy.deepcopy(BODIES[index])
    containers = [p for p in PATHS[index] if isinstance(get(body, p), list | dict)]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(containers))
        try:
            target = get(body, path)
        except (KeyError, IndexError, TypeError):  # an earlier change removed a parent
            continue
        if not isinstance(target, list | dict):
            continue
        action = draw(st.sampled_from(["empty", "double", "junk", "null_members"]))
        if isinstance(target, list):
            if action == "empty":
                target.clear()
            elif action == "double":
                target.extend(copy.deepcopy(target))
            elif action == "junk":
                target.append(draw(SMALL_OBJECT | SMALL_LIST | HUGE | DEEP | st.none()))
            else:
                target[:] = [None] * len(target)
        else:
            if action == "empty":
                target.clear()
            elif action == "double":
                target[draw(SHORT)] = copy.deepcopy(dict(target))
            elif action == "junk":
                target[draw(st.sampled_from(["type", "id", "from", "from_user_id", "status",
                                             "field", "value", "system", "edit", "revoke"]))] = (
                    draw(SMALL_OBJECT | SMALL_LIST | HUGE | DEEP | st.none() | SHORT))
            else:
                for key in target:
                    target[key] = None
    return json.dumps(body).encode()


def test_the_corpus_gives_the_fuzzer_many_fields() -> None:
    assert sum(len(p) for p in PATHS) > 2_000


@pytest.mark.parametrize(("name", "path"), [
    ("system_changed_user_id", ("messages", 0, "system", "type")),
    ("unsupported_edit", ("messages", 0, "unsupported", "type")),
    ("user_preferences_stop", ("user_preferences", 0, "value")),
])
@pytest.mark.parametrize("junk", [["user_changed_number"], {"type": "edit"}])
def test_a_list_or_an_object_where_a_word_belongs(name: str, path: Path, junk: Any) -> None:
    """Found by the fuzzer: a set lookup of an unhashable value raised (a 500)."""
    body = dict(corpus())[name]["body"]
    value_path: Path = ("entry", 0, "changes", 0, "value", *path)
    found = read_notifications(put(body, value_path, junk), PHONE_NUMBER_ID)
    assert not found.changes and not found.preferences  # read, not raised


@settings(max_examples=TYPE_SWAPS, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(body=type_swapped())
async def test_fields_of_the_wrong_type_never_cause_a_server_error(wa_open: Harness,
                                                                    body: bytes) -> None:
    assert await wa_open.post(body) in {200, 400}


@settings(max_examples=STRUCTURE, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(body=restructured())
async def test_reshaped_containers_never_cause_a_server_error(wa_open: Harness,
                                                               body: bytes) -> None:
    assert await wa_open.post(body) in {200, 400}
