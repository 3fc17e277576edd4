"""The referral state table, bad input, roles and scopes, minors, the unsafe-to-contact pause,
erasure, withdrawal and "ask me later": clear errors, nothing leaked, everything audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.messages import Inbound
from bot.store.models import OutboxMessage, User
from bot.store.repository import PAUSED, utcnow
from handoff.models import AuditEntry
from handoff.referrals import partners, states
from handoff.referrals.directory import PartnerDirectory
from handoff.referrals.models import Referral, WebhookDelivery
from handoff.referrals.webhooks import set_webhook
from tests.handoff.conftest import Console, make_case
from tests.referrals.conftest import (
    OTHER,
    SHELTER,
    Person,
    add_partner_accounts,
    call,
    propose_via_api,
)


def test_every_pair_outside_the_table_is_refused() -> None:
    allowed = {(t.source, t.action) for t in states.TRANSITIONS}
    for state in states.STATES:
        for action in states.ACTIONS:
            actor = next(t.actor for t in states.TRANSITIONS if t.action == action)
            if (state, action) in allowed:
                assert states.next_state(state, action, actor).source == state
            else:
                with pytest.raises(states.InvalidTransition):
                    states.next_state(state, action, actor)
    with pytest.raises(states.InvalidTransition, match="only the partner"):
        states.next_state(states.SENT, "accept", states.CASEWORKER)
    with pytest.raises(states.InvalidTransition, match="only the user"):
        states.next_state(states.PROPOSED, "consent", states.PARTNER)
    terminal = set(states.STATES) - set(states.OPEN)
    assert not [t for t in states.TRANSITIONS if t.source in terminal]


async def person_with_case(console: Console, user: str, **case: object) -> tuple[Person, int]:
    case_id = await make_case(console.sanad, user=user, **case)  # type: ignore[arg-type]
    person = Person(console.sanad, user)
    await person.say("hello")  # the chat exists: the bot has somewhere to write to
    return person, case_id


async def consented(console: Console, user: str) -> tuple[Person, int, int]:
    person, case_id = await person_with_case(console, user)
    status, body = await propose_via_api(console, case_id)
    assert status == 201, body
    await person.check_phone()
    await person.say(button=person.phone.button("rc:yes:"))
    return person, case_id, body["id"]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"partner_id": "nowhere"}, "unknown partner"),
    ({"service_id": "police_122"}, "does not offer"),
    ({"urgency": "whenever"}, "urgency must be"),
    ({"fields": []}, "non-empty list"),
    ({"fields": ["passport_number"]}, "unknown fields"),
    ({"fields": ["summary"], "summary": "  "}, "summary is listed in fields but empty"),
    ({"fields": ["contact"], "contact": "x" * 501}, "longer than 500"),
])
async def test_bad_proposals_are_400_and_create_nothing(console_sqlite: Console,
                                                        overrides: dict[str, Any],
                                                        message: str) -> None:
    _, case_id = await person_with_case(console_sqlite, f"bad-{len(message)}")
    status, body = await propose_via_api(console_sqlite, case_id, **overrides)
    assert status == 400 and message in body["error"]
    async with console_sqlite.sanad.store.session() as db:
        assert await db.scalar(select(Referral.id)) is None


async def test_roles_scopes_and_other_caseworkers(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    _, case_id = await person_with_case(console, "roles", status="claimed", assignee="cw2")
    status, body = await propose_via_api(console, case_id, claim=False)
    assert status == 403, "cw1 cannot see cw2's case"
    status, body = await propose_via_api(console, case_id, as_="out", claim=False)
    assert status == 403
    status, body = await call(console, "POST", f"/api/cases/{case_id}/referrals",
                              tokens[SHELTER], {"partner_id": SHELTER})
    assert status == 403, "a partner cannot propose"
    status, _ = await call(console, "GET", f"/api/cases/{case_id}/referrals", tokens[SHELTER])
    assert status == 403, "nor list a case's referrals"
    status, body = await propose_via_api(console, case_id, as_="cw2", claim=False)
    assert status == 201
    directory = PartnerDirectory.load(console.sanad.content)
    async with console.sanad.store.session() as db:
        read_only = await partners.issue_token(db, directory, SHELTER, (partners.READ,))
    status, body = await call(console, "POST", f"/api/referrals/{body['id']}/accept", read_only)
    assert status == 403 and "referrals:write" in body["error"]
    status, _ = await call(console, "GET", "/api/referrals", "sanadp_not-a-real-token")
    assert status == 401


async def test_invalid_transitions_are_409_and_partner_input_400(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    person, case_id = await person_with_case(console, "transitions")
    _, proposed = await propose_via_api(console, case_id)
    rid = proposed["id"]
    status, _ = await call(console, "POST", f"/api/referrals/{rid}/accept", tokens[SHELTER])
    assert status == 404, "a partner does not know of a referral before consent"
    await person.check_phone()
    await person.say(button=person.phone.button("rc:yes:"))
    token = tokens[SHELTER]
    status, body = await call(console, "POST", f"/api/referrals/{rid}/complete", token,
                              {"outcome": "service_delivered"})
    assert status == 409 and "cannot complete a referral that is sent" in body["error"]
    status, body = await call(console, "POST", f"/api/referrals/{rid}/decline", token, {})
    assert status == 400 and "reason" in body["error"]
    status, body = await call(console, "POST", f"/api/referrals/{rid}/decline", token,
                              {"reason": "because"})
    assert status == 400 and "reason must be one of" in body["error"]
    status, body = await call(console, "POST", f"/api/referrals/{rid}/update", token,
                              {"status": "completed"})
    assert status == 400
    assert (await call(console, "POST", f"/api/referrals/{rid}/accept", token))[0] == 200
    assert (await call(console, "POST", f"/api/referrals/{rid}/accept", token))[0] == 409
    status, body = await call(console, "POST", f"/api/referrals/{rid}/update", token,
                              {"status": "in_progress"})
    assert status == 200 and body["status"] == "in_progress"
    status, body = await call(console, "POST", f"/api/referrals/{rid}/decline", token,
                              {"reason": "no_capacity"})
    assert status == 409
    # The caseworker can withdraw now; the partner then loses the fields and is told to stop.
    status, body = await call(console, "POST", f"/api/referrals/{rid}/withdraw",
                              console.tokens["cw1"])
    assert status == 200 and body["status"] == "withdrawn" and body["shared"] is None
    status, body = await call(console, "GET", f"/api/referrals/{rid}", token)
    assert body["shared"] is None and body["instruction"] == "stop"
    assert (await call(console, "POST", f"/api/referrals/{rid}/withdraw",
                       console.tokens["cw1"]))[0] == 409


async def test_a_declined_referral_keeps_no_shared_fields(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    _, _, rid = await consented(console, "declined-by-partner")
    status, body = await call(console, "POST", f"/api/referrals/{rid}/decline",
                              tokens[SHELTER], {"reason": "outside_area"})
    assert status == 200 and body["status"] == "declined" and body["shared"] is None
    assert body["decline_reason"] == "outside_area" and body["task_status"] == "rejected"
    status, other = await call(console, "GET", "/api/referrals", tokens[OTHER])
    assert other == []


async def test_a_minor_can_only_be_referred_to_child_protection(console_sqlite: Console) -> None:
    console = console_sqlite
    person, case_id = await person_with_case(console, "minor", reason="minor")
    status, body = await propose_via_api(console, case_id, partner_id=OTHER,
                                         service_id="iom_egypt")
    assert status == 409 and "child-protection" in body["error"]
    status, body = await propose_via_api(console, case_id, claim=False)
    assert status == 201 and body["minor"] is True
    [question] = await person.check_phone()
    assert "أقل من 18 سنة" in question.text


async def test_the_question_is_held_while_contact_is_paused(console_sqlite: Console) -> None:
    console = console_sqlite
    person, case_id = await person_with_case(console, "paused")
    key = console.sanad.store.user_ref("terminal", "paused").key
    async with console.sanad.store.session() as db:
        await db.execute(update(User).where(User.key == key).values(contact_paused_at=utcnow()))
    status, _ = await propose_via_api(console, case_id)
    assert status == 201
    assert await person.check_phone() == []
    async with console.sanad.store.session() as db:
        statuses = list(await db.scalars(select(OutboxMessage.status).where(
            OutboxMessage.kind == "caseworker")))
    assert statuses == [PAUSED]


async def test_later_then_ask_again_old_buttons_stop_counting(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    person, case_id = await person_with_case(console, "later")
    _, proposed = await propose_via_api(console, case_id)
    await person.check_phone()
    old_yes = person.phone.button("rc:yes:")
    turn = await person.say(button=person.phone.button("rc:later:"))
    assert "هنسألك تاني" in turn.outbound[0].text
    _, body = await call(console, "GET", f"/api/referrals/{proposed['id']}",
                         console.tokens["cw1"])
    assert body["status"] == "proposed" and body["consent_answer"] == "later"
    status, _ = await call(console, "POST", f"/api/referrals/{proposed['id']}/ask",
                           console.tokens["cw1"])
    assert status == 200
    await person.check_phone()
    new_yes = person.phone.button("rc:yes:")
    assert new_yes != old_yes
    await person.say(button=old_yes)
    assert (await call(console, "GET", "/api/referrals", tokens[SHELTER]))[1] == []
    await person.say(button=new_yes)
    [sent] = (await call(console, "GET", "/api/referrals", tokens[SHELTER]))[1]
    assert sent["status"] == "sent"
    async with console.sanad.store.session() as db:
        stale = await db.scalar(select(AuditEntry.id).where(
            AuditEntry.action == "referral.stale_answer"))
    assert stale is not None


async def test_another_persons_button_changes_nothing(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    victim, case_id = await person_with_case(console, "owner")
    await propose_via_api(console, case_id)
    await victim.check_phone()
    stolen = victim.phone.button("rc:yes:")
    intruder = Person(console.sanad, "intruder")
    await intruder.say("hello")
    await intruder.say(button=stolen)
    assert (await call(console, "GET", "/api/referrals", tokens[SHELTER]))[1] == []


async def test_erasure_ends_consent_and_refuses_new_referrals(console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    async with console.sanad.store.session() as db:
        await set_webhook(db, console.sanad.store.cipher, SHELTER, "https://example.org/hook")
    _person, case_id, rid = await consented(console, "erased")
    ref = console.sanad.store.user_ref("terminal", "erased")
    await console.sanad.engine.handle_turn(Inbound(user=ref, button_id="pv:delete"))
    turn = await console.sanad.engine.handle_turn(Inbound(user=ref, button_id="pv:delete:yes"))
    assert any(e.name == "DataErased" for e in turn.events)
    [seen] = (await call(console, "GET", "/api/referrals", tokens[SHELTER]))[1]
    assert seen["status"] == "consent_withdrawn" and seen["shared"] is None
    assert [s["detail"] for s in seen["steps"]] == [None, None], "not told why consent ended"
    async with console.sanad.store.session() as db:
        events = list(await db.scalars(select(WebhookDelivery.event)
                                       .where(WebhookDelivery.status == "pending")))
        referral = await db.get(Referral, rid)
        assert referral is not None and referral.shared_enc is None
    assert events == ["referral.consent_withdrawn"], "the sent hook is cancelled, stop owed"
    status, _body = await propose_via_api(console, case_id, claim=False)
    assert status == 409


async def test_retention_clears_shared_fields_of_long_ended_referrals(
        console_sqlite: Console) -> None:
    console = console_sqlite
    tokens = await add_partner_accounts(console)
    _, _, old = await consented(console, "retention-old")
    _, _, fresh = await consented(console, "retention-fresh")
    for rid in (old, fresh):
        await call(console, "POST", f"/api/referrals/{rid}/accept", tokens[SHELTER])
        status, body = await call(console, "POST", f"/api/referrals/{rid}/complete",
                                  tokens[SHELTER], {"outcome": "service_delivered"})
        assert status == 200, body
    async with console.sanad.store.session() as db:
        await db.execute(update(Referral).where(Referral.id == old)
                         .values(closed_at=utcnow() - timedelta(days=200)))
    purged = await console.sanad.store.purge_expired(90)
    assert purged["referrals.shared_enc"] == 1
    listed = {r["id"]: r for r in (await call(console, "GET", "/api/referrals",
                                              tokens[SHELTER]))[1]}
    assert listed[old]["shared"] is None and listed[old]["status"] == "completed"
    assert listed[fresh]["shared"] is not None


async def test_a_partner_session_uses_the_api_with_its_csrf_token(
        console_sqlite: Console) -> None:
    console = console_sqlite
    await add_partner_accounts(console)
    _, _, rid = await consented(console, "session-api")
    shelter = await console.browser(login_as="shelter1")
    await shelter.get("/console/partner")
    listed = await shelter.request("GET", "/api/referrals")
    assert listed.status == 200 and [r["id"] for r in await listed.json()] == [rid]
    refused = await shelter.request("POST", f"/api/referrals/{rid}/accept")
    assert refused.status == 403, "a session POST needs X-CSRF-Token"
    accepted = await shelter.request("POST", f"/api/referrals/{rid}/accept",
                                     headers={"X-CSRF-Token": shelter.csrf})
    assert accepted.status == 200 and (await accepted.json())["status"] == "accepted"
    unlinked = await console.browser(login_as="out")
    assert (await unlinked.request("GET", "/api/referrals")).status == 403
