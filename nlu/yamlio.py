"""YAML loading with libyaml's C parser when available: start-up (NLU word lists, all of
content/) parses ~10× faster than with the pure-Python parser.

Same semantics as ``yaml.safe_load`` (only plain data, never arbitrary objects).
"""

from __future__ import annotations

from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml may be missing

YAMLError = yaml.YAMLError


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
