"""Shared fixtures for the NLU tests: one trained model per session, in a temp cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu import EmbeddedNLU
from nlu.rasa_data import Example, read_jsonl, read_rasa_yaml

NLU_DIR = Path(__file__).resolve().parents[2] / "nlu"
HELDOUT_JSONL = NLU_DIR / "tests" / "heldout.jsonl"
HELDOUT_YML = NLU_DIR / "tests" / "heldout.yml"
LANGID_JSONL = NLU_DIR / "tests" / "langid.jsonl"
TRAINING_YML = NLU_DIR / "data" / "nlu.yml"


@pytest.fixture(scope="session")
def nlu_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sanad-nlu-cache")


@pytest.fixture(scope="session")
def engine(nlu_cache_dir: Path) -> EmbeddedNLU:
    return EmbeddedNLU.load(cache_dir=nlu_cache_dir)


@pytest.fixture(scope="session")
def heldout() -> list[Example]:
    return read_jsonl(HELDOUT_JSONL)


@pytest.fixture(scope="session")
def training() -> list[Example]:
    return read_rasa_yaml(TRAINING_YML)


@pytest.fixture(scope="session")
def langid_rows() -> list[dict]:
    return [json.loads(line) for line in LANGID_JSONL.read_text(encoding="utf-8").splitlines()
            if line.strip()]
