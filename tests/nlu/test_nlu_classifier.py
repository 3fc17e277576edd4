"""Data validity, held-out accuracy (overall, per variety), emergency, and the model cache."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from nlu import FALLBACK_THRESHOLD, INTENTS, EmbeddedNLU, IntentScore
from nlu.classifier import IntentModel, cache_key, load_or_train
from nlu.normalize import normalize
from nlu.rasa_data import Example, read_rasa_yaml
from nlu.training import train

NLU_DIR = Path(__file__).resolve().parents[2] / "nlu"
HELDOUT_YML = NLU_DIR / "tests" / "heldout.yml"

VARIETIES = {"arz", "msa", "dialect", "arabizi", "en", "fr"}


# -- the Rasa project ---------------------------------------------------------------------
def test_rasa_project_files() -> None:
    config = yaml.safe_load((NLU_DIR / "config.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    assert "DIETClassifier" in names and "FallbackClassifier" in names
    assert config["language"] == "ar"
    domain = yaml.safe_load((NLU_DIR / "domain.yml").read_text(encoding="utf-8"))
    assert domain["version"] == "3.1"
    assert set(domain["intents"]) == set(INTENTS)
    data = yaml.safe_load((NLU_DIR / "data" / "nlu.yml").read_text(encoding="utf-8"))
    assert data["version"] == "3.1"
    for item in data["nlu"]:
        assert set(item) <= {"intent", "examples", "metadata"}
        assert isinstance(item["examples"], str)
        for line in item["examples"].splitlines():
            assert line.startswith("- ") and len(line) > 2, line
            assert not line[2:].startswith("/"), "Rasa treats '/x' as a direct intent"
            assert "](" not in line and "]{" not in line, "no entity annotations"


def test_every_intent_has_60_examples(training: list[Example]) -> None:
    counts = Counter(e.intent for e in training)
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 60, counts.most_common()[-3:]


def test_no_duplicates_across_intents(training: list[Example]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for e in training:
        key = normalize(e.text)
        if key in seen and seen[key] != e.intent:
            clashes.append((e.text, seen[key], e.intent))
        seen.setdefault(key, str(e.intent))
    assert not clashes


def test_heldout_is_disjoint_from_training(training: list[Example],
                                          heldout: list[Example]) -> None:
    train_keys = {normalize(e.text) for e in training}
    leaked = [e.text for e in heldout if normalize(e.text) in train_keys]
    assert not leaked


def test_heldout_shape(heldout: list[Example]) -> None:
    per_intent = Counter(e.intent for e in heldout)
    assert set(per_intent) == set(INTENTS)
    assert min(per_intent.values()) >= 15
    assert {e.variety for e in heldout} == VARIETIES


def test_heldout_yaml_matches_jsonl(heldout: list[Example]) -> None:
    from_yaml = read_rasa_yaml(HELDOUT_YML)
    assert sorted((e.text, e.intent, e.variety) for e in from_yaml) == sorted(
        (e.text, e.intent, e.variety) for e in heldout)


# -- accuracy on held-out data -------------------------------------------------------------
def test_heldout_accuracy(engine: EmbeddedNLU, heldout: list[Example]) -> None:
    by_variety: dict[str, list[bool]] = defaultdict(list)
    for e in heldout:
        by_variety[str(e.variety)].append(engine.parse_sync(e.text).intent.name == e.intent)
    overall = sum(sum(v) for v in by_variety.values()) / len(heldout)
    per_variety = {k: sum(v) / len(v) for k, v in by_variety.items()}
    assert overall >= 0.93, overall
    assert min(per_variety.values()) >= 0.88, per_variety


def test_heldout_emergency_recall_and_precision(engine: EmbeddedNLU,
                                                heldout: list[Example]) -> None:
    pred = [engine.parse_sync(e.text).intent.name for e in heldout]
    tp = sum(p == "emergency" and e.intent == "emergency" for p, e in zip(pred, heldout,
                                                                          strict=True))
    fn = sum(p != "emergency" and e.intent == "emergency" for p, e in zip(pred, heldout,
                                                                          strict=True))
    fp = sum(p == "emergency" and e.intent != "emergency" for p, e in zip(pred, heldout,
                                                                          strict=True))
    assert fn == 0
    assert tp / (tp + fp) >= 0.9


def test_fallback_threshold(engine: EmbeddedNLU) -> None:
    assert 0.0 < FALLBACK_THRESHOLD < 0.5
    low = (IntentScore("menu", FALLBACK_THRESHOLD - 0.01), IntentScore("greet", 0.1))
    assert EmbeddedNLU.apply_fallback(low) == IntentScore("out_of_scope", low[0].confidence)
    high = (IntentScore("menu", FALLBACK_THRESHOLD + 0.01), IntentScore("greet", 0.1))
    assert EmbeddedNLU.apply_fallback(high) == high[0]
    for text in ["qwzx vbnm plkj", "ـــ", "؟؟؟"]:
        result = engine.parse_sync(text)
        if result.ranking[0].confidence < FALLBACK_THRESHOLD:
            assert result.intent.name == "out_of_scope"
    probs = engine.model.probabilities(normalize("hello"))
    assert abs(float(probs.sum()) - 1.0) < 1e-6


def test_spec_example(engine: EmbeddedNLU) -> None:
    result = engine.parse_sync("ana 3ayez asafer italya")
    assert result.intent.name == "learn_irregular_migration"
    assert (result.language.code, result.language.script) == ("ar", "Latn")


# -- cache -----------------------------------------------------------------------------------
TINY = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - salam
- intent: goodbye
  examples: |
    - bye
    - see you later
    - ma3a el salama
"""


def _tiny_project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir(parents=True)
    (tmp_path / "data" / "nlu.yml").write_text(TINY, encoding="utf-8")
    return tmp_path


def test_cache_hit_does_not_retrain(tmp_path: Path) -> None:
    project = _tiny_project(tmp_path / "project")
    cache = tmp_path / "cache"
    calls = []

    def counting_trainer(texts, labels):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return train(texts, labels)

    first = EmbeddedNLU.load(project, cache, trainer=counting_trainer)
    assert calls == [6]
    assert len(list(cache.glob("*.npz"))) == 1

    def failing_trainer(texts, labels):  # type: ignore[no-untyped-def]
        raise AssertionError("retrained despite a warm cache")

    second = EmbeddedNLU.load(project, cache, trainer=failing_trainer)
    assert second.parse_sync("hello").intent.name == first.parse_sync("hello").intent.name

    # Changing the training data changes the key: a retrain.
    (project / "data" / "nlu.yml").write_text(TINY + "    - later\n", encoding="utf-8")
    EmbeddedNLU.load(project, cache, trainer=counting_trainer)
    assert calls == [6, 7]


def test_warm_load_reads_the_cache_and_never_trains(engine: EmbeddedNLU,
                                                    nlu_cache_dir: Path) -> None:
    """A warm start is a cache read, not a training run; its time is measured by
    bench/nlu.py (``load_warm_s``) and bench/startup.py, not asserted here."""
    def failing_trainer(texts, labels):  # type: ignore[no-untyped-def]
        raise AssertionError("trained despite a warm cache")

    warm = EmbeddedNLU.load(cache_dir=nlu_cache_dir, trainer=failing_trainer)
    assert warm.model.classes == engine.model.classes
    assert warm.parse_sync("hello").intent == engine.parse_sync("hello").intent


def test_corrupt_cache_is_retrained(tmp_path: Path) -> None:
    project = _tiny_project(tmp_path / "project")
    cache = tmp_path / "cache"
    EmbeddedNLU.load(project, cache)
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(b"not a zip file")
    nlu = EmbeddedNLU.load(project, cache)
    assert nlu.parse_sync("bye").intent.name in {"goodbye", "out_of_scope"}
    assert IntentModel.load(npz).classes == ("goodbye", "greet")


def test_cache_key_depends_on_data(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(TINY, encoding="utf-8")
    b.write_text(TINY.replace("hello", "helo"), encoding="utf-8")
    assert cache_key([a]) != cache_key([b])
    assert cache_key([a]) == cache_key([a])


def test_unwritable_cache_still_works(tmp_path: Path) -> None:
    project = _tiny_project(tmp_path / "project")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    model = load_or_train([project / "data" / "nlu.yml"], blocker / "cache")
    assert set(model.classes) == {"greet", "goodbye"}


@pytest.mark.parametrize("env", ["SANAD_CACHE_DIR", "XDG_CACHE_HOME"])
def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str) -> None:
    from nlu.classifier import default_cache_dir

    monkeypatch.delenv("SANAD_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv(env, str(tmp_path))
    expected = tmp_path if env == "SANAD_CACHE_DIR" else tmp_path / "sanad"
    assert default_cache_dir() == expected


async def test_only_short_navigation_messages_are_cached(engine: EmbeddedNLU) -> None:
    first = await engine.parse("menu")
    assert await engine.parse("menu") is first  # served from the cache
    danger = "they took my passport"
    result = await engine.parse(danger)
    assert result.intent.name not in {"menu", "greet", "affirm", "deny"}
    assert danger not in engine._cache  # says something about the person: never kept
    long_greeting = "hello " * 10
    await engine.parse(long_greeting)
    assert long_greeting not in engine._cache
