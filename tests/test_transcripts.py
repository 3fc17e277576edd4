"""Every golden transcript, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from bot.app import Sanad
from tests.transcript import Transcript, play

TRANSCRIPTS = Transcript.load_all()


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=[t.path.stem for t in TRANSCRIPTS])
async def test_transcript(sanad: Sanad, transcript: Transcript) -> None:
    await play(sanad, transcript)
