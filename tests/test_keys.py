"""Key rotation: everything sealed with the old key is re-sealed and readable with the new one
alone, and users keep their pseudonymous ids. Users' data keys are re-wrapped, and what they
seal is left as it is (and still opens)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from bot.app import build
from bot.messages import Inbound
from bot.store.crypto import FieldCipher, is_user_sealed
from bot.store.keys import context_of, rotate, sealed_columns
from bot.store.models import UserKey
from bot.store.user_keys import unwrap
from nlu import EmbeddedNLU
from tests.conftest import make_settings

OLD, NEW = b"the-old-key-0123456789abcdef", b"the-new-key-0123456789abcdef"


async def test_rotation_reseals_every_encrypted_column(tmp_path: Path,
                                                       embedded_nlu: EmbeddedNLU) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    before = replace(make_settings(url), secret_key=OLD)
    app = await build(before, nlu=embedded_nlu)
    ref = app.store.user_ref("terminal", "rotating")
    for step in ({"text": "hello"}, {"button_id": "menu:check"}, {"button_id": "sc:consent:yes"},
                 {"button_id": "sc:age:18_24"}, *[{"text": "yes"}] * 13,
                 {"button_id": "sc:handoff:yes"}, {"text": "my secret story"}):
        await app.engine.handle_turn(Inbound(user=ref, **step), address="rotating")
    await app.aclose()

    rotated = replace(before, secret_key=NEW, old_secret_keys=(OLD,), pseudonym_key=OLD)
    app = await build(rotated, nlu=embedded_nlu)
    counts = await rotate(app.store)
    assert counts["user_keys.key_enc"] == 1
    # Sealed under the user's data key: the master key's rotation leaves them be.
    assert counts["users.address_enc"] == 0 and counts["outbox.payload_enc"] == 0
    assert counts["sessions.data_enc"] == 0 and counts["screening_results.answers_enc"] == 0
    assert counts["case_messages.text_enc"] == 0 and counts["cases.indicators_enc"] == 0
    assert sum((await rotate(app.store)).values()) == 0, "a second run has nothing left to do"
    await app.aclose()

    after = replace(before, secret_key=NEW, old_secret_keys=(), pseudonym_key=OLD)
    app = await build(after, nlu=embedded_nlu)
    only_new = FieldCipher(NEW)
    async with app.store.session() as db:
        [wrapped] = (await db.scalars(select(UserKey.key_enc))).all()
        data_key = unwrap(only_new, wrapped)
        opened = 0
        for table, column in sealed_columns():
            for blob in await db.scalars(select(column).where(column.is_not(None))):
                cipher = data_key if is_user_sealed(blob) else only_new
                cipher.decrypt(blob, context=context_of(table, column))
                opened += is_user_sealed(blob)
        assert opened >= 4, "the user's own rows open through the re-wrapped data key"
    turn = await app.engine.handle_turn(
        Inbound(user=app.store.user_ref("terminal", "rotating"), text="/mydata"))
    assert "open" in turn.outbound[0].text, "same user, same open case after rotation"
    await app.aclose()
