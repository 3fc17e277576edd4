"""A fake WhatsApp Cloud API (Graph API) on 127.0.0.1 that the real channel talks to.

It speaks the wire format of ``POST /{version}/{phone_number_id}/messages``: a bearer token,
``messaging_product: "whatsapp"``, the text / interactive (button, list) / template / read-receipt
bodies, Meta's success answer (``messages[0].id``, a ``wamid`` that embeds the recipient's number
as real ones do) and Meta's error object (``error.code``, ``error_data.details`` quoting the
number, so tests can prove it never reaches a log). It validates what Meta validates and we care
about (4096-character texts, 1024-character bodies, 3 buttons of 20, 10 rows of 24, unique ids
and titles), records every call, and can be told to fail the next N calls with a Graph error
code (130429, 131047, 131026, ...) or a bare 5xx.

Recipients are a phone number in ``to`` or, for a user known only by a business-scoped user
id, the BSUID in ``recipient`` (Meta: "Business-scoped user IDs", section "Messages",
developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/):
``to`` wins when both are given; the answer's ``contacts[]`` carries ``user_id`` instead of
``wa_id`` for a BSUID send.

Like Meta, it can accept a message and report its failure later: :meth:`FakeGraphAPI.fail_later`
queues ``failed`` statuses (with ``errors[]``, as the status webhook carries them) that it POSTs,
signed with the app secret, to the webhook given to :meth:`FakeGraphAPI.report_to`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import aiohttp
import orjson
from aiohttp import web

TOKEN = "EAAG-fake-token"
PHONE_NUMBER_ID = "109876543210"
DISPLAY_NUMBER = "15550001234"
WABA_ID = "102290129340398"
VERSION = "v21.0"
_SERVER_CODES = frozenset({1, 2, 131000, 131016, 133004})
BSUID = re.compile(r"[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}")


@dataclass(frozen=True)
class Call:
    phone_number_id: str
    payload: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float
    peer: str = ""
    """The client's address and port: equal for calls over one kept-alive connection."""

    @property
    def kind(self) -> str:
        """``text``, ``interactive``, ``template`` or ``read`` (a read receipt)."""
        return "read" if self.payload.get("status") == "read" else str(self.payload.get("type"))

    @property
    def wamid(self) -> str | None:
        messages = self.response.get("messages") or [{}]
        return messages[0].get("id")

    @property
    def to(self) -> str:
        return address(self.payload)


@dataclass
class Fault:
    remaining: int
    code: int | None
    http_status: int
    kinds: frozenset[str] | None

    def matches(self, kind: str) -> bool:
        return self.remaining > 0 and (self.kinds is None or kind in self.kinds)


@dataclass
class Report:
    """A status webhook the fake sent (or will send), and the webhook's HTTP answer."""

    wamid: str
    code: int
    body: dict[str, Any]
    answer: int | None = None


class Invalid(Exception):
    """The request breaks a Cloud API rule: answered like Meta (400, code 131009/100)."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass
class FakeGraphAPI:
    token: str = TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    latency: float = 0.0
    on_call: Callable[[Call], None] | None = None
    calls: list[Call] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _late: list[Fault] = field(default_factory=list)
    hold_reports: bool = False
    """Keep status webhooks until :meth:`release_reports` (Meta's "later" made explicit)."""
    _webhook: tuple[str, str] | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    # --- control -----------------------------------------------------------------------
    def fail_next(self, count: int = 1, *, code: int | None = 130429,
                  http_status: int | None = None, kinds: tuple[str, ...] | None = None) -> None:
        """Answer the next ``count`` calls (of these kinds) with an error instead."""
        if http_status is None:
            http_status = 500 if code is None or code in _SERVER_CODES else 400
        self._faults.append(Fault(count, code, http_status, frozenset(kinds) if kinds else None))

    def fail_later(self, count: int = 1, *, code: int = 131000,
                   kinds: tuple[str, ...] | None = None) -> None:
        """Accept the next ``count`` messages (of these kinds), then report each ``failed``
        with ``code`` in a status webhook (see :meth:`report_to`)."""
        self._late.append(Fault(count, code, 200, frozenset(kinds) if kinds else None))

    def report_to(self, url: str, app_secret: str) -> None:
        """Where status webhooks go (``X-Hub-Signature-256`` signed with ``app_secret``)."""
        self._webhook = (url, app_secret)

    async def settle(self) -> None:
        """Wait until every status webhook was answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def release_reports(self) -> None:
        """Send the held status webhooks now, and wait for their answers."""
        for report in self.reports:
            if report.answer is None:
                self._post_later(report)
        await self.settle()

    def ok(self, kind: str | None = None, to: str | None = None) -> list[Call]:
        """Successful calls (of one kind, to one number or BSUID), in order."""
        return [c for c in self.calls if c.status == 200 and (kind is None or c.kind == kind)
                and (to is None or c.to == to)]

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the messages that went out (read receipts excluded)."""
        return [c.payload for c in self.ok(to=to) if c.kind != "read"]

    def texts(self, to: str | None = None) -> list[str]:
        """What the user sees of each message: its text, body, or template name."""
        return [visible_text(p) for p in self.messages(to)]

    def reads(self) -> list[str]:
        return [c.payload["message_id"] for c in self.ok("read")]

    def reset(self) -> None:
        self.calls.clear()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the fake Graph API did not see the expected calls")
            await asyncio.sleep(0.01)

    # --- server ------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{host}:{sock.getsockname()[1]}/{VERSION}"
        return self.base_url

    async def stop(self) -> None:
        await self.settle()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        phone_number_id = request.match_info["phone_number_id"]
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        status, response = self._answer(request, phone_number_id, payload)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        call = Call(phone_number_id, payload, status, response, time.monotonic(), str(peer))
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        if status == 200 and call.wamid:
            self._maybe_fail_later(call)
        if status >= 500 and not response:
            return web.Response(status=status, text="Service Unavailable")
        return web.Response(body=orjson.dumps(response), status=status,
                            content_type="application/json")

    def _maybe_fail_later(self, call: Call) -> None:
        late = next((f for f in self._late if f.matches(call.kind)), None)
        if late is None or late.code is None:
            return
        late.remaining -= 1
        recipient = call.to
        bsuid = recipient if BSUID.fullmatch(recipient) else None
        body = notification({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER,
                         "phone_number_id": self.phone_number_id},
            "statuses": [status_report(call.wamid or "", "failed",
                                       recipient=None if bsuid else recipient,
                                       recipient_bsuid=bsuid, error_code=late.code)],
        })
        report = Report(call.wamid or "", late.code, body)
        self.reports.append(report)
        if not self.hold_reports:
            self._post_later(report)

    def _post_later(self, report: Report) -> None:
        if self._webhook is not None:
            task = asyncio.get_running_loop().create_task(self._post_report(report))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post_report(self, report: Report) -> None:
        assert self._webhook is not None
        url, secret = self._webhook
        raw = orjson.dumps(report.body)
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature}) as answer:
            await answer.read()
            report.answer = answer.status

    def _answer(self, request: web.Request, phone_number_id: str,
                payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        to = address(payload)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _error(190, "Invalid OAuth access token", to)
        if phone_number_id != self.phone_number_id:
            return 400, _error(100, "Unsupported post request: unknown phone number id", to)
        kind = "read" if payload.get("status") == "read" else str(payload.get("type"))
        fault = next((f for f in self._faults if f.matches(kind)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.code is None:
                return fault.http_status, {}
            return fault.http_status, _error(fault.code, f"injected error {fault.code}", to)
        try:
            validate(payload)
        except Invalid as exc:
            return 400, _error(exc.code, exc.details, to)
        if kind == "read":
            return 200, {"success": True}
        wamid = fake_wamid(to, next(self._ids))
        by_phone = bool(payload.get("to"))  # ``to`` wins over ``recipient``
        response: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id" if by_phone else "user_id": to}],
            "messages": [{"id": wamid}],
        }
        if kind == "template":
            response["messages"][0]["message_status"] = "accepted"
        return 200, response


# --- what Meta checks ------------------------------------------------------------------------
def validate(payload: dict[str, Any]) -> None:
    _expect(payload.get("messaging_product") == "whatsapp", 100, "messaging_product")
    if payload.get("status") == "read":
        _expect(_is_text(payload.get("message_id")), 100, "message_id is required")
        return
    if "to" in payload:
        _expect(str(payload["to"]).isdigit(), 100, "to must be a phone number")
    else:
        _expect(BSUID.fullmatch(str(payload.get("recipient", ""))) is not None, 100,
                "recipient must be a business-scoped user id")
    kind = payload.get("type")
    if kind == "text":
        body = (payload.get("text") or {}).get("body")
        _expect(_is_text(body) and units(body) <= 4096, 100, "text.body: 1-4096 characters")
    elif kind == "interactive":
        _validate_interactive(payload.get("interactive") or {})
    elif kind == "template":
        template = payload.get("template") or {}
        _expect(_is_text(template.get("name")), 100, "template.name")
        _expect(_is_text((template.get("language") or {}).get("code")), 100, "language.code")
    else:
        raise Invalid(100, f"unsupported type {kind!r}")


def _validate_interactive(interactive: dict[str, Any]) -> None:
    body = (interactive.get("body") or {}).get("text")
    _expect(_is_text(body) and units(body) <= 1024, 131009, "body.text: 1-1024 characters")
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        _expect(1 <= len(buttons) <= 3, 131009, "1 to 3 buttons")
        replies = [b.get("reply") or {} for b in buttons]
        _expect(all(b.get("type") == "reply" for b in buttons), 131009, "button type")
        _unique_titled(replies, id_max=256, title_max=20)
    elif interactive.get("type") == "list":
        label = action.get("button")
        _expect(_is_text(label) and units(label) <= 20, 131009, "action.button: 1-20")
        sections = action.get("sections") or []
        rows = [r for s in sections for r in s.get("rows") or []]
        _expect(1 <= len(rows) <= 10, 131009, "1 to 10 rows")
        _expect(len(sections) == 1 or all(_is_text(s.get("title")) for s in sections),
                131009, "section titles")
        _unique_titled(rows, id_max=200, title_max=24)
        _expect(all(units(r.get("description", "")) <= 72 for r in rows), 131009,
                "description: at most 72")
    else:
        raise Invalid(131009, "interactive.type")


def _unique_titled(items: list[dict[str, Any]], *, id_max: int, title_max: int) -> None:
    ids = [i.get("id") for i in items]
    titles = [i.get("title") for i in items]
    _expect(all(_is_text(i) and len(i) <= id_max for i in ids), 131009, "ids")
    _expect(all(_is_text(t) and units(t) <= title_max for t in titles), 131009, "titles")
    _expect(len(set(ids)) == len(ids) and len(set(titles)) == len(titles), 131009, "unique")


def _expect(condition: bool, code: int, details: str) -> None:
    if not condition:
        raise Invalid(code, details)


def _is_text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _error(code: int, details: str, to: str) -> dict[str, Any]:
    """Meta's error object; like the real one it can quote the recipient's number."""
    return {"error": {
        "message": f"(#{code}) {details}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp",
                       "details": f"{details} (recipient {to})"},
        "fbtrace_id": "AbCdEfGhIjKlMnOp",
    }}


def address(payload: dict[str, Any]) -> str:
    """Whom a send is for: ``to`` (a phone number) if given, else ``recipient`` (a BSUID)."""
    return str(payload.get("to") or payload.get("recipient") or "")


def notification(*values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    """Meta's webhook envelope: one entry, one change per value."""
    return {"object": "whatsapp_business_account", "entry": [{
        "id": WABA_ID, "changes": [{"value": v, "field": field} for v in values]}]}


def status_report(wamid: str, status: str, *, recipient: str | None,
                  recipient_bsuid: str | None = None, error_code: int | None = None
                  ) -> dict[str, Any]:
    """One ``statuses[]`` object as the messages webhook carries it: ``conversation`` and
    ``pricing`` on sent/delivered, ``errors[]`` on failed; ``recipient_user_id`` for a BSUID."""
    report: dict[str, Any] = {"id": wamid, "status": status,
                              "timestamp": str(int(time.time()))}
    if recipient is not None:
        report["recipient_id"] = recipient
    if recipient_bsuid is not None:
        report["recipient_user_id"] = recipient_bsuid
    if status in {"sent", "delivered"}:
        report["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
        report["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if error_code is not None:
        report["errors"] = [{"code": error_code, "title": "Error", "message": "Error",
                             "error_data": {"details": "details"}}]
    return report


def fake_wamid(to: str, serial: int) -> str:
    """Shaped like Meta's: base64 of a small protobuf holding the number and a message id."""
    number = to.encode()
    suffix = f"{serial:020X}".encode()
    raw = (b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00\x11\x18"
           + bytes([len(suffix)]) + suffix + b"\x00")
    return "wamid." + base64.b64encode(raw).decode()


def visible_text(payload: dict[str, Any]) -> str:
    kind = payload.get("type")
    if kind == "text":
        return str(payload["text"]["body"])
    if kind == "interactive":
        return str(payload["interactive"]["body"]["text"])
    if kind == "template":
        return f"[template {payload['template']['name']}]"
    return ""


def button_ids(payload: dict[str, Any]) -> list[str]:
    """Ids of the reply buttons or list rows of an interactive message."""
    if payload.get("type") != "interactive":
        return []
    action = payload["interactive"]["action"]
    if "buttons" in action:
        return [b["reply"]["id"] for b in action["buttons"]]
    return [r["id"] for s in action["sections"] for r in s["rows"]]
