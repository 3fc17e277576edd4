"""Service details in canned replies (issue #20): ``{service:ID.FIELD}`` is filled from the
verified services of ``content/services.yml`` in the case's language; a placeholder that cannot
be filled is refused when a supervisor saves it and never reaches a person raw."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import update

from bot.app import Sanad
from bot.store.models import Case
from handoff.placeholders import PlaceholderError, fill
from handoff.relay import thread
from tests.handoff.conftest import Console, make_case
from tests.handoff.test_canned_replies import offered, text_id


def test_filled_from_verified_services_in_the_language(sanad_sqlite: Sanad) -> None:
    content = sanad_sqlite.content
    text = "{service:child_helpline_16000.name}: {service:child_helpline_16000.phone}"
    assert fill(content, text, "ar") == "خط نجدة الطفل: 16000"
    assert fill(content, text, "en") == "Child Helpline: 16000"
    assert fill(content, "{service:child_helpline_16000.hours}", "fr") == "24 h/24, 7 j/7"
    assert fill(content, "{service:iom_egypt.url}", "ar") == "https://egypt.iom.int/"
    assert fill(content, "no placeholder {here}", "ar") == "no placeholder {here}"
    refused = {
        "{service:gsmhat_16328.phone}": "service",  # in the file, not verified
        "{service:no_such_service.phone}": "service",
        "{service:police_122.address}": "field",  # the directory has no addresses
        "{service:police_122.url}": "missing",
        "{service:police_122}": "syntax",
        "{service: police_122.phone}": "syntax",
        "call {service:police_122.phone": "syntax",
    }
    for text, reason in refused.items():
        with pytest.raises(PlaceholderError) as caught:
            fill(content, text, "ar")
        assert caught.value.reason == reason, text


async def test_refused_when_saved_and_filled_when_offered_and_sent(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")  # an Arabic case
    sup, cw1 = await inbox.browser("sup"), await inbox.browser("cw1")
    page = await (await sup.get("/console/canned?lang=en")).text()
    assert "child_helpline_16000" in page and "gsmhat_16328" not in page, "verified ones only"

    unverified = await sup.post("/console/canned", {
        "key": "shelter", "language": "ar", "title": "مأوى",
        "text": "كلم {service:gsmhat_16328.phone}"})
    assert unverified.status == 422
    body = html.unescape(await unverified.text())
    assert "{service:gsmhat_16328.phone}" in body and 'role="alert"' in body
    assert "كلم {service:gsmhat_16328.phone}</textarea>" in body, "the draft is kept"
    assert "shelter" not in await offered(cw1, case_id)

    added = await sup.post("/console/canned", {
        "key": "child_line", "language": "ar", "title": "خط الطفل",
        "text": "كلم {service:child_helpline_16000.name} على "
                "{service:child_helpline_16000.phone}."})
    assert added.headers["Location"].endswith("notice=canned_added")
    expected = "كلم خط نجدة الطفل على 16000."
    assert (await offered(cw1, case_id))["child_line"][1] == expected

    row = await text_id(sanad, "child_line", "ar")
    bad_edit = await sup.post(f"/console/canned/{row}/edit", {
        "title": "خط الطفل", "text": "{service:child_helpline_16000.address}"})
    assert bad_edit.status == 422
    assert "{service:child_helpline_16000.address}" in html.unescape(await bad_edit.text())
    assert (await offered(cw1, case_id))["child_line"][1] == expected, "nothing saved"

    await cw1.get(f"/console/cases/{case_id}")
    sent = await cw1.post(f"/console/cases/{case_id}/reply", {"canned": "child_line", "text": ""})
    assert sent.headers["Location"].endswith("notice=sent")
    typed = await cw1.post(f"/console/cases/{case_id}/reply",
                           {"text": "الإسعاف {service:ambulance_123.phone}"})
    assert typed.headers["Location"].endswith("notice=sent")
    raw = await cw1.post(f"/console/cases/{case_id}/reply",
                         {"text": "اتصل بـ {service:gsmhat_16328.phone}"})
    assert raw.headers["Location"].endswith("notice=reply_placeholder")
    async with sanad.store.session() as db:
        messages = await thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert [m.text for m in messages] == [expected, "الإسعاف 123"], "never sent raw"

    async with sanad.store.session() as db:  # the same reply for an English case: not offered
        await db.execute(update(Case).where(Case.id == case_id).values(language="en"))
    assert "child_line" not in await offered(cw1, case_id), "no English text was added"


async def test_a_service_unverified_after_saving_is_not_offered_or_sent(
    inbox: Console, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    sup, cw1 = await inbox.browser("sup"), await inbox.browser("cw1")
    await sup.get("/console/canned")
    await sup.post("/console/canned", {"key": "iom", "language": "ar", "title": "IOM",
                                       "text": "{service:iom_egypt.url}"})
    assert "iom" in await offered(cw1, case_id)
    library = type(sanad.content)
    real = library.service
    monkeypatch.setattr(library, "service", lambda self, service_id: None
                        if service_id == "iom_egypt" else real(self, service_id))
    assert "iom" not in await offered(cw1, case_id)
    refused = await cw1.post(f"/console/cases/{case_id}/reply", {"canned": "iom", "text": ""})
    assert refused.headers["Location"].endswith("notice=invalid")
    async with sanad.store.session() as db:
        assert await thread(db, cipher=sanad.store.cipher, case_id=case_id) == []


async def test_the_api_fills_or_refuses_too(inbox: Console) -> None:
    sanad = inbox.sanad
    case_id = await make_case(sanad, status="claimed", assignee="cw1")
    auth = {"Authorization": f"Bearer {inbox.tokens['cw1']}"}
    client = await inbox.browser()
    refused = await client.request("POST", f"/api/cases/{case_id}/messages",
                                   json={"text": "{service:gsmhat_16328.phone}"}, headers=auth)
    assert refused.status == 422
    assert "{service:gsmhat_16328.phone}" in (await refused.json())["error"]
    sent = await client.request("POST", f"/api/cases/{case_id}/messages",
                                json={"text": "{service:police_122.name} 122"}, headers=auth)
    assert sent.status == 201
    async with sanad.store.session() as db:
        messages = await thread(db, cipher=sanad.store.cipher, case_id=case_id)
    assert [m.text for m in messages] == ["شرطة النجدة 122"]
