from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings


def test_defaults_generate_a_local_key_once(tmp_path: Path) -> None:
    env = {"SANAD_KEY_FILE": str(tmp_path / "key")}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert first.database_url == "sqlite+aiosqlite:///sanad.db"
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / "key").stat().st_mode & 0o077 == 0, "key file must be private"
    assert first.show_drafts and first.nlu_backend == "embedded"


@pytest.mark.parametrize(("env", "names"), [
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"NLU_BACKEND": "gpt"}, "NLU_BACKEND"),
    ({"SANAD_RETENTION_DAYS": "soon"}, "SANAD_RETENTION_DAYS"),
    ({"SANAD_RETENTION_DAYS": "0"}, "SANAD_RETENTION_DAYS"),
    ({"SANAD_SHOW_DRAFTS": "maybe"}, "SANAD_SHOW_DRAFTS"),
    ({"SANAD_SECRET_KEY": "short"}, "SANAD_SECRET_KEY"),
    ({"SANAD_ENV": "production"}, "SANAD_SECRET_KEY"),
    ({"PORT": "http"}, "PORT"),
    ({"SANAD_TURNS_AT_ONCE": "-1"}, "SANAD_TURNS_AT_ONCE"),
    ({"SANAD_TURNS_AT_ONCE": "many"}, "SANAD_TURNS_AT_ONCE"),
    ({"SANAD_TELEGRAM_REPLY_GRACE": "-0.5"}, "SANAD_TELEGRAM_REPLY_GRACE"),
    ({"SANAD_TELEGRAM_REPLY_GRACE": "nan"}, "SANAD_TELEGRAM_REPLY_GRACE"),
    ({"SANAD_TELEGRAM_REPLY_GRACE": "soon"}, "SANAD_TELEGRAM_REPLY_GRACE"),
])
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        Settings.from_env({"SANAD_KEY_FILE": str(tmp_path / "key"), **env})


def test_production_hides_drafts_and_plain_postgres_urls_get_the_async_driver() -> None:
    settings = Settings.from_env({
        "SANAD_ENV": "production", "SANAD_SECRET_KEY": "x" * 32,
        "DATABASE_URL": "postgres://u:p@db:5432/sanad",
    })
    assert not settings.show_drafts
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/sanad"
    assert "x" * 32 not in repr(settings), "secrets must not appear in reprs (logs)"


def test_a_rotation_without_a_pseudonym_key_is_refused() -> None:
    """Pseudonyms derive from SANAD_SECRET_KEY unless SANAD_PSEUDONYM_KEY is set: rotating the
    secret without it would orphan every user (and erasure would miss their old rows)."""
    rotating = {"SANAD_SECRET_KEY": "n" * 32, "SANAD_OLD_SECRET_KEYS": "o" * 32}
    with pytest.raises(ConfigError, match="SANAD_PSEUDONYM_KEY"):
        Settings.from_env(rotating)
    settings = Settings.from_env({**rotating, "SANAD_PSEUDONYM_KEY": "o" * 32})
    assert settings.pseudonym_key == b"o" * 32 and settings.secret_key == b"n" * 32


def test_the_turn_gate_and_reply_grace_settings(tmp_path: Path) -> None:
    base = {"SANAD_KEY_FILE": str(tmp_path / "key")}
    default = Settings.from_env(base)
    assert default.turns_at_once is None and default.telegram_reply_grace == 0.5
    set_ = Settings.from_env({**base, "SANAD_TURNS_AT_ONCE": "12",
                              "SANAD_TELEGRAM_REPLY_GRACE": "0"})
    assert set_.turns_at_once == 12 and set_.telegram_reply_grace == 0.0
    assert Settings.from_env({**base, "SANAD_TURNS_AT_ONCE": "0"}).turns_at_once is None
