"""Public API shape, robustness on junk input, build_backend and the CLI functions."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlu
from nlu import INTENTS, EmbeddedNLU, Language, NLUBackend, ParseResult, cli
from nlu.engine import MAX_CLASSIFY_CHARS

NLU_DIR = Path(__file__).resolve().parents[2] / "nlu"


def test_public_names() -> None:
    for name in ["Language", "IntentScore", "ParseResult", "NLUBackend", "EmbeddedNLU",
                 "RasaNLU", "build_backend", "FALLBACK_THRESHOLD", "INTENTS"]:
        assert hasattr(nlu, name)
    assert len(INTENTS) == 22 and len(set(INTENTS)) == 22
    assert isinstance(nlu.FALLBACK_THRESHOLD, float)


def test_to_dict_shape(engine: EmbeddedNLU) -> None:
    result = engine.parse_sync("ana 3ayez asafer italya")
    assert isinstance(result, ParseResult)
    d = result.to_dict()
    assert list(d) == ["text", "intent", "intent_ranking", "entities", "language"]
    assert d["text"] == "ana 3ayez asafer italya"
    assert set(d["intent"]) == {"name", "confidence"}
    assert d["intent"]["name"] in INTENTS
    assert 0.0 <= d["intent"]["confidence"] <= 1.0
    assert 1 <= len(d["intent_ranking"]) <= 10
    assert all(set(r) == {"name", "confidence"} for r in d["intent_ranking"])
    confs = [r["confidence"] for r in d["intent_ranking"]]
    assert confs == sorted(confs, reverse=True)
    assert d["entities"] == []
    assert d["language"] == {"code": "ar", "script": "Latn", "confidence": d["language"][
        "confidence"]}
    json.dumps(d, ensure_ascii=False)


def test_dataclasses_are_frozen(engine: EmbeddedNLU) -> None:
    result = engine.parse_sync("hello")
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]
    assert isinstance(result.language, Language)


def test_backend_protocol(engine: EmbeddedNLU) -> None:
    assert isinstance(engine, NLUBackend)


async def test_async_parse(engine: EmbeddedNLU) -> None:
    result = await engine.parse("شكرا")
    assert result.intent.name == "thanks"
    await engine.aclose()


JUNK = ["", " ", "\x00\x01\x02", "😀" * 50, "🙏", "a" * 20_000, "ب" * 20_000,
        "\ud800 lone surrogate", "\u202e\u200f\u200b", "\ufeff", "%s%n{0}", "<script>",
        "١٢٣٤", "؟؟؟؟", "ـــــ", "\n\n\t", "x" + "\u0301" * 500, "🇪🇬" * 100,
        bytes(range(256)).decode("latin-1"), "ana " * 5000]


@pytest.mark.parametrize("text", JUNK, ids=range(len(JUNK)))
def test_junk_never_raises(engine: EmbeddedNLU, text: str) -> None:
    result = engine.parse_sync(text)
    assert result.intent.name in INTENTS
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")


def test_non_str_input(engine: EmbeddedNLU) -> None:
    for value in [None, b"\xff\xfe bytes", 42]:
        result = engine.parse_sync(value)  # type: ignore[arg-type]
        assert result.intent.name in INTENTS


def test_long_input_is_clipped_before_the_model_reads_it(
    engine: EmbeddedNLU, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps a 20,000-character message cheap; its time is measured by bench/nlu.py
    (``long_input_ms``), not asserted here."""
    seen: list[int] = []
    model = engine.model
    rank = model.rank

    class Spy:
        classes = model.classes

        def rank(self, text: str):  # type: ignore[no-untyped-def]
            seen.append(len(text))
            return rank(text)

    monkeypatch.setattr(engine, "model", Spy())
    long = "help " * 4000
    result = engine.parse_sync(long)
    assert seen and max(seen) <= MAX_CLASSIFY_CHARS
    assert result.intent == engine.parse_sync(long[:MAX_CLASSIFY_CHARS]).intent


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200))
def test_arbitrary_unicode(engine: EmbeddedNLU, text: str) -> None:
    result = engine.parse_sync(text)
    assert result.intent.name in INTENTS
    assert 0.0 <= result.intent.confidence <= 1.0
    assert len(result.ranking) <= 10
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")


def test_build_backend(nlu_cache_dir: Path) -> None:
    embedded = nlu.build_backend("embedded", rasa_url="http://127.0.0.1:1",
                                 cache_dir=nlu_cache_dir)
    assert isinstance(embedded, EmbeddedNLU)
    rasa = nlu.build_backend("rasa", rasa_url="http://127.0.0.1:1", cache_dir=nlu_cache_dir)
    assert isinstance(rasa, nlu.RasaNLU)
    asyncio.run(rasa.aclose())
    with pytest.raises(ValueError):
        nlu.build_backend("spacy", rasa_url="http://x", cache_dir=nlu_cache_dir)


# -- CLI -------------------------------------------------------------------------------------
def test_parse_command_single(engine: EmbeddedNLU) -> None:
    out = io.StringIO()
    assert cli.parse_command(engine, "شكرا يا سند", False, io.StringIO(), out) == 0
    (line,) = out.getvalue().splitlines()
    data = json.loads(line)
    assert data["intent"]["name"] == "thanks"
    assert "شكرا" in line  # ensure_ascii=False


def test_parse_command_stdin_text(engine: EmbeddedNLU) -> None:
    out = io.StringIO()
    assert cli.parse_command(engine, None, False, io.StringIO("merci beaucoup\n"), out) == 0
    assert json.loads(out.getvalue())["intent"]["name"] == "thanks"
    out = io.StringIO()
    assert cli.parse_command(engine, None, False, io.StringIO(""), out) == 2
    assert "error" in json.loads(out.getvalue())


def test_parse_command_jsonl(engine: EmbeddedNLU) -> None:
    lines = ['{"text": "hello"}', "not json", '{"no_text": 1}', "", '{"text": "la2"}',
             '["text"]', '{"text": 5}']
    out = io.StringIO()
    assert cli.parse_command(engine, None, True, io.StringIO("\n".join(lines) + "\n"), out) == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(rows) == 6
    assert rows[0]["intent"]["name"] == "greet"
    assert "error" in rows[1] and "error" in rows[2] and "error" in rows[4]
    assert rows[3]["intent"]["name"] == "deny"
    assert "error" in rows[5]


def test_test_command_jsonl_json(engine: EmbeddedNLU) -> None:
    out = io.StringIO()
    assert cli.test_command(engine, NLU_DIR / "tests" / "heldout.jsonl", out, as_json=True) == 0
    report = json.loads(out.getvalue())
    assert report["examples"] >= 22 * 15
    assert report["accuracy"] >= 0.93
    assert set(report["per_variety"]) == {"arz", "msa", "dialect", "arabizi", "en", "fr"}
    assert report["emergency"]["recall"] == 1.0
    assert set(report["per_intent"]) >= set(INTENTS)
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(report["latency"])


def test_test_command_yaml_table(engine: EmbeddedNLU) -> None:
    out = io.StringIO()
    assert cli.test_command(engine, NLU_DIR / "tests" / "heldout.yml", out) == 0
    text = out.getvalue()
    assert "accuracy:" in text and "emergency: recall" in text and "arabizi" in text


def test_test_command_langid(engine: EmbeddedNLU) -> None:
    out = io.StringIO()
    assert cli.test_command(engine, NLU_DIR / "tests" / "langid.jsonl", out, as_json=True) == 0
    report = json.loads(out.getvalue())
    assert report["language_id"]["accuracy"] >= 0.97


def test_test_command_bad_file(engine: EmbeddedNLU, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    out = io.StringIO()
    assert cli.test_command(engine, bad, out) == 2
    assert cli.test_command(engine, tmp_path / "missing.yml", io.StringIO()) == 2
