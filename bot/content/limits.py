"""Limits and closed vocabularies that content is checked against.

The platform limits are checked when content is loaded (and by ``sanad content check``),
never at send time: a module that would be cut off on WhatsApp must fail in CI, not in a
conversation with someone in danger.
"""

from __future__ import annotations

import re
from typing import Final

from bot.languages import LANGUAGES as DECLARED

LANGUAGES: Final[tuple[str, ...]] = DECLARED.codes
"""Declared in bot/languages.py."""
REQUIRED_LANGUAGES: Final[tuple[str, ...]] = DECLARED.complete
"""Every text must exist in these; a progressive language (``complete=False``) may lack any
text or module, which then comes from its declared fallback."""

# --- platform limits -------------------------------------------------------------------
TELEGRAM_MESSAGE_MAX: Final = 4096  # characters (UTF-16 code units) per message
TELEGRAM_CALLBACK_DATA_MAX_BYTES: Final = 64  # bytes of UTF-8 in callback_data
WHATSAPP_REPLY_BUTTON_MAX: Final = 20  # characters in a reply-button title
WHATSAPP_LIST_ROW_TITLE_MAX: Final = 24  # characters in a list row title
WHATSAPP_LIST_ROW_DESCRIPTION_MAX: Final = 72  # characters in a list row description

# --- editorial limits (short messages read on cheap phones) -----------------------------
MODULE_TITLE_MAX: Final = 60
MODULE_MESSAGE_MAX: Final = 600
MODULE_MESSAGES_MIN: Final = 3
MODULE_MESSAGES_MAX: Final = 6
QUIZ_ITEMS_MIN: Final = 1
QUIZ_ITEMS_MAX: Final = 3
QUIZ_STATEMENT_MAX: Final = 300
QUIZ_FEEDBACK_MAX: Final = 400
SERVICE_HELPS_WITH_MAX: Final = 160
SCREENING_QUESTION_MAX: Final = 300
SCREENING_WHY_MAX: Final = 300
SCREENING_ADVICE_MAX: Final = 300
SCREENING_QUESTIONS_MIN: Final = 10
SCREENING_QUESTIONS_MAX: Final = 14
SCREENING_LEVEL_TEXT_MAX: Final = 500
SCREENING_WEIGHT_MIN: Final = 1
SCREENING_WEIGHT_MAX: Final = 5
AGE_OPTION_TITLE_MAX: Final = WHATSAPP_REPLY_BUTTON_MAX
FOLLOW_UP_ANSWER_MAX: Final = 600
FOLLOW_UP_EXAMPLE_MAX: Final = 200
FOLLOW_UP_EXAMPLES_MIN: Final = 4
FOLLOW_UP_EXAMPLES_MAX: Final = 8
FOLLOW_UP_QUESTIONS_MAX: Final = 12

#: The callback data the awareness flow builds for a module's button.
MODULE_CALLBACK_PREFIX: Final = "aw:open:"
#: The callback data of a follow-up answer's "sources" button: ``aw:src:<module>:<question>``.
FOLLOW_UP_CALLBACK_PREFIX: Final = "aw:src:"

# --- identifiers -------------------------------------------------------------------------
MODULE_ID_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
SOURCE_ID_RE: Final = re.compile(r"^[a-z0-9_]{1,64}$")
SERVICE_ID_RE: Final = re.compile(r"^[a-z0-9_]{1,64}$")
INDICATOR_ID_RE: Final = re.compile(r"^[a-z_]+$")
AGE_OPTION_ID_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
FOLLOW_UP_ID_RE: Final = re.compile(r"^[a-z0-9_]{1,24}$")
#: A digit in any script: a text stating a number must cite a source.
DIGIT_RE: Final = re.compile(r"\d")
PHONE_RE: Final = re.compile(r"^[0-9]{3,15}$")
URL_RE: Final = re.compile(r"^https?://\S+$")

# --- closed vocabularies -----------------------------------------------------------------
#: Stable intent names from the public contract (shared/spec/intents.md). Add new intents
#: here when the NLU gains them; a module naming an unknown intent is a typo until then.
KNOWN_INTENTS: Final[frozenset[str]] = frozenset(
    {
        "greet",
        "goodbye",
        "thanks",
        "menu",
        "affirm",
        "deny",
        "learn_trafficking",
        "learn_irregular_migration",
        "check_job_offer",
        "safe_migration",
        "know_rights",
        "start_screening",
        "talk_to_human",
        "emergency",
        "report_concern",
        "find_services",
        "privacy_info",
        "delete_my_data",
        "subscribe",
        "unsubscribe",
        "change_language",
        "out_of_scope",
    }
)

#: Each of these must be the primary (first) intent of exactly one module per language.
LEARNING_INTENTS: Final[tuple[str, ...]] = (
    "learn_trafficking",
    "learn_irregular_migration",
    "check_job_offer",
    "safe_migration",
    "know_rights",
)

QUIZ_ANSWERS: Final[frozenset[str]] = frozenset({"myth", "fact"})

SERVICE_CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "emergency",
        "police",
        "medical",
        "child",
        "women",
        "trafficking",
        "refugees",
        "legal",
        "shelter",
        "psychosocial",
        "returnees",
        "human_rights",
        "crisis",  # mental-health / suicide crisis lines (the safety flow's self-harm reply)
    }
)

SERVICE_CHANNELS: Final[frozenset[str]] = frozenset({"phone", "walk_in", "online", "referral"})

#: ``national`` or one of Egypt's 27 governorates.
SERVICE_AREAS: Final[frozenset[str]] = frozenset(
    {
        "national",
        "alexandria",
        "aswan",
        "asyut",
        "beheira",
        "beni_suef",
        "cairo",
        "dakahlia",
        "damietta",
        "faiyum",
        "gharbia",
        "giza",
        "ismailia",
        "kafr_el_sheikh",
        "luxor",
        "matrouh",
        "minya",
        "monufia",
        "new_valley",
        "north_sinai",
        "port_said",
        "qalyubia",
        "qena",
        "red_sea",
        "sharqia",
        "sohag",
        "south_sinai",
        "suez",
    }
)

SCREENING_GROUPS: Final[frozenset[str]] = frozenset({"exploitation", "migration"})

#: Risk levels from lowest to highest. ``low`` is the level below every threshold.
RISK_LEVELS: Final[tuple[str, ...]] = ("low", "medium", "high", "urgent")

#: Indicator ids the screening flow and its tests rely on.
REQUIRED_INDICATORS: Final[tuple[str, ...]] = (
    "deceived_job",
    "recruitment_debt",
    "documents_retained",
    "not_free_to_leave",
    "violence_threats",
    "wages_withheld",
    "isolation",
    "excessive_hours",
    "abusive_living",
    "smuggler_contact",
    "planned_crossing",
    "departure_soon",
)

#: Pseudo-indicator in red flags: the user chose an age option marked ``minor``.
MINOR_FLAG: Final = "minor"
