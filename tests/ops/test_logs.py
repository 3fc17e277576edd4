"""JSON logs (``SANAD_LOG_FORMAT=json``) parse, and a request's id reaches every record of it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import logs
from bot.app import Sanad
from bot.web.app import REQUEST_ID_HEADER, create_app

log = logging.getLogger("tests.ops")


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """``logs.configure`` changes process-wide logging: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = (*logs.QUIET_LOGGERS, *logs.TURN_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure(logging.INFO, "json", stream)
    return stream


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_level_logger_and_the_scope_id(captured: io.StringIO) -> None:
    log.info("outside")
    with logs.request_scope("turn-0123456789") as rid:
        log.warning("inside %s", "a label")
        try:
            raise RuntimeError("bo" + "om")  # the text exists only at run time
        except RuntimeError:
            log.exception("failed")
    first, second, third = records(captured)
    assert first["request_id"] is None and first["level"] == "INFO"
    assert second == {**second, "level": "WARNING", "logger": "tests.ops",
                      "message": "inside a label", "request_id": rid}
    assert third["request_id"] == rid and "builtins.RuntimeError" in str(third["exc"])
    assert "boom" not in str(third["exc"])  # exception messages may quote user text


def test_text_format_shows_the_id() -> None:
    stream = io.StringIO()
    logs.configure(logging.INFO, "text", stream)
    with logs.request_scope("abcdef0123456789"):
        log.info("hello")
    assert "[abcdef0123456789]: hello" in stream.getvalue()


def test_per_turn_lines_only_at_debug() -> None:
    stream = io.StringIO()
    logs.configure(logging.INFO, "text", stream)
    logging.getLogger("bot.engine").info("turn channel=telegram")
    logging.getLogger("bot.engine").warning("engine trouble")
    logs.configure(logging.DEBUG, "text", stream)
    logging.getLogger("bot.engine").info("turn channel=whatsapp")
    text = stream.getvalue()
    assert "telegram" not in text and "engine trouble" in text and "whatsapp" in text


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="SANAD_LOG_FORMAT"):
        logs.format_from({"SANAD_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="SANAD_LOG_LEVEL"):
        logs.level_from({"SANAD_LOG_LEVEL": "LOUD"}, logging.INFO)
    assert logs.level_from({"SANAD_LOG_LEVEL": "debug"}, logging.INFO) == logging.DEBUG
    assert logs.level_from({}, logging.WARNING) == logging.WARNING


async def test_a_request_id_reaches_the_logs_of_the_request_and_the_response(
        captured: io.StringIO, sanad_sqlite: Sanad) -> None:
    async def fails(request: web.Request) -> web.Response:
        log.info("handling")
        raise KeyError("secret-" + "user-text")

    app = create_app(sanad_sqlite, channels=[], back_office=False)
    app.router.add_get("/boom", fails)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        response = await client.get("/boom")
        assert response.status == 500
        rid = response.headers[REQUEST_ID_HEADER]
        given = await client.get("/healthz", headers={REQUEST_ID_HEADER: "proxy-id-42abc"})
        assert given.headers[REQUEST_ID_HEADER] == "proxy-id-42abc"
        forged = await client.get("/healthz", headers={REQUEST_ID_HEADER: "bad id <script>"})
        assert forged.headers[REQUEST_ID_HEADER] != "bad id <script>"
    finally:
        await client.close()
    mine = [r for r in records(captured) if r["request_id"] == rid]
    assert [r["message"] for r in mine] == ["handling", "unhandled error on GET /boom"]
    assert "builtins.KeyError (message withheld)" in str(mine[1]["exc"])
    assert "secret-user-text" not in captured.getvalue()
