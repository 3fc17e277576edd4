"""Which follow-up questions of each module the golden transcripts reach, per language.

Issue #26 asks for transcript tests of at least five follow-up questions per module (or all
of them, when a module has fewer) in ar, en and fr. This script reads every module's
``questions`` (``content/<lang>/modules/*.yml``) and every transcript
(``tests/transcripts/*.yml``) and counts a question as reached when a ``say`` step expects

* the button ``aw:src:<module>:<question>`` (a follow-up answer always offers it), or
* a ``contains`` fragment that is part of that question's answer and of no page of its
  module (a page shown again is not the answer), or that is also on a page while the step
  expects the «continue reading» button back to the page being read (``aw:next:<module>:<i>``
  for page index ``i``: a page offers the *next* index, a follow-up answer the current one;
  questions without sources have no sources button and some repeat a page sentence). A
  fragment shared by several answers counts for the module being read (the last
  ``aw:open:`` / ``aw:next:`` tap) only.

The module being read follows ``aw:open:`` and ``aw:next:`` taps and typed requests that
expect ``ModuleOpened`` with the module's title. The transcript's language is its file
name's prefix (``ar_…``), else its first
``language:`` expectation, else every language is tried.

    .venv/bin/python scripts/followup_coverage.py            # table and gaps
    .venv/bin/python scripts/followup_coverage.py --json     # machine-readable
    .venv/bin/python scripts/followup_coverage.py --strict   # exit 1 when a gap is left

Reading only: no model, no database, no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.content.loader import ContentLibrary  # noqa: E402
from bot.content.models import Module  # noqa: E402

LANGUAGES = ("ar", "en", "fr")
WANTED = 5


@dataclass(frozen=True, slots=True)
class Hit:
    """One transcript step that reaches one question."""

    lang: str
    module: str
    question: str
    where: str


@dataclass
class Coverage:
    """Questions per (language, module) and the steps that reach them."""

    questions: dict[tuple[str, str], tuple[str, ...]]
    hits: list[Hit] = field(default_factory=list)

    def reached(self, lang: str, module: str) -> set[str]:
        return {h.question for h in self.hits if h.lang == lang and h.module == module}

    def target(self, lang: str, module: str) -> int:
        return min(WANTED, len(self.questions[lang, module]))

    def gaps(self) -> dict[tuple[str, str], list[str]]:
        """Modules below target, with the ids of their questions no step reaches."""
        found = {}
        for (lang, module), ids in sorted(self.questions.items()):
            reached = self.reached(lang, module)
            if len(reached) < self.target(lang, module):
                found[lang, module] = [q for q in ids if q not in reached]
        return found


def transcript_language(path: Path, steps: list[dict[str, Any]]) -> tuple[str, ...]:
    prefix = path.stem.split("_", 1)[0]
    if prefix in LANGUAGES:
        return (prefix,)
    for step in steps:
        lang = (step.get("expect") or {}).get("language")
        if lang in LANGUAGES:
            return (lang,)
    return LANGUAGES


@dataclass(frozen=True, slots=True)
class Reading:
    """The module being read and the index of the page shown (from the taps so far)."""

    module: str
    page: int


def _reading_after(tap: str) -> Reading | None:
    parts = tap.split(":")
    if len(parts) >= 3 and parts[0] == "aw" and parts[1] == "open":
        return Reading(parts[2], 0)
    if len(parts) == 4 and parts[:2] == ["aw", "next"] and parts[3].isdigit():
        return Reading(parts[2], int(parts[3]))
    return None


def _opened_by_words(library: ContentLibrary, langs: Iterable[str],
                     expect: dict[str, Any]) -> Reading | None:
    """A module opened by a typed request ("tell me about child marriage"): the step expects
    ``ModuleOpened`` and the module's title."""
    if "ModuleOpened" not in expect.get("events", []):
        return None
    for fragment in expect.get("contains", []):
        for lang in langs:
            titled = [m.id for m in library.modules(lang) if fragment in m.title]
            if len(titled) == 1:
                return Reading(titled[0], 0)
    return None


def step_hits(library: ContentLibrary, langs: Iterable[str], reading: Reading | None,
              expect: dict[str, Any], where: str) -> Iterator[Hit]:
    """The questions one ``say`` step's expectations identify."""
    current = reading.module if reading else None
    buttons = [str(b) for b in expect.get("buttons", [])]
    back_to_page = reading is not None and f"aw:next:{reading.module}:{reading.page}" in buttons
    for button in buttons:
        parts = button.split(":")
        if len(parts) == 4 and parts[:2] == ["aw", "src"]:
            for lang in langs:
                yield Hit(lang, parts[2], parts[3], where)
    for fragment in expect.get("contains", []):
        for lang in langs:
            owners = [(m.id, q.id) for m in library.modules(lang) for q in m.questions
                      if fragment in q.answer and (not _on_a_page(m, fragment)
                                                   or (back_to_page and m.id == current))]
            if len(owners) > 1:
                owners = [o for o in owners if o[0] == current]
            if len(owners) == 1:
                yield Hit(lang, owners[0][0], owners[0][1], where)


def _on_a_page(module: Module, fragment: str) -> bool:
    return any(fragment in page.text for page in module.messages)


def measure(library: ContentLibrary, transcripts: Path) -> Coverage:
    coverage = Coverage({(lang, m.id): tuple(q.id for q in m.questions)
                         for lang in LANGUAGES for m in library.modules(lang)})
    for path in sorted(transcripts.glob("*.yml")):
        steps = yaml.safe_load(path.read_text(encoding="utf-8")).get("steps", [])
        langs = transcript_language(path, steps)
        reading: Reading | None = None
        for number, step in enumerate(steps, 1):
            if "tap" in step:
                reading = _reading_after(str(step["tap"])) or reading
            elif "say" in step:
                expect = step.get("expect") or {}
                reading = _opened_by_words(library, langs, expect) or reading
                coverage.hits.extend(step_hits(library, langs, reading, expect,
                                               f"{path.name}:{number}"))
    return coverage


def render(coverage: Coverage) -> str:
    modules = sorted({m for _, m in coverage.questions})
    lines = [f"{'module':<22} " + " ".join(f"{lang:>6}" for lang in LANGUAGES)]
    for module in modules:
        cells = []
        for lang in LANGUAGES:
            if (lang, module) not in coverage.questions:
                cells.append(f"{'-':>6}")
                continue
            got = len(coverage.reached(lang, module))
            mark = "" if got >= coverage.target(lang, module) else "*"
            cells.append(f"{mark}{got}/{len(coverage.questions[lang, module])}".rjust(6))
        lines.append(f"{module:<22} " + " ".join(cells))
    gaps = coverage.gaps()
    lines.append("")
    lines.append(f"* below {WANTED} (or all) questions reached: {len(gaps)} module-languages")
    for (lang, module), missing in gaps.items():
        lines.append(f"  {lang} {module}: not reached {', '.join(missing)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transcripts", type=Path, default=ROOT / "tests" / "transcripts")
    parser.add_argument("--content", type=Path, default=None,
                        help="content root (default: the repository's content/)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a gap is left")
    args = parser.parse_args(argv)
    coverage = measure(ContentLibrary.load(args.content), args.transcripts)
    if args.json:
        print(json.dumps({
            f"{lang}/{module}": {"questions": list(ids),
                                 "reached": sorted(coverage.reached(lang, module)),
                                 "target": coverage.target(lang, module)}
            for (lang, module), ids in sorted(coverage.questions.items())
        }, ensure_ascii=False, indent=1))
    else:
        print(render(coverage))
    return 1 if args.strict and coverage.gaps() else 0


if __name__ == "__main__":
    raise SystemExit(main())
