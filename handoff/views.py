"""Display models for the console templates: codes turned into labels, ages into "waiting
12 min". No database access here; templates receive only what they show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.content import ContentLibrary
from handoff.actions import NoteView
from handoff.policy import Principal, holds
from handoff.previews import Preview
from handoff.queue import CaseSummary
from handoff.relay import ThreadMessage
from handoff.texts import ConsoleText


def display_zone() -> tzinfo:
    """Caseworkers work on Cairo time; fall back to UTC where tzdata is missing."""
    try:
        return ZoneInfo("Africa/Cairo")
    except ZoneInfoNotFoundError:
        return UTC


@dataclass(frozen=True)
class CaseRow:
    id: int
    alias: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    risk_level: str | None
    risk_label: str
    indicators: tuple[str, ...]
    waiting: str
    escalated: bool
    assignee: str | None
    mine: bool
    language_label: str
    channel_label: str
    contact_paused: bool = False
    unanswered: bool = False
    """The person wrote last and no one has answered yet (the queue's "new message")."""
    preview: str | None = None
    """The last message, shortened (None: not shown to this viewer, or no message yet)."""
    preview_who: str = ""
    unread: int = 0
    """The person's messages since the holder last read the thread."""


@dataclass(frozen=True)
class MessageRow:
    sender: str
    who: str
    text: str
    at: str
    delivery: str | None = None
    delivery_label: str | None = None


@dataclass(frozen=True)
class NoteRow:
    kind_label: str
    author: str
    text: str | None
    detail: str | None
    at: str


class Labels:
    """The console's words for one language."""

    def __init__(self, texts: ConsoleText, lang: str) -> None:
        self.texts, self.lang = texts, lang
        self.zone = display_zone()

    def t(self, key: str, **values: object) -> str:
        return self.texts.t(self.lang, key, **values)

    def of(self, group: str, code: str | None) -> str:
        return self.texts.label(self.lang, group, code)

    def waiting(self, since: datetime, now: datetime) -> str:
        minutes = max(0, int((now - since).total_seconds() // 60))
        if minutes < 60:
            return self.t("queue.waiting_minutes", minutes=minutes)
        return self.t("queue.waiting_hours", hours=minutes // 60, minutes=minutes % 60)

    def clock(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def case_row(self, principal: Principal, case: CaseSummary, *, escalated: bool,
                 now: datetime, preview: Preview | None = None) -> CaseRow:
        return CaseRow(
            id=case.id, alias=case.alias, status=case.status,
            status_label=self.of("status", case.status), priority=case.priority,
            priority_label=self.of("priority", case.priority), risk_level=case.risk_level,
            risk_label=self.of("risk", case.risk_level),
            indicators=tuple(self.of("indicator", i) for i in case.indicators),
            waiting=self.waiting(case.created_at, now), escalated=escalated,
            assignee=case.assignee, mine=holds(principal, case),
            language_label=self.of("language", case.language),
            channel_label=self.of("channel", case.channel),
            contact_paused=case.contact_paused, unanswered=case.times.unanswered,
            preview=preview.text if preview else None,
            preview_who=self.sender(preview.sender) if preview else "",
            unread=preview.unread if preview else 0,
        )

    def queue(self, principal: Principal, cases: Iterable[CaseSummary], escalated: set[int],
              now: datetime, previews: dict[int, Preview] | None = None) -> list[CaseRow]:
        shown = previews or {}
        return [self.case_row(principal, c, escalated=c.id in escalated, now=now,
                              preview=shown.get(c.id))
                for c in cases]

    def sender(self, sender: str) -> str:
        """Who wrote a message, as a short word (the preview's "Person:" / "Caseworker:")."""
        return self.t(f"inbox.preview_from_{sender}")

    def messages(self, thread: Sequence[ThreadMessage]) -> list[MessageRow]:
        who = {"user": self.t("case.from_user"), "bot": self.t("case.from_bot")}
        return [MessageRow(sender=m.sender, who=m.author or who.get(m.sender, m.sender),
                           text=m.text, at=self.clock(m.at), delivery=m.delivery,
                           delivery_label=self.t(f"case.delivery_{m.delivery}")
                           if m.delivery else None)
                for m in thread]

    def notes(self, notes: Sequence[NoteView], content: ContentLibrary) -> list[NoteRow]:
        rows = []
        for note in notes:
            detail: str | None = None
            if note.kind == "referral" and note.service_id:
                detail = self.service_name(content, note.service_id)
            elif note.kind == "close":
                detail = self.of("outcome", note.detail)
            elif note.kind == "transfer":
                detail = self.t("case.transfer_queue") if note.detail == "queue" else note.detail
            rows.append(NoteRow(kind_label=self.of("note_kind", note.kind), author=note.author,
                                text=note.text, detail=detail, at=self.clock(note.at)))
        return rows

    def service_name(self, content: ContentLibrary, service_id: str) -> str:
        service = content.service(service_id)
        if service is None:
            return service_id
        return service.name.get(self.lang) or service.name.get("en") or service_id

    def services(self, content: ContentLibrary) -> list[tuple[str, str]]:
        return [(s.id, self.service_name(content, s.id)) for s in content.services()]
