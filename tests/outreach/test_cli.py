"""``sanad campaign ...`` through its handlers, as ``bot/cli.py`` runs them."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.channels import campaigns as campaign_delivery
from bot.channels.campaigns import CampaignChannels
from bot.config import Settings
from bot.outreach import cli
from bot.store.repository import Store
from tests.conftest import make_settings
from tests.outreach.conftest import FakeDeliverer, add_users, open_store

Run = Callable[..., Awaitable[int]]


@pytest.fixture
async def env(sqlite_url: str) -> AsyncIterator[tuple[Settings, Store]]:
    store = await open_store(sqlite_url)
    yield make_settings(sqlite_url), store
    await store.engine.dispose()


@pytest.fixture
def run(env: tuple[Settings, Store]) -> Run:
    parser = argparse.ArgumentParser(prog="sanad")
    cli.register(parser.add_subparsers(dest="command", required=True))
    settings, _ = env

    async def invoke(*argv: str) -> int:
        args = parser.parse_args(["campaign", *argv])
        return await args.handler(args, settings)
    return invoke


@pytest.fixture
def fake(env: tuple[Settings, Store], monkeypatch: pytest.MonkeyPatch) -> FakeDeliverer:
    """The configured channels' deliverers (``bot.channels.campaigns``): here a fake Telegram
    (``test_cli_telegram.py`` runs the real one against the fake Bot API)."""
    deliverer = FakeDeliverer()

    @asynccontextmanager
    async def channels(settings: Settings, store: Store) -> AsyncIterator[CampaignChannels]:
        yield CampaignChannels(deliverers={"telegram": deliverer})
    monkeypatch.setattr(campaign_delivery, "campaign_channels", channels)
    return deliverer


@pytest.fixture
def message_file(tmp_path: Path) -> Path:
    path = tmp_path / "tip.yml"
    path.write_text('ar: "قبل ما تسافر، اتأكد من العقد"\nen: "Check the contract first"\n'
                    "buttons: [aw:open:check_job_offer]\n", encoding="utf-8")
    return path


async def test_create_send_report(run: Run, env: tuple[Settings, Store], fake: FakeDeliverer,
                                  message_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, store = env
    await add_users(store, 40, prefix="ar", governorate="cairo")
    await add_users(store, 10, prefix="en", language="en", governorate="giza")
    await add_users(store, 5, prefix="no", subscribed=False, governorate="cairo")

    assert await run("create", "spring", "--message-file", str(message_file), "--segment",
                     "governorate in (cairo, giza)") == 0
    assert "matches 50 opted-in user(s)" in capsys.readouterr().out

    assert await run("list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["status"]) for c in listed] == [("spring", "draft")]

    assert await run("send", "spring", "--rate", "400") == 0
    out, err = capsys.readouterr()
    assert "spring: 50/50 sent, 0 failed, 0 blocked" in out
    assert "50/50 sent" in err  # the progress line
    assert sorted(fake.addresses) == sorted([f"ar{n}" for n in range(40)]
                                            + [f"en{n}" for n in range(10)])
    texts = {address: text for address, text, _ in fake.sent}
    assert texts["en3"] == "Check the contract first\n\nTo stop these messages, send: stop"

    assert await run("report", "spring", "--json") == 0
    figures = json.loads(capsys.readouterr().out)
    assert {k: figures[k] for k in ("targeted", "sent", "delivered", "read", "failed",
                                    "blocked", "opted_out", "clicked")} == {
        "targeted": 50, "sent": 50, "delivered": 0, "read": 0, "failed": 0, "blocked": 0,
        "opted_out": 0, "clicked": 0}
    assert figures["status"] == "done"

    assert await run("report", "spring") == 0
    assert "targeted            50" in capsys.readouterr().out
    assert await run("show", "spring", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["segment"] == "governorate in (cairo, giza)"
    assert shown["messages"][0]["buttons"][0][0] == "aw:open:check_job_offer"
    assert await run("show", "spring") == 0
    assert "buttons      aw:open:check_job_offer" in capsys.readouterr().out

    assert await run("send", "spring") == 1
    assert "is done already" in capsys.readouterr().err


async def test_pause_resume_and_errors(run: Run, message_file: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("create", "later", "--message-file", str(message_file),
                     "--at", "2030-01-01T10:00", "--max-handoffs-per-hour", "4") == 0
    out = capsys.readouterr().out
    assert "(scheduled)" in out and "2030-01-01 10:00 EET" in out
    assert "only between 09:00-21:00 (Africa/Cairo)" in out
    assert await run("show", "later", "--json") == 0  # read back from the database
    shown = json.loads(capsys.readouterr().out)
    assert shown["scheduled_at"] == "2030-01-01T08:00:00+00:00"  # 10:00 in Cairo (UTC+2)
    assert shown["max_handoffs_per_hour"] == 4
    assert await run("pause", "later") == 0
    assert await run("show", "later") == 0
    assert "paused (operator)" in capsys.readouterr().out
    assert await run("resume", "later") == 0
    assert "resumed (scheduled)" in capsys.readouterr().out

    assert await run("create", "bad", "--message-file", str(message_file),
                     "--segment", "contry=eg") == 1
    assert "unknown field 'contry'" in capsys.readouterr().err
    assert await run("create", "later", "--message-file", str(message_file)) == 1
    assert "exists already" in capsys.readouterr().err
    assert await run("create", "w", "--message-file", str(message_file),
                     "--window", "late") == 1
    assert "expected HH:MM-HH:MM" in capsys.readouterr().err
    assert await run("report", "nope") == 1
    assert "no campaign named 'nope'" in capsys.readouterr().err
    assert await run("resume", "later") == 1
    assert await run("list") == 0
    assert "later" in capsys.readouterr().out


async def test_recipients_on_channels_without_a_deliverer_wait(
        run: Run, env: tuple[Settings, Store], fake: FakeDeliverer, message_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, store = env
    await add_users(store, 3, channel="terminal", prefix="t")
    await add_users(store, 2, prefix="tg")
    assert await run("create", "mixed", "--message-file", str(message_file)) == 0
    assert await run("send", "mixed") == 0
    out, err = capsys.readouterr()
    assert "3 message(s) wait for a terminal deliverer" in err
    assert "mixed: 2/5 sent" in out
    assert sorted(fake.addresses) == ["tg0", "tg1"]
