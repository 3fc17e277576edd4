"""Write the inbox screenshots in ``docs/screenshots/`` (queue, case, phone), in Arabic and
English, from a console on a throw-away SQLite database fed by real conversations.

    SANAD_CACHE_DIR=~/.cache/sanad .venv/bin/python scripts/screenshots.py [--out DIR]

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``); never downloads a
browser. Not a test: run it when the console's look changes, and commit the pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bot.app import Sanad, build  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.messages import Inbound  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from handoff import actions, auth, relay  # noqa: E402
from handoff.queue import list_cases  # noqa: E402
from handoff.web import setup  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "screenshots only, never a real account"
SIZES = {"desktop": (1366, 768), "phone": (390, 844)}


async def say(sanad: Sanad, user: str, text: str = "", button: str | None = None) -> None:
    await sanad.engine.handle_turn(
        Inbound(user=sanad.store.user_ref("terminal", user), text=text, button_id=button))


async def scene(sanad: Sanad) -> int:
    """Three cases (urgent, high, normal); the urgent one claimed by mona, with a reply."""
    await say(sanad, "nour", "I want to talk to a person")
    await say(sanad, "nour", "I have a question about my work contract abroad")
    await say(sanad, "salma", "مرحبا")
    for button in ("menu:check", "sc:consent:yes", "sc:age:18_24"):
        await say(sanad, "salma", button=button)
    for answer in ("yes", "no", "no", "yes", "no", "no", "no", "no", "yes", "no", "no", "no",
                   "no"):
        await say(sanad, "salma", answer)
    await say(sanad, "salma", button="sc:handoff:yes")
    await say(sanad, "karim", "ساعدوني أنا في خطر")
    await say(sanad, "karim", button="em:human")
    await say(sanad, "karim", "أنا في الجيزة، قريب من المحطة")
    async with sanad.store.session() as db:
        await auth.create_account(db, auth.Passwords(), name="mona", role="caseworker",
                                  password=PASSWORD)
    async with sanad.store.session() as db:
        urgent = (await list_cases(db))[0]
        await actions.claim(db, urgent.id, "mona")
    async with sanad.store.session() as db:
        await relay.reply(db, cipher=sanad.store.cipher, ui=sanad.ui, case_id=urgent.id,
                          author="mona", text="أنا معاك. هل أنت في مكان آمن الآن؟")
    await say(sanad, "karim", "أيوه، أنا في مكان آمن دلوقتي")
    return urgent.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(out: Path) -> None:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise SystemExit("Debian chromium is missing at /usr/bin/chromium")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp}/sanad.db",
                            secret_key=b"screenshots-only-secret-key-0123456789",
                            environment="development", show_drafts=True)
        sanad = await build(settings)
        app = create_app(sanad, channels=[], back_office=False)
        setup(app, sanad)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            case_id = await scene(sanad)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                for lang in ("ar", "en"):
                    for size, (width, height) in SIZES.items():
                        if size == "phone" and lang != "ar":
                            continue
                        page = await browser.new_page(viewport={"width": width,
                                                                "height": height})
                        await page.goto(f"{base}/console/login?lang={lang}")
                        await page.fill("#name", "mona")
                        await page.fill("#password", PASSWORD)
                        await page.click("button[type=submit].primary")
                        await page.wait_for_url("**/console/queue")
                        prefix = "inbox-phone-" if size == "phone" else "inbox-"
                        suffix = "-ar" if size == "phone" else f"-{lang}"
                        await page.screenshot(path=str(out / f"{prefix}queue{suffix}.png"),
                                              full_page=True)
                        await page.goto(f"{base}/console/cases/{case_id}")
                        await page.screenshot(path=str(out / f"{prefix}case{suffix}.png"),
                                              full_page=True)
                        await page.close()
                await browser.close()
        finally:
            await runner.cleanup()
            await sanad.aclose()
    print(f"wrote screenshots to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    asyncio.run(main(parser.parse_args().out))
