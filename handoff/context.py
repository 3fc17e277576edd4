"""What the handoff web routes share, kept on the aiohttp app (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from bot.app import Sanad
from bot.content import ContentLibrary
from bot.i18n import UiCatalog
from bot.store.crypto import FieldCipher
from bot.store.repository import Store
from handoff.auth import AuthPolicy, Passwords
from handoff.clients import TrustedProxies
from handoff.texts import CannedReply, ConsoleText


@dataclass(frozen=True)
class HandoffContext:
    sanad: Sanad
    texts: ConsoleText
    canned: tuple[CannedReply, ...]
    passwords: Passwords
    policy: AuthPolicy
    templates: jinja2.Environment
    proxies: TrustedProxies = field(default_factory=TrustedProxies)

    @property
    def store(self) -> Store:
        return self.sanad.store

    @property
    def cipher(self) -> FieldCipher:
        return self.sanad.store.cipher

    @property
    def ui(self) -> UiCatalog:
        return self.sanad.ui

    @property
    def content(self) -> ContentLibrary:
        return self.sanad.content


HANDOFF = web.AppKey("handoff", HandoffContext)


def context_of(request: web.Request) -> HandoffContext:
    return request.app[HANDOFF]
