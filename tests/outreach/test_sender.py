"""The delivery loop: exactly once per recipient, at the configured rate, honouring 429s."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, select

from bot.outreach.message_file import footer
from bot.outreach.models import SendRate
from bot.outreach.sender import CampaignSender
from bot.store.models import OutboxMessage, Subscription, User
from bot.store.repository import Store
from tests.outreach.conftest import FakeDeliverer, add_users, new_campaign, start
from tests.outreach.helpers import delivery_statuses, fast, run_senders


async def test_every_opted_in_user_gets_the_campaign_once_at_the_rate(
        sqlite_store: Store) -> None:
    ids = await add_users(sqlite_store, 500)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    fake = FakeDeliverer()
    rate = 250.0  # ~2 s: one scheduler hiccup at either end cannot move the figure by 5 %
    sender = CampaignSender(sqlite_store, "telegram", fake, fast(rate))

    await run_senders(sqlite_store, campaign_id, sender)

    assert sorted(Counter(fake.addresses).values()) == [1] * len(ids)
    print(f"achieved {fake.achieved_rate():.1f} msg/s of {rate:.0f}")
    # Never faster than the rate; how close it gets is bench/broadcast.py's figure, not a test's.
    assert 0.5 * rate <= fake.achieved_rate() <= 1.05 * rate
    assert await delivery_statuses(sqlite_store, campaign_id) == {"sent": 500}
    assert {text for _, text, _ in fake.sent} == {f"رسالة توعية\n\n{footer('ar')}"}


async def test_only_opted_in_reachable_users_are_messaged(store: Store) -> None:
    wanted = await add_users(store, 5, prefix="in")
    await add_users(store, 4, prefix="never", subscribed=False)
    left = await add_users(store, 3, prefix="left")
    await add_users(store, 2, prefix="blocked", unreachable=True)
    late = await add_users(store, 2, prefix="late")
    async with store.session() as db:  # opted out before the campaign
        await db.execute(delete(Subscription).where(Subscription.user_id.in_(left)))
    campaign_id = await new_campaign(store)
    await start(store)
    from bot.outreach.targeting import target_all

    await target_all(store, campaign_id)
    async with store.session() as db:  # opted out after targeting, before the send
        await db.execute(delete(Subscription).where(Subscription.user_id.in_(late)))
    fake = FakeDeliverer()
    sender = CampaignSender(store, "telegram", fake, fast(200))

    await run_senders(store, campaign_id, sender)

    assert sorted(fake.addresses) == sorted(f"in{n}" for n in range(5))
    assert await delivery_statuses(store, campaign_id) == {"sent": len(wanted), "skipped": 2}


async def test_flood_control_pauses_the_channel_for_everybody(sqlite_store: Store) -> None:
    await add_users(sqlite_store, 120)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    fake = FakeDeliverer(flood_on_calls={30, 80}, flood_seconds=0.3)
    sender = CampaignSender(sqlite_store, "telegram", fake,
                            fast(400))

    await run_senders(sqlite_store, campaign_id, sender)

    assert sorted(Counter(fake.addresses).values()) == [1] * 120
    assert sender.stats.rate_limited == 2
    for flood in fake.floods:  # nothing was accepted during a pause
        assert not [t for _, _, t in fake.sent if flood < t < flood + 0.29]
    async with sqlite_store.session() as db:
        assert (await db.get(SendRate, "telegram")) is not None
        assert set(await db.scalars(select(OutboxMessage.attempts))) == {1}


async def test_blocked_users_are_recorded_and_become_unreachable(sqlite_store: Store) -> None:
    ids = await add_users(sqlite_store, 10)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    fake = FakeDeliverer(blocked={"u3", "u7"}, fail_once={"u5"})
    sender = CampaignSender(sqlite_store, "telegram", fake,
                            fast(200, max_backoff=0.1))

    await run_senders(sqlite_store, campaign_id, sender)

    assert sorted(fake.addresses) == sorted(f"u{n}" for n in range(10) if n not in (3, 7))
    assert await delivery_statuses(sqlite_store, campaign_id) == {"sent": 8, "blocked": 2}
    async with sqlite_store.session() as db:
        unreachable = set(await db.scalars(select(User.id).where(User.unreachable)))
    assert unreachable == {ids[3], ids[7]}


async def test_recipients_get_their_language_or_the_first_one(sqlite_store: Store) -> None:
    await add_users(sqlite_store, 2, language="en", prefix="en")
    await add_users(sqlite_store, 2, language="fr", prefix="fr")
    await add_users(sqlite_store, 1, language=None, prefix="none")
    campaign_id = await new_campaign(sqlite_store, texts={"en": "Hello", "ar": "مرحبا"})
    await start(sqlite_store)
    fake = FakeDeliverer()

    await run_senders(sqlite_store, campaign_id, CampaignSender(
        sqlite_store, "telegram", fake, fast(200)))

    texts = {address: text.split("\n\n")[0] for address, text, _ in fake.sent}
    assert texts == {"en0": "Hello", "en1": "Hello", "fr0": "Hello", "fr1": "Hello",
                     "none0": "مرحبا"}
    assert {address: text.split("\n\n")[1] for address, text, _ in fake.sent}["none0"] == (
        footer("ar"))


async def test_a_row_sealed_with_a_retired_key_fails_alone(sqlite_store: Store) -> None:
    from bot.outreach.targeting import target_all
    from bot.store.crypto import FieldCipher

    ids = await add_users(sqlite_store, 6)
    campaign_id = await new_campaign(sqlite_store)
    await start(sqlite_store)
    await target_all(sqlite_store, campaign_id)
    retired = FieldCipher(b"a-key-that-is-no-longer-configured-0123456789")
    async with sqlite_store.session() as db:
        user = await db.get(User, ids[0])
        assert user is not None
        user.address_enc = retired.encrypt_text("someone", context=b"users.address")
    fake = FakeDeliverer()

    await run_senders(sqlite_store, campaign_id,
                      CampaignSender(sqlite_store, "telegram", fake, fast(200)))

    assert len(fake.addresses) == 5  # the others were not held up
    assert await delivery_statuses(sqlite_store, campaign_id) == {"sent": 5, "failed": 1}
