"""The leaf core: the engine's domain types and the ports it depends on.

Nothing here imports the store, the back office, a channel or the web app (an import-linter
contract in ``pyproject.toml``): the engine and the flows depend on these types, and the outer
packages implement the ports (``bot.core.ports``); ``bot.app`` wires them together.
"""
