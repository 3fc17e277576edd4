"""Every golden transcript, on SQLite and on PostgreSQL, through the engine (as the terminal
calls it), through the Telegram webhook and through the web chat channel's HTTP endpoint."""

from __future__ import annotations

import pytest

from bot.app import Sanad
from nlu import EmbeddedNLU
from nlu.safeguard import SafetyDetector
from tests.transcript import Transcript, play, telegram_chat, web_chat

TRANSCRIPTS = Transcript.load_all()
IDS = [t.path.stem for t in TRANSCRIPTS]


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=IDS)
async def test_transcript(sanad: Sanad, transcript: Transcript) -> None:
    await play(sanad, transcript)


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=IDS)
async def test_transcript_on_telegram(database_url: str, embedded_nlu: EmbeddedNLU,
                                      safety_detector: SafetyDetector,
                                      transcript: Transcript) -> None:
    async with telegram_chat(database_url, embedded_nlu, safety_detector) as (sanad, speaker):
        await play(sanad, transcript, speaker)


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=IDS)
async def test_transcript_on_the_web_chat(sanad: Sanad, transcript: Transcript) -> None:
    async with web_chat(sanad) as speaker:
        await play(sanad, transcript, speaker)
