"""``python -m bot.content [ROOT]``: the content checker without the full CLI."""

from .check import main

raise SystemExit(main())
