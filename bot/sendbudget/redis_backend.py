"""The budget in Redis: one Lua script per ask, atomic on the server, for multi-process sites.

The script is :func:`bot.sendbudget.gcra.take` and :func:`~bot.sendbudget.gcra.pause` in Lua
(``tests/sendbudget`` runs both on the same asks and compares). Time is Redis's ``TIME``, so
every machine agrees. Keys: ``<prefix><budget key>`` (a hash: ``tat``, ``paused_until``) and
``<prefix><budget key>:demand`` (a hash: caller id -> ``priority:seen``), both expiring after
a minute of disuse.
"""

from __future__ import annotations

import time
from typing import Any

from bot.sendbudget import gcra

TAKE = """
local state, demand = KEYS[1], KEYS[2]
local rate, burst, reserve, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local owner, priority, want = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local next_priority = tonumber(ARGV[8])
local now = tonumber(ARGV[9])
local pause_for = tonumber(ARGV[10])
local horizon = tonumber(ARGV[11])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval = 1.0 / rate
local tolerance = (burst - 1) * interval
local eps = 1e-6
local tat = tonumber(redis.call('HGET', state, 'tat') or '0')
local paused_until = tonumber(redis.call('HGET', state, 'paused_until') or '0')

local function note(waiting)
  if waiting == nil then
    redis.call('HDEL', demand, owner)
  else
    redis.call('HSET', demand, owner, waiting .. ':' .. string.format('%.17g', now))
  end
  redis.call('PEXPIRE', demand, 60000)
end

if pause_for ~= nil then
  if now + pause_for > paused_until then paused_until = now + pause_for end
  if paused_until + tolerance > tat then tat = paused_until + tolerance end
  redis.call('HSET', state, 'tat', string.format('%.17g', tat),
             'paused_until', string.format('%.17g', paused_until))
  redis.call('PEXPIRE', state, 60000 + math.floor(pause_for * 1000))
  return {0, string.format('%.17g', paused_until - now), 1, '0'}
end

if now < paused_until then
  note(priority)
  return {0, string.format('%.17g', paused_until - now), 1, '0'}
end

local blocked = false
local entries = redis.call('HGETALL', demand)
for i = 1, #entries, 2 do
  local o, v = entries[i], entries[i + 1]
  local sep = string.find(v, ':', 1, true)
  local p, seen = tonumber(string.sub(v, 1, sep - 1)), tonumber(string.sub(v, sep + 1))
  if now - seen > ttl * 4 then
    redis.call('HDEL', demand, o)
  elseif o ~= owner and p < priority and now - seen <= ttl then
    blocked = true
  end
end

local granted = 0
local retry_in = interval
local start = 0
if not blocked then
  if now > tat then tat = now end
  start = tat - tolerance - now
  local reach = tolerance - reserve * interval + horizon
  local slots = (reach - (tat - now)) / interval
  if slots >= -eps then
    granted = math.min(want, math.floor(slots + eps) + 1)
    tat = tat + granted * interval
  end
  redis.call('HSET', state, 'tat', string.format('%.17g', tat))
  redis.call('PEXPIRE', state, 60000)
  if granted < want then
    retry_in = math.max((tat - now) - reach + horizon / 2, interval / 4)
  end
end
if granted < want then note(priority) else note(next_priority) end
return {granted, string.format('%.17g', retry_in), 0, string.format('%.17g', start)}
"""


class RedisBackend:
    """One budget (``key``) in Redis (``redis.asyncio.Redis`` client, owned by the caller)."""

    def __init__(self, client: Any, key: str, limits: gcra.Limits, *,
                 prefix: str = "sanad:budget:", owns_client: bool = False) -> None:
        self.client = client
        self.owns_client = owns_client
        self.limits = limits
        self.keys = [f"{prefix}{key}", f"{prefix}{key}:demand"]
        self._script = client.register_script(TAKE)

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()

    async def take(self, owner: str, priority: int, want: int,
                   next_priority: int | None, *, now: float | None = None) -> gcra.Grant:
        asked = time.monotonic()
        granted, retry_in, paused, start = await self._call(owner, priority, want,
                                                            next_priority, now, None)
        if now is None:  # the script ran somewhere in the round trip: count from its middle
            start -= (time.monotonic() - asked) / 2
        return gcra.Grant(granted, retry_in, paused, start)

    async def pause(self, seconds: float, *, now: float | None = None) -> float:
        _, left, _, _ = await self._call("", 0, 0, None, now, max(0.0, seconds))
        return left

    async def _call(self, owner: str, priority: int, want: int, next_priority: int | None,
                    now: float | None,
                    pause_for: float | None) -> tuple[int, float, bool, float]:
        limits = self.limits
        # Plain numbers only: redis-py sends an IntEnum as its repr.
        args = [repr(float(limits.rate)), int(limits.burst), int(limits.reserve(priority)),
                repr(float(limits.demand_ttl)), owner, int(priority), int(want),
                "" if next_priority is None else int(next_priority),
                "" if now is None else repr(now),
                "" if pause_for is None else repr(pause_for), repr(float(limits.horizon))]
        granted, retry_in, paused, start = await self._script(keys=self.keys, args=args)
        return int(granted), float(retry_in), bool(int(paused)), float(start)
