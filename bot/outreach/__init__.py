"""Outreach: awareness campaigns pushed to people who opted in.

Campaigns (``campaigns``) pick recipients with a small segment language (``segments``), queue
one outbox row per recipient exactly once (``targeting``), and a throttled, resumable loop
(``sender``) delivers them at a global per-channel rate shared through the database
(``ratelimit``). ``stats`` reports what happened; ``cli`` is ``sanad campaign ...``.
"""
