"""Hypothesis fuzzing of the WhatsApp webhook: any signed body gets 200 or 400, never a 500."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.whatsapp_payload import read_notifications
from tests.whatsapp.conftest import Harness
from tests.whatsapp.payloads import WA_ID, Meta

_KEYS = ["object", "entry", "changes", "value", "field", "metadata", "phone_number_id",
         "messages", "statuses", "from", "id", "type", "text", "body", "interactive",
         "button_reply", "list_reply", "button", "payload", "timestamp", "errors", "code",
         "status", "recipient_id", "audio", "voice", "image", "caption", "group_id"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
_MESSAGE_FIELDS = ["from", "id", "timestamp", "type", "text", "interactive", "button", "audio",
                   "image", "context", "group_id"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=json_values, raw=st.binary(max_size=200), junk=json_values,
       field=st.sampled_from(_MESSAGE_FIELDS), kind=st.sampled_from(
           ["text", "interactive", "button", "audio", "image", "reaction", "status"]),
       shape=st.sampled_from(["json", "raw", "message", "envelope"]))
async def test_any_signed_body_is_answered_without_a_server_error(
    wa: Harness, body: Any, raw: bytes, junk: Any, field: str, kind: str, shape: str,
) -> None:
    meta = wa.meta
    if shape == "json":
        payload: bytes = orjson.dumps(body)
    elif shape == "raw":
        payload = raw
    elif shape == "message":  # the real shape with one field fuzzed: reaches the deep parsers
        if kind == "status":
            report = meta.status("wamid.fuzz", "failed", error_code=131047) | {field: junk}
            payload = orjson.dumps(meta.statuses(report))
        else:
            content: dict[str, Any] = {kind: {"body": "x", "id": "1", "voice": True}}
            message = meta.base(kind, None, **content)
            payload = orjson.dumps(meta.messages(message | {field: junk} if field != "from"
                                                 else message | {"from": str(junk)[:15]}))
    else:
        payload = orjson.dumps({"object": "whatsapp_business_account", "entry": junk})
    assert await wa.post(payload) in {200, 400}, shape


@settings(max_examples=400, deadline=None)
@given(junk=json_values, field=st.sampled_from(_MESSAGE_FIELDS),
       kind=st.sampled_from(["text", "interactive", "button", "audio", "image", "location"]))
def test_the_parser_never_raises(junk: Any, field: str, kind: str) -> None:
    """The pure part, many more cases: a whole body, or a real message with a field fuzzed."""
    meta = Meta()
    read_notifications({"object": "whatsapp_business_account", "entry": junk}, "1")
    message = meta.base(kind, None, **{kind: junk}) | {field: junk}
    read_notifications(meta.messages(message | {"from": WA_ID}), meta.phone_number_id)
