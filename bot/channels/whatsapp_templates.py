"""WhatsApp-only words and templates, from ``content/whatsapp_templates.yml``.

Loaded and checked once when the channel is built: a template name Meta would reject or a list
label over 20 characters must stop start-up, not surface as a Graph error in the middle of a
conversation with someone who needs an answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.content.models import ContentError, Problem
from bot.i18n import content_root
from bot.languages import LANGUAGES

FILE = "whatsapp_templates.yml"
LIST_BUTTON_MAX = 20
"""Characters in the button that opens a list message."""
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


@dataclass(frozen=True, slots=True)
class Template:
    """One approved template in one language: what a ``type: template`` message names."""

    name: str
    language_code: str
    parameters: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        """The ``template`` object of a Cloud API message."""
        body: dict[str, Any] = {"name": self.name, "language": {"code": self.language_code}}
        if self.parameters:
            body["components"] = [{
                "type": "body",
                "parameters": [{"type": "text", "text": p} for p in self.parameters],
            }]
        return body


@dataclass(frozen=True, slots=True)
class Labels:
    """The words the channel adds when it degrades buttons, in one language."""

    list_button: str
    numbered_hint: str


@dataclass(frozen=True)
class WhatsAppTexts:
    notices: Mapping[str, Template]
    """The new-message notice per user language."""
    labels: Mapping[str, Labels]
    default_language: str = "ar"
    campaign_notices: Mapping[str, Template] = field(default_factory=dict)
    """The approved MARKETING template that invites a user outside the 24-hour window to
    read a campaign (``campaign_template``); empty: campaign messages wait until they write."""

    def notice(self, lang: str | None) -> Template:
        return self.notices.get(lang or "") or self.notices[self.default_language]

    def campaign_notice(self, lang: str | None) -> Template | None:
        if not self.campaign_notices:
            return None
        return (self.campaign_notices.get(lang or "")
                or self.campaign_notices.get(self.default_language))

    def label(self, lang: str | None) -> Labels:
        return self.labels.get(lang or "") or self.labels[self.default_language]

    @classmethod
    def load(cls, root: Path | None = None, *, default_language: str = "ar") -> WhatsAppTexts:
        """Read and check the file; :class:`ContentError` lists every problem."""
        data = _read(root)
        problems = _check(data)
        if problems:
            raise ContentError(problems)
        notices = _templates(data, data["notice_template"])
        campaign = data.get("campaign_template")
        labels = {lang: Labels(str(entry["list_button"]), str(entry["numbered_hint"]))
                  for lang, entry in data["labels"].items()}
        return cls(notices, labels, default_language,
                   _templates(data, campaign) if campaign else {})


def _templates(data: Mapping[str, Any], name: str) -> dict[str, Template]:
    return {
        lang: Template(str(entry["name"]), str(entry["code"]),
                       tuple(str(p) for p in entry.get("parameters") or ()))
        for lang, entry in data["templates"][name]["languages"].items()
    }


def check(root: Path | None = None) -> list[Problem]:
    """Problems in the file (for ``sanad content check``); empty when it is fine."""
    try:
        return _check(_read(root))
    except ContentError as exc:
        return exc.problems


def _read(root: Path | None) -> dict[str, Any]:
    path = (root or content_root()) / FILE
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ContentError([Problem(FILE, "-", f"cannot read: {type(exc).__name__}")]) from None
    if not isinstance(data, dict):
        raise ContentError([Problem(FILE, "-", "expected a mapping")])
    return data


def _check(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(FILE, field, message))

    templates = data.get("templates")
    chosen = data.get("notice_template")
    if not isinstance(templates, Mapping) or chosen not in templates:
        bad("notice_template", "must name an entry of templates")
    else:
        _check_languages(templates, str(chosen), bad)
    campaign = data.get("campaign_template")
    if campaign is not None:  # optional: without it campaign messages wait for the user
        if not isinstance(templates, Mapping) or campaign not in templates:
            bad("campaign_template", "must name an entry of templates")
        elif (templates[campaign] or {}).get("category") != "MARKETING":
            bad(f"templates.{campaign}.category", "a campaign template must be MARKETING "
                "(Meta refuses promotional content in UTILITY templates)")
        else:
            _check_languages(templates, campaign, bad)
    labels = data.get("labels")
    for lang in LANGUAGES.complete:  # a progressive language uses the default's
        entry = labels.get(lang) if isinstance(labels, Mapping) else None
        if not isinstance(entry, Mapping):
            bad(f"labels.{lang}", "missing")
            continue
        button = entry.get("list_button")
        if not isinstance(button, str) or not 1 <= _units(button.strip()) <= LIST_BUTTON_MAX:
            bad(f"labels.{lang}.list_button", f"1 to {LIST_BUTTON_MAX} characters")
        hint = entry.get("numbered_hint")
        if not isinstance(hint, str) or not hint.strip():
            bad(f"labels.{lang}.numbered_hint", "missing")
    return problems


def _check_languages(templates: Mapping[str, Any], chosen: str,
                     bad: Callable[[str, str], None]) -> None:
    languages = (templates[chosen] or {}).get("languages")
    for lang in LANGUAGES.complete:  # a progressive language uses the default's
        entry = languages.get(lang) if isinstance(languages, Mapping) else None
        where = f"templates.{chosen}.languages.{lang}"
        if not isinstance(entry, Mapping):
            bad(where, "missing")
            continue
        if not _NAME.fullmatch(str(entry.get("name", ""))):
            bad(f"{where}.name", "lowercase letters, digits and _ only")
        if not _LANGUAGE_CODE.fullmatch(str(entry.get("code", ""))):
            bad(f"{where}.code", "a WhatsApp language code such as ar, en or en_US")
        parameters = entry.get("parameters") or []
        if not isinstance(parameters, list) or not all(
                isinstance(p, str) and p.strip() for p in parameters):
            bad(f"{where}.parameters", "a list of non-empty texts")


def _units(text: str) -> int:
    """Length as WhatsApp's limits are checked here: UTF-16 units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2
