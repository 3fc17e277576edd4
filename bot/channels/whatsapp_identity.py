"""Which user a WhatsApp sender is: phone numbers, business-scoped user ids, and their changes.

Users are keyed by an HMAC of their platform id. On WhatsApp that id has been the phone number;
since April 2026 Meta adds a business-scoped user id (BSUID, ``user_id`` / ``from_user_id``)
to every message, and a user who turns on a username may arrive with the BSUID alone (Meta,
"Business-scoped user IDs": developers.facebook.com/documentation/business-messaging/whatsapp/
business-scoped-user-ids/). The choice here, continuity first:

* a phone number, when there is one, keys the user exactly as before (no new lookup for a
  phone-only message: phone users are untouched);
* a BSUID alone keys a new user by the BSUID, unless we have seen that BSUID *with* a user
  before: every message that names a BSUID teaches us whose it is (``whatsapp_identities``),
  so someone first known by their number stays themselves when Meta hides the number, and
  someone first known by their BSUID stays themselves when the number appears;
* ``user_changed_number`` / ``user_changed_user_id`` system messages name the old and the new
  ids (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/
  messages/system/): the user is re-keyed to the new id and reached there, unless the new id
  already has a conversation of its own (then both stay as they are: merging two people's
  histories on a guess would be worse than a fresh start).

Answers go to the phone number when the message carried one (Meta recommends it), else to the
BSUID through the ``recipient`` field (:mod:`bot.channels.whatsapp_send`). Known owners are
cached in the process (a bounded map of keyed hashes): one read per BSUID user and process.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from bot.channels.whatsapp_payload import IdentityChange
from bot.channels.whatsapp_store import (
    CHANNEL,
    existing_user,
    forget_identity,
    identity_owner,
    move_user,
    remember_identity,
)
from bot.messages import UserRef
from bot.store.repository import Store

log = logging.getLogger(__name__)

CACHE_SIZE = 100_000
"""Owners remembered per process (two keyed hashes each, about 200 bytes)."""


class Identities:
    def __init__(self, store: Store, *, cache_size: int = CACHE_SIZE) -> None:
        self.store = store
        self.cache_size = cache_size
        self._owner: OrderedDict[str, str] = OrderedDict()

    def key(self, platform_id: str) -> str:
        return self.store.user_ref(CHANNEL, platform_id).key

    async def resolve(self, phone: str | None, bsuid: str | None) -> UserRef:
        """The user behind a sender (raises ``DatabaseUnavailable`` if it must look and can't)."""
        if bsuid is None:
            return UserRef(CHANNEL, self.key(phone or ""))
        alias = self.key(bsuid)
        owner = self._owner.get(alias) or await identity_owner(self.store, alias)
        if owner is None:
            owner = self.key(phone) if phone else alias
        return UserRef(CHANNEL, owner)

    async def learn(self, user: UserRef, bsuid: str | None) -> None:
        """After a turn: this BSUID is this user's (a write once per user and process)."""
        if bsuid is None:
            return
        alias = self.key(bsuid)
        if self._owner.get(alias) == user.key:
            self._owner.move_to_end(alias)
            return
        if await remember_identity(self.store, alias, user.key):
            self._remember(alias, user.key)

    async def change(self, change: IdentityChange) -> bool:
        """Carry a user over to their new id; False when there was nobody to carry."""
        old_alias = self.key(change.old_bsuid) if change.old_bsuid else None
        owner = await identity_owner(self.store, old_alias) if old_alias else None
        if owner is None:
            candidates = [self.key(i) for i in (change.old_phone, change.old_bsuid) if i]
            owner = await existing_user(self.store, candidates)
        if owner is None:
            return False  # never wrote to us under the old id: nothing to carry over
        target, address = owner, None
        if change.new_phone:
            target, address = self.key(change.new_phone), change.new_phone
        elif change.new_bsuid and owner == old_alias:  # keyed by the BSUID that changed
            target, address = self.key(change.new_bsuid), change.new_bsuid
        if target != owner:
            if not await move_user(self.store, owner, target, address or ""):
                log.info("whatsapp: %s for an id that already has a conversation; both kept",
                         change.kind)
                return False
            owner = target
        if change.new_bsuid:
            new_alias = self.key(change.new_bsuid)
            await remember_identity(self.store, new_alias, owner, replace=True)
            self._remember(new_alias, owner)
        if old_alias and old_alias != (self.key(change.new_bsuid) if change.new_bsuid else None):
            await forget_identity(self.store, old_alias)
            self._owner.pop(old_alias, None)
        log.info("whatsapp: a user's id changed (%s); conversation carried over", change.kind)
        return True

    def _remember(self, alias: str, owner: str) -> None:
        self._owner[alias] = owner
        self._owner.move_to_end(alias)
        while len(self._owner) > self.cache_size:
            self._owner.popitem(last=False)
