"""`sanad nlu parse` and `sanad nlu test`, as plain functions the CLI wires in."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO, TypeVar

from .evaluate import format_report, score
from .rasa_data import read_examples
from .results import ParseResult
from .safeguard import SafetyDetector
from .safety_eval import evaluate, format_safety_report
from .safety_model import read_safety_jsonl

T = TypeVar("T")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


class _Parser:
    """Calls `parse_sync` when the backend has one; otherwise runs the async `parse` on a
    private event loop in a helper thread, so this works even when the caller is itself
    inside a running loop (the `sanad` CLI handlers are async)."""

    def __init__(self, nlu: Any) -> None:
        self._nlu = nlu
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever,
                                            name="nlu-cli-loop", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __call__(self, text: str) -> ParseResult:
        if hasattr(self._nlu, "parse_sync"):
            result: ParseResult = self._nlu.parse_sync(text)
            return result
        return self._run(self._nlu.parse(text))

    def close(self) -> None:
        """Stop the private loop, first releasing what the backend bound to it (its HTTP
        session; a `RasaNLU` re-creates one on next use)."""
        if self._loop is None:
            return
        try:
            self._run(self._nlu.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None


def parse_command(nlu: Any, text: str | None, jsonl: bool, stdin: TextIO,
                  stdout: TextIO) -> int:
    """One text -> one JSON parse result; with `jsonl`, one result per `{"text": ...}` line
    of stdin (flushed per line; a malformed line yields `{"error": ...}`). Exit code."""
    parse = _Parser(nlu)
    try:
        if not jsonl:
            if text is None:
                text = stdin.read().strip()
            if not text:
                stdout.write(_dumps({"error": "no text given"}) + "\n")
                return 2
            stdout.write(_dumps(parse(text).to_dict()) + "\n")
            stdout.flush()
            return 0
        for line in stdin:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ValueError("expected a JSON object with a string 'text'")
                out = parse(row["text"]).to_dict()
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                out = {"error": f"invalid input line: {exc}"}
            stdout.write(_dumps(out) + "\n")
            stdout.flush()
        return 0
    finally:
        parse.close()


def _read(reader: Callable[[Path], list[T]], data: Path, stdout: TextIO) -> list[T] | None:
    """The examples of `data`, or None after printing why there are none."""
    try:
        examples = reader(Path(data))
    except (OSError, ValueError) as exc:
        stdout.write(_dumps({"error": f"cannot read {data}: {exc}"}) + "\n")
        return None
    if not examples:
        stdout.write(_dumps({"error": f"no examples in {data}"}) + "\n")
        return None
    return examples


def test_command(nlu: Any, data: Path, stdout: TextIO, as_json: bool = False) -> int:
    """Evaluate on a Rasa YAML or JSON-lines file; print a table (or JSON). Exit code."""
    examples = _read(read_examples, data, stdout)
    if examples is None:
        return 2
    parse = _Parser(nlu)
    results, latencies = [], []
    try:
        for ex in examples:
            t0 = time.perf_counter()
            results.append(parse(ex.text))
            latencies.append(time.perf_counter() - t0)
    finally:
        parse.close()
    report = score(examples, results, latencies)
    report["data"] = str(data)
    stdout.write((_dumps(report) if as_json else format_report(report)) + "\n")
    stdout.flush()
    return 0


def is_safety_file(path: Path) -> bool:
    """A JSON-lines file whose first row carries `labels` is a safety set (safety_data/)."""
    if path.suffix.lower() not in {".jsonl", ".json", ".ndjson"}:
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        row = json.loads(first) if first else None
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and "labels" in row


def safety_test_command(detector: SafetyDetector, data: Path, stdout: TextIO,
                        as_json: bool = False) -> int:
    """Recall and false alarms per safety label and per variety (nlu.safety_eval)."""
    examples = _read(read_safety_jsonl, data, stdout)
    if examples is None:
        return 2
    report = evaluate(detector, examples)
    report["data"] = str(data)
    stdout.write((_dumps(report) if as_json else format_safety_report(report)) + "\n")
    stdout.flush()
    return 0


# These are CLI handlers, not pytest tests (their names start with "test_").
test_command.__test__ = False  # type: ignore[attr-defined]
