"""`sanad chat` as a user runs it: a real subprocess, stdin not a TTY, optional --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_chat(
    tmp_path: Path, lines: list[str], *args: str, cache: Path
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
           "SANAD_SECRET_KEY": "cli-test-secret-0123456789", "SANAD_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "chat", *args], input="\n".join(lines) + "\n",
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, encoding="utf-8",
    )


@pytest.mark.parametrize(("greeting", "expected"), [
    ("مرحبا", "سند"), ("hello", "I'm Sanad"), ("bonjour", "je suis Sanad"),
])
def test_greeting_answers_in_the_users_language(
    tmp_path: Path, nlu_cache: Path, greeting: str, expected: str, embedded_nlu: object,
) -> None:
    result = run_chat(tmp_path, [greeting], cache=nlu_cache)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_json_mode_gives_one_line_per_input_line(tmp_path: Path, nlu_cache: Path,
                                                 embedded_nlu: object) -> None:
    lines = ["hello", "", "1", "\x00\x01 junk", "x" * 20_000, "🙂", "3"]
    result = run_chat(tmp_path, lines, "--json", "--user", "json-user", cache=nlu_cache)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert len(out) == len(lines)
    for line in out:
        payload = json.loads(line)
        assert isinstance(payload["messages"], list) and payload["messages"]
        for message in payload["messages"]:
            assert isinstance(message["text"], str)
            assert all(set(b) == {"id", "title"} for b in message["buttons"])
    # "1" picked the first menu button (Learn): the topics list follows.
    assert any(b["id"].startswith("aw:open:")
               for m in json.loads(out[2])["messages"] for b in m["buttons"])


def test_lang_flag_and_state_survive_restart(tmp_path: Path, nlu_cache: Path,
                                             embedded_nlu: object) -> None:
    first = run_chat(tmp_path, ["مرحبا"], "--lang", "fr", "--json", cache=nlu_cache)
    assert "Sanad" in first.stdout and "Bonjour" in first.stdout, first.stdout
    second = run_chat(tmp_path, ["/menu"], "--json", cache=nlu_cache)
    assert "menu" in json.loads(second.stdout)["messages"][0]["text"].lower()
    assert "Comment" in second.stdout, "language kept across restarts"


def run_sanad(tmp_path: Path, *args: str, cache: Path, stdin: str = "",
              **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
           "SANAD_SECRET_KEY": "cli-test-secret-0123456789", "SANAD_CACHE_DIR": str(cache),
           **env_extra}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120, encoding="utf-8")


def test_nlu_parse_and_test_commands(tmp_path: Path, nlu_cache: Path, embedded_nlu: object) -> None:
    one = run_sanad(tmp_path, "nlu", "parse", "7ad beyedrabni", cache=nlu_cache)
    assert json.loads(one.stdout)["intent"]["name"] == "emergency"
    lines = run_sanad(tmp_path, "nlu", "parse", "--jsonl", cache=nlu_cache,
                      stdin='{"text": "bonjour"}\nnot json\n{"text": "شكرا"}\n')
    parsed = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(parsed) == 3 and "error" in parsed[1]
    assert parsed[0]["language"]["code"] == "fr" and parsed[2]["intent"]["name"] == "thanks"
    heldout = Path(__file__).parents[1] / "nlu" / "tests" / "heldout.jsonl"
    report = run_sanad(tmp_path, "nlu", "test", "--data", str(heldout), "--json", cache=nlu_cache)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["accuracy"] >= 0.93


def test_content_check_passes_and_names_the_broken_field(tmp_path: Path, nlu_cache: Path) -> None:
    import shutil

    ok = run_sanad(tmp_path, "content", "check", cache=nlu_cache)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "content"
    shutil.copytree(Path(__file__).parents[1] / "content", broken)
    ui = broken / "fr" / "ui.yml"
    ui.write_text(ui.read_text(encoding="utf-8").replace("  cover:", "  kover:"),
                  encoding="utf-8")
    failed = run_sanad(tmp_path, "content", "check", cache=nlu_cache,
                       SANAD_CONTENT_DIR=str(broken))
    assert failed.returncode == 1
    assert "content/fr/ui.yml: exit.cover: missing translation" in failed.stderr
    assert "content/fr/ui.yml: exit.kover: not in content/en/ui.yml" in failed.stderr


def test_bad_configuration_is_a_clear_error(tmp_path: Path, nlu_cache: Path) -> None:
    result = run_sanad(tmp_path, "chat", cache=nlu_cache, NLU_BACKEND="magic")
    assert result.returncode == 2 and "NLU_BACKEND" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_and_one_worker_round(tmp_path: Path, nlu_cache: Path) -> None:
    assert run_sanad(tmp_path, "db", "upgrade", cache=nlu_cache).returncode == 0
    worker = run_sanad(tmp_path, "-v", "worker", "--once", cache=nlu_cache)
    assert worker.returncode == 0, worker.stderr
    for job in ("retention", "sla-escalation", "console-sessions"):
        assert f"worker: {job} done" in worker.stderr


def test_json_mode_carries_the_turns_event_names(tmp_path: Path, nlu_cache: Path,
                                                 embedded_nlu: object) -> None:
    lines = ["hello", "help me they locked me in", "exit"]
    result = run_chat(tmp_path, lines, "--json", "--user", "events-user", cache=nlu_cache)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line)["events"] for line in result.stdout.splitlines()]
    assert events[0] == []
    assert "EmergencyTriggered" in events[1]
    assert events[2] == ["QuickExit"]
    assert "locked" not in result.stdout.split("\n")[1].split('"events"')[1]  # names only
