"""Pure translation: webhook JSON → what the channel acts on, ``Outbound`` → Cloud API bodies,
the templates file, the error table and the signature check. No server, no database."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.whatsapp import signature_ok
from bot.channels.whatsapp_errors import Disposition, classify
from bot.channels.whatsapp_payload import read_notifications
from bot.channels.whatsapp_render import BODY_MAX, TEXT_MAX, render, shorten, split, units
from bot.channels.whatsapp_templates import Labels, WhatsAppTexts, check
from bot.content import ContentError
from bot.messages import Button, MediaKind, Outbound
from tests.whatsapp.fake_graph_api import PHONE_NUMBER_ID, Invalid, validate
from tests.whatsapp.payloads import WA_ID, Meta

LABELS = Labels(list_button="Options", numbered_hint="Reply with a number.")


def buttons(count: int, title: str = "Choice") -> tuple[Button, ...]:
    return tuple(Button(id=f"b:{n}", title=f"{title} {n}") for n in range(1, count + 1))


def sendable(body: dict) -> dict:
    """The body as the channel posts it, checked by the fake's copy of Meta's rules."""
    payload = {"messaging_product": "whatsapp", "to": WA_ID, **body}
    validate(payload)
    return payload


# --- webhook notifications -------------------------------------------------------------------
def test_text_message_and_its_sender() -> None:
    meta = Meta()
    found = read_notifications(meta.messages(meta.text("مرحبا")), PHONE_NUMBER_ID)
    [message] = found.messages
    assert (message.wa_id, message.text, message.button_id, message.media) == (
        WA_ID, "مرحبا", None, None)
    assert message.wamid.startswith("wamid.") and message.received_at is not None


def test_replies_become_button_ids() -> None:
    meta = Meta()
    payload = meta.messages(meta.button_reply("lang:en"), meta.list_reply("menu:learn"),
                            meta.template_button("sc:consent:yes"),
                            meta.template_button(None, text="Read it"))
    found = read_notifications(payload, PHONE_NUMBER_ID)
    assert [(m.button_id, m.text) for m in found.messages] == [
        ("lang:en", ""), ("menu:learn", ""), ("sc:consent:yes", ""), (None, "Read it")]


@pytest.mark.parametrize(("kind", "extra", "expected"), [
    ("image", {"caption": "عقد"}, MediaKind.PHOTO),
    ("audio", {"voice": True}, MediaKind.VOICE),
    ("audio", {}, MediaKind.AUDIO),
    ("video", {}, MediaKind.VIDEO),
    ("document", {"filename": "passport.pdf"}, MediaKind.DOCUMENT),
    ("sticker", {"animated": False}, MediaKind.STICKER),
])
def test_media_kinds(kind: str, extra: dict, expected: MediaKind) -> None:
    meta = Meta()
    [message] = read_notifications(meta.messages(meta.media(kind, **extra)),
                                   PHONE_NUMBER_ID).messages
    assert message.media is expected
    assert message.text == extra.get("caption", "")


def test_location_contacts_and_unknown_kinds() -> None:
    meta = Meta()
    flow_answer = meta.base("interactive", interactive={
        "type": "nfm_reply", "nfm_reply": {"response_json": "{}", "body": "Sent"}})
    payload = meta.messages(meta.location(), meta.contacts(), meta.unsupported(), flow_answer,
                            meta.base("order", order={"catalog_id": "1", "product_items": []}))
    kinds = [m.media for m in read_notifications(payload, PHONE_NUMBER_ID).messages]
    assert kinds == [MediaKind.LOCATION, MediaKind.CONTACT, MediaKind.OTHER, MediaKind.OTHER,
                     MediaKind.OTHER]


def test_first_contact_is_a_start() -> None:
    meta = Meta()
    [message] = read_notifications(meta.messages(meta.base("request_welcome")),
                                   PHONE_NUMBER_ID).messages
    assert message.text == "/start"


def test_reactions_system_groups_and_other_numbers_are_ignored() -> None:
    meta = Meta()
    group = meta.text("hi") | {"group_id": "120363000000000000"}
    system = meta.base("system", system={"body": "changed number", "type": "user_changed_number"})
    ours = meta.value(meta.reaction("wamid.X"), system, group)
    theirs = meta.value(meta.text("for another number"), phone_number_id="999")
    found = read_notifications(meta.notification(ours, theirs), PHONE_NUMBER_ID)
    assert found.messages == [] and found.ignored == 4 and found.malformed == 0


def test_junk_is_counted_and_skipped_never_fatal() -> None:
    meta = Meta()
    good = meta.text("hello")
    not_an_object: Any = "not even an object"
    payload = meta.notification(meta.value(
        {"id": "wamid.nofrom", "type": "text", "text": {"body": "x"}},
        {"from": WA_ID, "id": "wamid.nobody", "type": "text", "text": {}},
        {"from": WA_ID, "id": "wamid.badreply", "type": "interactive",
         "interactive": {"type": "button_reply", "button_reply": {"title": "no id"}}},
        not_an_object, good, wa_id=WA_ID,
    ))
    payload["entry"].append({"changes": "nope"})
    payload["entry"][0]["changes"].append({"field": "messages", "value": {
        "metadata": {"phone_number_id": PHONE_NUMBER_ID}, "statuses": [{"status": "read"}],
        "messages": None}})
    found = read_notifications(payload, PHONE_NUMBER_ID)
    assert [m.wamid for m in found.messages] == [good["id"]]
    assert found.malformed == 5


def test_statuses_and_reported_errors() -> None:
    meta = Meta()
    payload = meta.statuses(meta.status("wamid.A", "delivered"),
                            meta.status("wamid.B", "failed", error_code=131047),
                            meta.status("wamid.C", "deleted"))
    payload["entry"][0]["changes"][0]["value"]["errors"] = [{"code": 131000, "title": "x"}]
    found = read_notifications(payload, PHONE_NUMBER_ID)
    assert [(s.wamid, s.status, s.error_code, s.recipient) for s in found.statuses] == [
        ("wamid.A", "delivered", None, WA_ID), ("wamid.B", "failed", 131047, WA_ID)]
    assert found.error_codes == [131000] and found.ignored == 1


def test_other_products_are_ignored() -> None:
    found = read_notifications({"object": "page", "entry": [{"messaging": []}]},
                               PHONE_NUMBER_ID)
    assert found.messages == [] and found.ignored == 1


# --- rendering ------------------------------------------------------------------------------
def test_plain_text() -> None:
    [body] = render(Outbound("Hello"), LABELS)
    assert sendable(body)["text"] == {"body": "Hello", "preview_url": False}


def test_one_to_three_buttons_are_reply_buttons() -> None:
    for count in (1, 2, 3):
        [body] = render(Outbound("Pick one", buttons(count)), LABELS)
        action = sendable(body)["interactive"]["action"]
        assert body["interactive"]["type"] == "button"
        assert [b["reply"]["id"] for b in action["buttons"]] == [f"b:{n}"
                                                                for n in range(1, count + 1)]


def test_four_to_ten_buttons_are_a_list_with_the_label() -> None:
    for count in (4, 10):
        [body] = render(Outbound("Pick one", buttons(count)), LABELS)
        sendable(body)
        action = body["interactive"]["action"]
        assert body["interactive"]["type"] == "list" and action["button"] == "Options"
        assert len(action["sections"][0]["rows"]) == count


def test_more_than_ten_buttons_are_a_numbered_text() -> None:
    [body] = render(Outbound("Topics:", buttons(12, "Topic")), LABELS)
    text = sendable(body)["text"]["body"]
    assert body["type"] == "text"
    assert text.startswith("Topics:\n\n1. Topic 1\n2. Topic 2")
    assert "12. Topic 12" in text and text.endswith("Reply with a number.")


def test_long_titles_are_shortened_by_the_channel() -> None:
    long = "A rather long title for a button"
    [reply] = render(Outbound("x", (Button("a", long), Button("b", "Short"))), LABELS)
    titles = [b["reply"]["title"] for b in sendable(reply)["interactive"]["action"]["buttons"]]
    assert titles[0] == "A rather long title…" and units(titles[0]) == 20
    assert titles[1] == "Short"
    [listed] = render(Outbound("x", (Button("a", long), *buttons(4))), LABELS)
    row = sendable(listed)["interactive"]["action"]["sections"][0]["rows"][0]
    assert row["title"] == "A rather long title for…" and row["description"] == long


def test_titles_that_shorten_alike_are_numbered() -> None:
    same = (Button("a", "Forced labour signs, part one"),
            Button("b", "Forced labour signs, part two"))
    [body] = render(Outbound("x", same), LABELS)
    titles = [b["reply"]["title"] for b in sendable(body)["interactive"]["action"]["buttons"]]
    assert titles[0].startswith("1. ") and titles[1].startswith("2. ")


def test_long_text_with_buttons_puts_the_buttons_under_the_last_part() -> None:
    text = "\n".join(f"Line {n}: " + "word " * 30 for n in range(60))
    bodies = render(Outbound(text, buttons(2)), LABELS)
    for body in bodies:
        sendable(body)
    assert [b["type"] for b in bodies[:-1]] == ["text"] * (len(bodies) - 1)
    assert bodies[-1]["type"] == "interactive"
    assert units(bodies[-1]["interactive"]["body"]["text"]) <= BODY_MAX
    joined = " ".join(b["text"]["body"] for b in bodies[:-1])
    assert "Line 0:" in joined and "Line 59:" in bodies[-1]["interactive"]["body"]["text"]


def test_unusable_buttons_are_dropped_not_fatal() -> None:
    odd = (Button("", "no id"), Button("x" * 300, "long id"), Button("ok", "  "),
           Button("fine", "Fine"), Button("fine", "Duplicate"))
    [body] = render(Outbound("x", odd), LABELS)
    assert [b["reply"]["id"] for b in sendable(body)["interactive"]["action"]["buttons"]] == [
        "fine"]


def test_shorten_never_breaks_an_emoji() -> None:
    assert shorten("😀" * 30, 20) == "😀" * 9 + "…"
    assert shorten("سلام " * 10, 24).endswith("…") and units(shorten("سلام " * 10, 24)) <= 24


@given(st.text(alphabet=st.sampled_from("ab \n😀é\u0301\u200d"), max_size=300),
       st.integers(min_value=4, max_value=50))
def test_split_keeps_every_word_within_the_limit(text: str, limit: int) -> None:
    pieces = split(text, limit)
    assert all(units(p) <= limit for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split()) or (
        not text.strip() and pieces == ["…"])


def test_split_prefers_paragraphs_then_lines() -> None:
    text = ("a" * 3000) + "\n\n" + ("b" * 3000)
    assert split(text, TEXT_MAX) == ["a" * 3000, "b" * 3000]


# --- templates file -------------------------------------------------------------------------
def test_shipped_templates_file_is_valid() -> None:
    assert check() == []
    texts = WhatsAppTexts.load()
    notice = texts.notice("fr").payload()
    assert notice == {"name": "new_message_notice", "language": {"code": "fr"}}
    assert texts.notice(None).language_code == "ar" and texts.label("xx").list_button


def test_templates_file_problems_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "whatsapp_templates.yml").write_text(
        "notice_template: n\n"
        "templates:\n  n:\n    languages:\n"
        "      ar: {name: Bad-Name, code: ar, parameters: [ok]}\n"
        "      en: {name: n, code: english}\n"
        "labels:\n  ar: {list_button: 'far more than twenty characters', numbered_hint: x}\n"
        "  en: {list_button: ok, numbered_hint: ''}\n",
        encoding="utf-8")
    fields = {p.field for p in check(tmp_path)}
    assert fields == {"templates.n.languages.ar.name", "templates.n.languages.en.code",
                      "templates.n.languages.fr", "labels.ar.list_button",
                      "labels.en.numbered_hint", "labels.fr"}
    with pytest.raises(ContentError):
        WhatsAppTexts.load(tmp_path)


def test_template_parameters_are_sent_in_order() -> None:
    from bot.channels.whatsapp_templates import Template

    payload = Template("notice", "en_US", ("Sanad", "today")).payload()
    assert payload["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Sanad"}, {"type": "text", "text": "today"}]}]


# --- errors and signatures ------------------------------------------------------------------
@pytest.mark.parametrize(("code", "http", "expected"), [
    (130429, 400, Disposition.RATE_LIMITED), (131056, 400, Disposition.RATE_LIMITED),
    (80007, 400, Disposition.RATE_LIMITED), (131047, 400, Disposition.OUTSIDE_WINDOW),
    (131026, 400, Disposition.UNREACHABLE), (131000, 500, Disposition.RETRY),
    (133010, 400, Disposition.OPERATOR), (190, 401, Disposition.OPERATOR),
    (131051, 400, Disposition.REJECTED), (131009, 400, Disposition.REJECTED),
    (None, 503, Disposition.RETRY), (None, 0, Disposition.RETRY),
    (None, 429, Disposition.RATE_LIMITED), (999999, 502, Disposition.RETRY),
])
def test_error_codes(code: int | None, http: int, expected: Disposition) -> None:
    assert classify(code, http) is expected


def test_signature_check() -> None:
    body, secret = b'{"object":"whatsapp_business_account"}', b"s3cret"
    good = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert signature_ok(body, good, secret)
    assert signature_ok(body, good.upper().replace("SHA256=", "sha256="), secret)
    for bad in (None, "", good[7:], "sha1=" + good[7:], good[:-1], good[:-1] + "g",
                "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()):
        assert not signature_ok(body, bad, secret)
    assert not signature_ok(body + b" ", good, secret)


def test_the_fake_enforces_meta_rules() -> None:
    with pytest.raises(Invalid):
        validate({"messaging_product": "whatsapp", "to": WA_ID, "type": "text",
                  "text": {"body": "x" * 4097}})
    with pytest.raises(Invalid):
        sendable({"type": "interactive", "interactive": {
            "type": "button", "body": {"text": "x"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]}}})
