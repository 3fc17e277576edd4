"""Conversation flows: one module per flow, each with named states (``screening.q.<id>``) and
its ways in declared beside it (``routes``: commands, intents, whether it keeps the user's
place; bot.flows.routes). A new flow is its module plus one entry in :func:`default_flows`."""

from __future__ import annotations

from bot.flows.awareness import AwarenessFlow
from bot.flows.base import Flow, FlowRegistry, Step, TurnContext
from bot.flows.contact import ContactFlow
from bot.flows.emergency import EmergencyFlow
from bot.flows.exit import ExitFlow
from bot.flows.handoff import HandoffFlow
from bot.flows.language import LanguageFlow
from bot.flows.menu import MenuFlow
from bot.flows.privacy import PrivacyFlow
from bot.flows.referral_consent import ReferralConsentFlow
from bot.flows.safety import SafetyFlow
from bot.flows.screening import ScreeningFlow
from bot.flows.services import ServicesFlow
from bot.flows.subscribe import SubscribeFlow


def default_flows() -> list[Flow]:
    return [
        MenuFlow(), LanguageFlow(), AwarenessFlow(), ScreeningFlow(), EmergencyFlow(),
        ServicesFlow(), PrivacyFlow(), HandoffFlow(), ExitFlow(), SubscribeFlow(), SafetyFlow(),
        ContactFlow(), ReferralConsentFlow(),
    ]


__all__ = ["Flow", "FlowRegistry", "Step", "TurnContext", "default_flows"]
