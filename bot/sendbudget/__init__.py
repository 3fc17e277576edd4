"""One shared, prioritised send budget per bot (issue #24): see ``docs/send-budget.md``."""

from bot.sendbudget.budget import Backend, MemoryBackend, PrioritisedBudget, SendBudget
from bot.sendbudget.priority import Priority, TurnPriorities, current, of_outbox_kind, sending_as

__all__ = ["Backend", "MemoryBackend", "PrioritisedBudget", "Priority", "SendBudget",
           "TurnPriorities", "current", "of_outbox_kind", "sending_as"]
