"""Every payload of ``tests/whatsapp/corpus/`` (real-shaped Cloud API webhook bodies, each with
the Meta documentation it follows in ``source``) through the real webhook route, signed.

Each is answered 2xx without a traceback in the log, and a user message that carries words
(``reply_to``: the phone number or BSUID the answer goes to) gets an answer from the fake
Graph API.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.whatsapp.conftest import Harness
from tests.whatsapp.fake_graph_api import address

CORPUS = Path(__file__).parent / "corpus"
"""One person sends the whole corpus in a few seconds: flood control would slow it down."""


def corpus() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, orjson.loads(path.read_bytes()))
            for path in sorted(CORPUS.glob("*.json"))]


def test_the_corpus_is_broad_and_sourced() -> None:
    items = corpus()
    kinds = Counter(item["kind"] for _, item in items)
    assert len(items) >= 50 and len(kinds) >= 20, kinds
    for name, item in items:
        assert item["source"].startswith("https://developers.facebook.com/"), name
        assert item["body"]["object"] == "whatsapp_business_account", name


async def test_every_corpus_payload_is_answered_without_a_traceback(
    wa_open: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    h = wa_open
    unanswered = []
    with caplog.at_level(logging.INFO):
        for name, item in corpus():
            before = len(h.fake.messages())
            status = await h.post(item["body"])
            assert 200 <= status < 300, (name, status)
            to = item.get("reply_to")
            if to and not any(address(m) == to for m in h.fake.messages()[before:]):
                unanswered.append(name)
    await h.fake.settle()
    assert unanswered == []
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
