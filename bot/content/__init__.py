"""Sanad's content as validated data: awareness modules, referral services, screening.

All user-facing text lives in ``content/`` (YAML); this package only loads and checks it.
"""

from __future__ import annotations

from .check import check
from .followups import FollowUpMatch
from .limits import LANGUAGES
from .loader import DEFAULT_CONTENT_ROOT, ContentLibrary
from .models import (
    AgeOption,
    ContentError,
    FollowUp,
    Module,
    ModuleMessage,
    Problem,
    QuizItem,
    RedFlag,
    ScreeningQuestion,
    ScreeningSpec,
    Service,
    Source,
)

__all__ = [
    "DEFAULT_CONTENT_ROOT",
    "LANGUAGES",
    "AgeOption",
    "ContentError",
    "ContentLibrary",
    "FollowUp",
    "FollowUpMatch",
    "Module",
    "ModuleMessage",
    "Problem",
    "QuizItem",
    "RedFlag",
    "ScreeningQuestion",
    "ScreeningSpec",
    "Service",
    "Source",
    "check",
]
