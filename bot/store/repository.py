"""Repositories over the models: everything the engine needs for one turn, in one transaction.

A turn reads the user and their conversation, and writes the new state, its events and their
effects (progress, screening results, cases) in a single transaction, so a crash leaves either
the old state or the new one, never half of each.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.core.clock import utcnow
from bot.core.state import Conversation, Profile
from bot.messages import UserRef
from bot.store import direct, retention, user_keys
from bot.store.batching import WriteBatch
from bot.store.crypto import FieldCipher, Pseudonymizer, UserCipher
from bot.store.db import READ_ONLY, DatabaseUnavailable, checkpoint, json_dumps
from bot.store.models import (
    Case,
    EventRecord,
    OutboxMessage,
    PlatformMessage,
    ProcessedInbound,
    Progress,
    ScreeningResult,
    Session,
    Subscription,
    User,
    UserKey,
)
from bot.store.transactions import transactions_for

T = TypeVar("T")
log = logging.getLogger(__name__)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KeyedLocks:
    """One asyncio lock per key, dropped when idle: per-user ordering inside one process."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        lock, users = entry if entry is not None else (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


PAUSED = "paused"
"""Outbox status of a message held while the user's contact is paused (quick exit, erasure)."""

_DB_ERRORS = (OperationalError, DBAPIError, OSError, ConnectionError)


def table_of(model: Any) -> Table:
    """A model's ``Table``: statements on it are Core (no ORM autoflush or bulk-ORM path)."""
    return cast(Table, model.__table__)


def _params(*names: str) -> dict[str, Any]:
    return {name: bindparam(name) for name in names}


def dialect_insert(dialect: str, model: Any) -> Any:
    """The dialect's INSERT (for ``ON CONFLICT``), without implicit ``RETURNING``."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table_of(model)).inline()


# --- the turn's statements (see bot.store.direct) ----------------------------------------
_USERS, _SESSIONS = table_of(User), table_of(Session)
_USER_COLUMNS = ("id", "channel", "address_enc", "language", "language_locked", "age_band",
                 "governorate", "joined_via", "contact_paused_at")
_SESSION_COLUMNS = ("user_id", "flow", "state", "data_enc", "offered")


def _load_query(dialect: str) -> Any:
    """The user, their session, open case and subscription, in one round trip (the user row
    locked on PostgreSQL, so one user's turns are serialised across processes)."""
    cases, subscriptions = table_of(Case), table_of(Subscription)
    open_case = (
        select(cases.c.id).where(cases.c.user_id == _USERS.c.id, cases.c.status != "closed")
        .order_by(cases.c.id.desc()).limit(1).scalar_subquery()
    )
    topics = (select(subscriptions.c.topics).where(subscriptions.c.user_id == _USERS.c.id)
              .scalar_subquery())
    keys = table_of(UserKey)
    data_key = select(keys.c.key_enc).where(keys.c.user_id == _USERS.c.id).scalar_subquery()
    query = (select(*(_USERS.c[name] for name in _USER_COLUMNS),
                    *(_SESSIONS.c[name] for name in _SESSION_COLUMNS), open_case, topics,
                    data_key)
             .select_from(_USERS.outerjoin(_SESSIONS, _SESSIONS.c.user_id == _USERS.c.id))
             .where(_USERS.c.key == bindparam("user_key")))
    return query.with_for_update(of=_USERS) if dialect == "postgresql" else query


def _progress_query(dialect: str) -> Any:
    table = table_of(Progress)
    return (select(table.c.module_id, table.c.position, table.c.completed)
            .where(table.c.user_id == bindparam("user_id")).order_by(table.c.updated_at))


def _claim_query(dialect: str) -> Any:
    return (dialect_insert(dialect, ProcessedInbound)
            .values(_params("channel", "message_id", "created_at")).on_conflict_do_nothing())


def _insert_user_query(dialect: str) -> Any:
    return (insert(_USERS).values(_params("key", "channel", "created_at", "last_active_at",
                                          "language_locked", "unreachable"))
            .returning(_USERS.c.id))


def _insert_key_query(dialect: str) -> Any:
    return insert(table_of(UserKey)).values(_params("user_id", "key_enc", "created_at"))


def _touch_user_query(dialect: str) -> Any:
    return (update(_USERS).where(_USERS.c.id == bindparam("uid"))
            .values(last_active_at=bindparam("now"), last_inbound_at=bindparam("now"),
                    unreachable=False))


def _update_user_query(names: Sequence[str]) -> Any:
    return (update(_USERS).where(_USERS.c.id == bindparam("uid"))
            .values({name: bindparam(f"v_{name}") for name in names}))


def _update_session_query(dialect: str) -> Any:
    return (update(_SESSIONS).where(_SESSIONS.c.user_id == bindparam("uid"))
            .values(flow=bindparam("flow"), state=bindparam("state"),
                    data_enc=bindparam("data_enc"), offered=bindparam("offered"),
                    version=_SESSIONS.c.version + 1, updated_at=bindparam("updated_at")))


def _insert_session_query(dialect: str) -> Any:
    return insert(_SESSIONS).values(_params("user_id", "flow", "state", "data_enc", "offered",
                                            "version", "updated_at"))


def _insert_events_query(dialect: str) -> Any:
    return insert(table_of(EventRecord)).inline().values(
        _params("user_id", "name", "channel", "language", "data", "created_at"))


def _progress_upsert_query(changed: Sequence[str]) -> Any:
    """Create the row (position 0, not completed) or change only the ``changed`` columns."""
    def build(dialect: str) -> Any:
        statement = dialect_insert(dialect, Progress).values(
            _params("user_id", "module_id", "position", "completed", "useful", "updated_at"))
        excluded = statement.excluded
        return statement.on_conflict_do_update(
            index_elements=["user_id", "module_id"],
            set_={name: excluded[name] for name in (*changed, "updated_at")})
    return build


def _remember_query(dialect: str) -> Any:
    table = table_of(PlatformMessage)
    source = select(
        _USERS.c.id, bindparam("message_id", type_=table.c.message_id.type),
        bindparam("now", type_=table.c.created_at.type),
    ).where(_USERS.c.key == bindparam("user_key"))
    return (dialect_insert(dialect, PlatformMessage)
            .from_select(["user_id", "message_id", "created_at"], source)
            .on_conflict_do_nothing())


def _mark_sent_query(dialect: str) -> Any:
    table = table_of(OutboxMessage)
    return (update(table).where(table.c.id == bindparam("row_id"))
            .values(status="sent", sent_at=bindparam("now"), lease_until=None))


_LOAD = direct.Statement("load", _load_query)
_PROGRESS = direct.Statement("progress", _progress_query)
_CLAIM = direct.Statement("claim", _claim_query)
_INSERT_USER = direct.Statement("insert-user", _insert_user_query)
_TOUCH_USER = direct.Statement("touch-user", _touch_user_query)
_INSERT_KEY = direct.Statement("insert-key", _insert_key_query)
_UPDATE_SESSION = direct.Statement("update-session", _update_session_query)
_INSERT_SESSION = direct.Statement("insert-session", _insert_session_query)
_INSERT_EVENTS = direct.Statement("insert-events", _insert_events_query)
_REMEMBER = direct.Statement("remember", _remember_query)
_MARK_SENT = direct.Statement("mark-sent", _mark_sent_query)
_UPDATE_USER = direct.Statements(lambda names: lambda dialect: _update_user_query(names))
"""One statement per set of changed user columns (language, age band, ...: rare)."""
_UPSERT_PROGRESS = direct.Statements(_progress_upsert_query)


def mark_outbox_sent(cursor: direct.Cursor, ids: Iterable[int]) -> None:
    """Outbox rows delivered by the channel itself, in the caller's transaction (the one
    definition behind :func:`bot.outbox.mark_sent` and :meth:`Store.remember_messages`)."""
    now = utcnow()
    rows = [{"row_id": row_id, "now": now} for row_id in ids]
    if rows:
        cursor.executemany(_MARK_SENT, rows)


@dataclass(frozen=True, slots=True)
class Delivered:
    """After a turn: the chat's new message ids and the outbox rows delivered."""

    user_key: str
    message_ids: tuple[str, ...]
    outbox_ids: tuple[int, ...]


def _write_delivered(cursor: direct.Cursor, batch: Sequence[Delivered]) -> None:
    """Many turns' :class:`Delivered` in two statements."""
    mark_outbox_sent(cursor, [row_id for item in batch for row_id in item.outbox_ids])
    now = utcnow()
    remembered = [{"user_key": item.user_key, "message_id": message_id, "now": now}
                  for item in batch for message_id in item.message_ids]
    if remembered:  # INSERT ... SELECT: no row when the user is gone (erased meanwhile)
        cursor.executemany(_REMEMBER, remembered)


@dataclass
class UserRow:
    """The turn's user: the columns a turn reads, changed in place by the turn."""

    id: int
    key: str
    channel: str
    address_enc: bytes | None = None
    language: str | None = None
    language_locked: bool = False
    age_band: str | None = None
    governorate: str | None = None
    joined_via: str | None = None
    contact_paused_at: datetime | None = None


class Store:
    """Entry point to persistence: opens turn transactions and offers maintenance queries."""

    def __init__(self, engine: AsyncEngine, cipher: FieldCipher, pseudonyms: Pseudonymizer) -> None:
        self.engine = engine
        self.cipher = cipher
        self.pseudonyms = pseudonyms
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False,
                                               info={user_keys.SESSION_CIPHER: cipher})
        self._locks = KeyedLocks()
        self._transactions = transactions_for(engine)
        self._delivered = WriteBatch(self._transactions, _write_delivered)

    @classmethod
    def from_settings(cls, settings: Settings, engine: AsyncEngine) -> Store:
        """The store with the keys the settings name (field encryption, pseudonymous ids)."""
        return cls(engine, FieldCipher(settings.secret_key, settings.old_secret_keys),
                   Pseudonymizer(settings.pseudonym_key or settings.secret_key))

    def user_ref(self, channel: str, platform_id: str | int) -> UserRef:
        return UserRef(channel=channel, key=self.pseudonyms.user_key(channel, platform_id))

    @asynccontextmanager
    async def turn(self, user: UserRef) -> AsyncIterator[TurnTransaction]:
        """Serialise a user's turns (in-process lock, row lock on PostgreSQL) in a transaction.

        The transaction is a Core connection's (on SQLite, shared with the other turns of the
        moment: :mod:`bot.store.transactions`): the turn's statements run on its cursor
        (:mod:`bot.store.direct`), and an ORM session joins it only when an effect needs one
        (cases, screening results): most turns never pay for a session's set-up and teardown.
        """
        async with self._locks.hold(user.key):
            try:
                async with self._transactions.open() as conn:
                    tx = TurnTransaction(conn, user, self.cipher, self.pseudonyms,
                                         join_mode=self._transactions.join_mode)
                    try:
                        yield tx
                        await tx.finish()
                    finally:
                        await tx.close()
            except _DB_ERRORS as exc:
                raise DatabaseUnavailable(type(exc).__name__) from exc

    async def write(self, work: Callable[[direct.Cursor], T]) -> T:
        """Hot statements in a short transaction of their own (:mod:`bot.store.direct`; on
        SQLite it shares its commit: :mod:`bot.store.transactions`)."""
        try:
            return await self._transactions.run(work)
        except _DB_ERRORS as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A plain transaction for back-office work (queues, reports, maintenance)."""
        try:
            async with self.sessionmaker() as db, db.begin():
                yield db
        except _DB_ERRORS as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A transaction for reads only (watchers, fingerprints): on SQLite it takes no write
        lock, so polling never makes a turn wait. Rolled back at the end: never write in it."""
        try:
            async with self.sessionmaker() as db:
                await db.connection(execution_options={READ_ONLY: True})
                yield db
                await db.rollback()
        except _DB_ERRORS as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    async def after_erasure(self) -> None:
        """An erasure committed: on SQLite, leave none of the erased rows' pages in the WAL."""
        try:
            await checkpoint(self.engine)
        except _DB_ERRORS as exc:
            log.warning("store: WAL checkpoint after an erasure failed (%s)", type(exc).__name__)

    async def ping(self) -> bool:
        try:
            async with self.sessionmaker() as db:
                await db.execute(select(1))
            return True
        except _DB_ERRORS:
            return False

    async def _user_id(self, db: AsyncSession, user: UserRef) -> int | None:
        return await db.scalar(select(User.id).where(User.key == user.key))

    async def remember_messages(self, user: UserRef, message_ids: Iterable[str], *,
                                sent_outbox_ids: Iterable[int] = ()) -> None:
        """Keep the ids (never the text) of messages in a chat, for quick-exit deletion.

        ``sent_outbox_ids``: the turn's outbox rows the channel has just delivered, marked
        sent in the same transaction (what :func:`bot.outbox.mark_sent` does, one round trip
        less per turn). The writes of the turns of the moment share one transaction
        (:mod:`bot.store.batching`); this returns once they are committed.
        """
        delivered = Delivered(user.key, tuple(dict.fromkeys(message_ids)),
                              tuple(sent_outbox_ids))
        if delivered.message_ids or delivered.outbox_ids:
            await self._delivered.add(delivered)

    async def take_messages(self, user: UserRef, *, newer_than: timedelta) -> list[str]:
        """Remove and return the message ids of a chat that are recent enough to delete."""
        async with self.session() as db:
            user_id = await self._user_id(db, user)
            if user_id is None:
                return []
            rows = list(await db.scalars(
                select(PlatformMessage).where(PlatformMessage.user_id == user_id)
            ))
            cutoff = utcnow() - newer_than
            await db.execute(delete(PlatformMessage).where(PlatformMessage.user_id == user_id))
            return [r.message_id for r in rows if as_utc(r.created_at) >= cutoff]

    async def mark_unreachable(self, user: UserRef) -> None:
        """The user blocked the bot: stop campaign sends until they write again."""
        async with self.session() as db:
            await db.execute(update(User).where(User.key == user.key).values(unreachable=True))

    async def purge_expired(self, retention_days: int,
                            now: datetime | None = None) -> dict[str, int]:
        """Retention across every table that holds personal data (``bot.store.retention``)."""
        async with self.session() as db:
            return await retention.purge(db, retention_days, now or utcnow())


class TurnTransaction:
    """The database side of one turn. Created by :meth:`Store.turn` only.

    The turn's own reads and writes are hot statements on the connection's cursor
    (:mod:`bot.store.direct`); rarer effects (cases, screening results, erasure) use the ORM
    session ``db``, in the same transaction.
    """

    def __init__(
        self, connection: AsyncConnection, ref: UserRef, cipher: FieldCipher,
        pseudonyms: Pseudonymizer, *, join_mode: str = "rollback_only",
    ) -> None:
        self.connection = connection
        self._db: AsyncSession | None = None
        self._join_mode = join_mode
        self.ref = ref
        self.cipher = cipher
        self.pseudonyms = pseudonyms
        self._user: UserRow | None = None
        self._user_cipher: UserCipher | None = None
        # Buffered for finish(): user columns changed this turn (one UPDATE) and events (one
        # INSERT).
        self._user_changes: dict[str, Any] = {}
        self._touch_at: datetime | None = None
        self._has_session = False
        self._saved: dict[str, Any] | None = None
        self._events: list[dict[str, Any]] = []

    @property
    def db(self) -> AsyncSession:
        """An ORM session in the turn's transaction, made on first use and committed by
        :meth:`finish`: that ends the session's own part (a savepoint in a shared transaction),
        never the turn's transaction, which the store commits."""
        if self._db is None:
            self._db = AsyncSession(bind=self.connection, expire_on_commit=False,
                                    join_transaction_mode=self._join_mode,
                                    info={user_keys.SESSION_CIPHER: self.cipher})
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _run(self, work: Any) -> Any:
        return await direct.run(self.connection, work)

    # --- loading -----------------------------------------------------------------------
    async def load(self, *, claim: str | None = None, address: str | None = None
                   ) -> tuple[Profile, Conversation] | None:
        """Claim the platform message id ``claim``, then get or create the user (locking the
        row on PostgreSQL) and their conversation, in one pass; ``None`` when the message was
        processed before (a duplicate delivery).

        The claim is one ``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent
        claim of the same id in another process waits for that transaction and then inserts
        nothing.
        """
        now = utcnow()
        key, channel = self.ref.key, self.ref.channel
        claimed = {"channel": channel, "message_id": claim, "created_at": now}
        master = self.cipher

        def new_key(cursor: direct.Cursor, user_id: int) -> UserCipher:
            """The user has no data key yet (new, or back after an erasure): make one."""
            cipher, wrapped = user_keys.create(master)
            cursor.execute(_INSERT_KEY, {"user_id": user_id, "key_enc": wrapped,
                                         "created_at": now})
            return cipher

        def read(cursor: direct.Cursor
                 ) -> tuple[direct.Row | None, list[direct.Row], int, UserCipher] | None:
            if claim and not cursor.execute(_CLAIM, claimed):
                return None
            found = cursor.one(_LOAD, {"user_key": key})
            if found is not None:
                cipher = (user_keys.unwrap(master, found[-1]) if found[-1] is not None
                          else new_key(cursor, found[0]))
                return found, cursor.all(_PROGRESS, {"user_id": found[0]}), found[0], cipher
            created = cursor.one(_INSERT_USER, {
                "key": key, "channel": channel, "created_at": now, "last_active_at": now,
                "language_locked": False, "unreachable": False})
            assert created is not None
            return None, [], int(created[0]), new_key(cursor, int(created[0]))

        loaded = await self._run(read)
        if loaded is None:
            return None
        found, progress, user_id, self._user_cipher = loaded
        is_new = found is None
        if found is None:
            user, session, open_case, topics = UserRow(user_id, key, channel), None, None, None
        else:
            n = len(_USER_COLUMNS)
            user = UserRow(key=key, **dict(zip(_USER_COLUMNS, found[:n], strict=True)))
            session = found[n:n + len(_SESSION_COLUMNS)]
            open_case, topics = found[-3], found[-2]
        self._user = user
        if address is not None and user.address_enc is None:
            self._set_user(address_enc=self.user_cipher.encrypt_text(  # shredded on erasure
                address, context=b"users.address"))
        self._touch_at = now  # last_active_at, last_inbound_at, unreachable: in finish()

        conversation = Conversation()
        self._has_session = session is not None and session[0] is not None
        if session is not None and self._has_session:
            _, flow, state, data_enc, offered = session
            data: dict[str, Any] = {}
            if data_enc:
                data = orjson.loads(self.user_cipher.decrypt(data_enc,
                                                             context=b"sessions.data"))
            conversation = Conversation(
                flow=flow, state=state, data=data,
                offered=[(str(b[0]), str(b[1])) for b in offered or []],
            )
        completed = [module for module, _, done in progress if done]
        unfinished = [(module, position) for module, position, done in progress
                      if not done and position > 0]
        profile = Profile(
            user_id=user.id, channel=user.channel, is_new=is_new, language=user.language,
            language_locked=user.language_locked, age_band=user.age_band,
            completed_modules=frozenset(completed), open_case_id=open_case,
            resume=unfinished[-1] if unfinished else None,
            governorate=user.governorate, joined_via=user.joined_via,
            subscription=None if topics is None else tuple(str(t) for t in topics),
            contact_paused=user.contact_paused_at is not None,
        )
        return profile, conversation

    # --- saving ------------------------------------------------------------------------
    @property
    def user(self) -> UserRow:
        if self._user is None:
            raise RuntimeError("load() first")
        return self._user

    @property
    def user_cipher(self) -> UserCipher:
        """Seals the turn's user's own data under their data key (``bot.store.user_keys``);
        it opens master-sealed blobs too. ``cipher`` stays the master key's."""
        if self._user_cipher is None:
            raise RuntimeError("load() first (or the user was erased in this turn)")
        return self._user_cipher

    def _set_user(self, **values: Any) -> None:
        """Change user columns: the loaded row shows them at once, the database gets them in
        :meth:`finish`'s single UPDATE."""
        user = self.user
        for name, value in values.items():
            if name in self._user_changes or getattr(user, name) != value:
                setattr(user, name, value)
                self._user_changes[name] = value

    def set_language(self, language: str, *, locked: bool) -> None:
        self._set_user(language=language)
        if locked:
            self._set_user(language_locked=True)

    def set_age_band(self, age_band: str) -> None:
        self._set_user(age_band=age_band)

    def set_governorate(self, governorate: str) -> None:
        self._set_user(governorate=governorate)

    def pause_contact(self) -> None:
        """Quick exit: from now on the outbox holds everything for this user (``paused``)."""
        if self.user.contact_paused_at is None:
            self._set_user(contact_paused_at=utcnow())

    async def resume_contact(self) -> int:
        """The user said it is OK to continue here: what was held becomes due. Returns how
        many messages were released."""
        if self.user.contact_paused_at is None:
            return 0
        self._set_user(contact_paused_at=None)
        result = await self.db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.user_id == self.user.id, OutboxMessage.status == PAUSED)
            .values(status="pending", next_attempt_at=utcnow(), last_error=None))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def set_joined_via(self, code: str) -> None:
        """Campaign attribution: the first code wins and is never overwritten."""
        if self.user.joined_via is None:
            self._set_user(joined_via=code)

    async def finish(self) -> None:
        """Write what the turn buffered (events, the user's columns, the conversation) before
        the commit, in one pass."""
        events, self._events = self._events, []
        saved, self._saved = self._saved, None
        has_session, self._has_session = self._has_session, True
        user_id = self._user.id if self._user is not None else None  # None: erased
        touch, changes = self._touch_at, self._user_changes
        self._touch_at, self._user_changes = None, {}
        if changes and touch is not None:
            changes.update(last_active_at=touch, last_inbound_at=touch, unreachable=False)
        if self._db is not None:
            await self._db.commit()  # the effects' ORM changes (cases, screening results)
        if not events and user_id is None:
            return

        def write(cursor: direct.Cursor) -> None:
            if events:
                cursor.executemany(_INSERT_EVENTS, events)
            if user_id is None:
                return
            if changes:  # rare (language, age band, ...): a statement of its own shape
                cursor.execute(_UPDATE_USER.get(tuple(sorted(changes))),
                               {**{f"v_{k}": v for k, v in changes.items()}, "uid": user_id})
            elif touch is not None:
                cursor.execute(_TOUCH_USER, {"uid": user_id, "now": touch})
            if saved is None:
                return
            if has_session:
                cursor.execute(_UPDATE_SESSION, saved)
            else:
                cursor.execute(_INSERT_SESSION, {**saved, "user_id": saved["uid"],
                                                 "version": 1})

        await self._run(write)

    def save(self, conversation: Conversation) -> None:
        """The conversation's new state: written by :meth:`finish` with the turn's other
        buffered writes."""
        sealed = (
            self.user_cipher.encrypt(json_dumps(conversation.data).encode(),
                                     context=b"sessions.data")
            if conversation.data else None
        )
        self._saved = {"uid": self.user.id, "flow": conversation.flow,
                       "state": conversation.state, "data_enc": sealed,
                       "offered": [list(b) for b in conversation.offered],
                       "updated_at": utcnow()}

    def record_events(self, names_and_data: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Buffered; inserted in one statement by :meth:`finish` (or before an erasure)."""
        now = utcnow()
        user = self.user
        for name, data in names_and_data:
            self._events.append({"user_id": user.id, "name": name, "channel": self.ref.channel,
                                 "language": user.language, "data": data, "created_at": now})

    async def _write_events(self) -> None:
        if self._events:
            events, self._events = self._events, []
            await self._run(lambda cursor: cursor.executemany(_INSERT_EVENTS, events))

    async def set_progress(
        self, module_id: str, *, position: int | None = None, completed: bool | None = None,
        useful: bool | None = None,
    ) -> None:
        """Create the module's progress row or change it: one upsert."""
        changed = tuple(name for name, given in (("position", position is not None),
                                                 ("completed", bool(completed)),
                                                 ("useful", useful is not None)) if given)
        values = {"user_id": self.user.id, "module_id": module_id, "position": position or 0,
                  "completed": bool(completed), "useful": useful, "updated_at": utcnow()}
        statement = _UPSERT_PROGRESS.get(changed)
        await self._run(lambda cursor: cursor.execute(statement, values))

    def add_screening_result(self, risk_level: str, score: int, payload: dict[str, Any]) -> None:
        sealed = self.user_cipher.encrypt(
            json.dumps(payload, ensure_ascii=False).encode(), context=b"screening_results.answers"
        )
        self.db.add(ScreeningResult(
            user_id=self.user.id, risk_level=risk_level, score=score, answers_enc=sealed,
            created_at=utcnow(),
        ))

    async def subscribe(self, topics: tuple[str, ...]) -> None:
        row = await self.db.get(Subscription, self.user.id)
        if row is None:
            self.db.add(Subscription(user_id=self.user.id, topics=list(topics),
                                     created_at=utcnow()))
        else:
            row.topics = list(topics)

    async def unsubscribe(self) -> None:
        await self.db.execute(delete(Subscription).where(Subscription.user_id == self.user.id))

    async def erase_user(self) -> tuple[str, ...]:
        """'Delete my data': remove everything that identifies the user or their answers.

        Events stay as anonymous counters (user_id set to NULL, no text in them). Cases are the
        back office's: ``handoff.queue.forget_user`` empties them first, in the same transaction.
        Returns the chat's message ids, so the channel can delete the messages themselves.
        """
        user_id = self.user.id
        await self._write_events()  # the turn's own events are anonymised too
        self._user_changes = {}
        message_ids = tuple(await self.db.scalars(
            select(PlatformMessage.message_id).where(PlatformMessage.user_id == user_id)))
        # Crypto-shredding first: without the data key, no copy of the user's sealed rows
        # (WAL, dead tuples, backups) opens any more, whatever the deletes below leave behind.
        await user_keys.forget(self.db, [user_id])
        await self.db.execute(update(EventRecord).where(EventRecord.user_id == user_id)
                              .values(user_id=None))
        for model in (ScreeningResult, Progress, PlatformMessage, Subscription, OutboxMessage,
                      Session):
            await self.db.execute(delete(model).where(model.user_id == user_id))
        await self.db.execute(delete(User).where(User.id == user_id))
        # What stays is a do-not-contact mark under the pseudonymous key alone (no address, no
        # language, no answers): whoever writes from this chat next is first asked whether it
        # is OK to continue here, as after a quick exit.
        now = utcnow()
        self.db.add(User(key=self.ref.key, channel=self.ref.channel, created_at=now,
                         last_active_at=now, contact_paused_at=now, language_locked=False,
                         unreachable=False))
        self._user = None
        self._user_cipher = None
        self._has_session = False
        self._touch_at = None
        return message_ids
