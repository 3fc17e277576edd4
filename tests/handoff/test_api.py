"""The JSON API on bad input: always a 4xx with a reason, never a 500."""

from __future__ import annotations

import pytest

from handoff import relay
from tests.handoff.conftest import Console, make_case


@pytest.mark.parametrize(("path", "body", "status"), [
    ("messages", b"not json", 400),
    ("messages", b"[1, 2]", 400),
    ("messages", b'{"text": 5}', 400),
    ("messages", b'{"text": "   "}', 400),
    ("messages", b'{"text": "' + b"x" * 3001 + b'"}', 400),
    ("messages", b"\xff\xfe", 400),
    ("close", b'{"outcome": "whatever"}', 400),
    ("close", b"{}", 400),
    ("close", b"", 400),
])
async def test_bad_bodies_are_400(console: Console, path: str, body: bytes,
                                  status: int) -> None:
    case_id = await make_case(console.sanad, status="claimed", assignee="cw1")
    client = await console.browser()
    response = await client.request(
        "POST", f"/api/cases/{case_id}/{path}", data=body,
        headers={"Authorization": f"Bearer {console.tokens['cw1']}",
                 "Content-Type": "application/json"})
    assert response.status == status
    assert "error" in await response.json()


@pytest.mark.parametrize("path", [
    "/api/cases/0", "/api/cases/99999999999999999", "/api/cases/1234567890123456789012",
    "/api/cases/-1", "/api/cases/abc/messages", "/api/cases/%00",
])
async def test_odd_ids_are_404(console: Console, path: str) -> None:
    client = await console.browser()
    response = await client.request(
        "GET", path, headers={"Authorization": f"Bearer {console.tokens['sup']}"})
    assert response.status == 404


async def test_a_reply_round_trip(console: Console) -> None:
    case_id = await make_case(console.sanad)
    auth = {"Authorization": f"Bearer {console.tokens['cw1']}"}
    client = await console.browser()
    early = await client.request("POST", f"/api/cases/{case_id}/messages",
                                 json={"text": "hi"}, headers=auth)
    assert early.status == 409, "claim first"
    assert (await client.request("POST", f"/api/cases/{case_id}/claim", headers=auth)).status \
        == 200
    sent = await client.request("POST", f"/api/cases/{case_id}/messages",
                                json={"text": "مرحبا، أنا هنا"}, headers=auth)
    assert sent.status == 201
    thread = await (await client.request("GET", f"/api/cases/{case_id}/messages",
                                         headers=auth)).json()
    assert [(m["from"], m["text"]) for m in thread] == [("caseworker", "مرحبا، أنا هنا")]
    assert set(thread[0]) == {"from", "text", "at", "status"}
    assert thread[0]["status"] in ("queued", "sent")
    detail = await (await client.request("GET", f"/api/cases/{case_id}", headers=auth)).json()
    assert detail["status"] == "claimed" and detail["alias"].startswith("S-")
    assert {"priority", "risk_level", "indicators", "language", "channel"} <= set(detail)
    closed = await client.request("POST", f"/api/cases/{case_id}/close",
                                  json={"outcome": "advice_given"}, headers=auth)
    assert closed.status == 200
    late = await client.request("POST", f"/api/cases/{case_id}/messages",
                                json={"text": "hi"}, headers=auth)
    assert late.status == 409
    again = await client.request("POST", f"/api/cases/{case_id}/close",
                                 json={"outcome": "other"}, headers=auth)
    assert again.status == 409
    async with console.sanad.store.session() as db:
        assert len(await relay.thread(db, cipher=console.sanad.store.cipher,
                                      case_id=case_id)) == 1


async def test_the_list_matches_the_cli_shape_and_the_role(console: Console) -> None:
    mine = await make_case(console.sanad, status="claimed", assignee="cw1")
    theirs = await make_case(console.sanad, status="claimed", assignee="cw2")
    waiting = await make_case(console.sanad, priority="urgent")
    client = await console.browser()

    async def ids(name: str) -> list[int]:
        response = await client.request(
            "GET", "/api/cases", headers={"Authorization": f"Bearer {console.tokens[name]}"})
        body = await response.json()
        assert all(set(c) == {"id", "alias", "status", "priority", "risk_level", "indicators",
                              "language", "channel", "created_at", "claimed_at", "assignee",
                              "contact_paused", "trigger", "labels", "waiting_since",
                              "last_user_message_at", "unanswered", "window"}
                   for c in body)
        return [c["id"] for c in body]

    assert await ids("cw1") == [waiting, mine]
    assert await ids("sup") == [waiting, mine, theirs]
