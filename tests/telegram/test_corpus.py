"""Real-shaped updates of every kind the Bot API documents (``corpus/*.json``, each entry citing
its section of https://core.telegram.org/bots/api), posted to the real webhook: always 2xx,
never a traceback; a private chat's message gets its reply through the fake Bot API, a group,
a channel or a kind we do not serve gets nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.telegram.conftest import Harness
from tests.telegram.typed_fuzz import corpus_files

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
FILES = sorted(corpus_files())
EXPECTATIONS = {"reply", "silent", "any"}


def every_entry() -> list[dict[str, Any]]:
    return [entry for entries in corpus_files().values() for entry in entries]


def private_text(update: dict[str, Any]) -> bool:
    message = update.get("message")
    return (isinstance(message, dict) and message["chat"]["type"] == "private"
            and isinstance(message.get("text"), str))


def test_the_corpus_is_wide_and_sourced() -> None:
    entries = every_entry()
    kinds = {entry["kind"] for entry in entries}
    assert len(entries) >= 60 and len(kinds) >= 25
    assert len({entry["kind"].split(".")[0] for entry in entries}) >= 20  # update kinds
    ids = [entry["update"]["update_id"] for entry in entries]
    assert len(ids) == len(set(ids)) and all(type(i) is int for i in ids)
    for entry in entries:
        assert entry["source"].startswith("https://core.telegram.org/bots/api#"), entry["kind"]
        assert entry.get("expect", "any") in EXPECTATIONS, entry["kind"]
        if private_text(entry["update"]):
            assert entry["expect"] == "reply", entry["kind"]


@pytest.mark.parametrize("name", FILES)
async def test_every_update_is_acknowledged_without_a_traceback(
    tg: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO)
    for entry in corpus_files()[name]:
        update, kind = entry["update"], entry["kind"]
        before = len(tg.fake.calls)
        status = await tg.post(update)
        assert 200 <= status < 300, (kind, status)
        calls = tg.fake.calls[before:]
        sent = [c.params["chat_id"] for c in calls if c.method == "sendMessage"]
        assert all(chat > 0 for chat in sent), kind  # never into a group or a channel
        if entry.get("expect") == "reply":
            assert sent, f"{kind}: no reply"
        elif entry.get("expect") == "silent":
            assert not sent, f"{kind}: answered"
        query = update.get("callback_query")
        if query is not None:  # every tap stops spinning, answered or not
            assert [c.params["callback_query_id"] for c in calls
                    if c.method == "answerCallbackQuery"] == [query["id"]], kind
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, [r.getMessage() for r in failures]
