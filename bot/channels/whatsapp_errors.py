"""What a Graph API error code means for the message we tried to send.

Meta asks integrators to act on ``error.code`` (never on the message text, which may quote the
recipient's number). Each code maps to one of a few dispositions; the sender and the outbox act
on the disposition. Codes: developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
(now developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes).
A code may arrive at once (the send's answer) or later, in a ``failed`` status webhook.
"""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    RATE_LIMITED = "rate_limited"
    """Too fast (app, account, or this user): wait, then try again."""
    RETRY = "retry"
    """Meta or the network failed for now: try again with backoff."""
    OUTSIDE_WINDOW = "outside_window"
    """More than 24 hours since the user wrote: only a template may go out."""
    UNREACHABLE = "unreachable"
    """This user cannot receive our messages (not on WhatsApp, blocked us, too old an app)."""
    OPERATOR = "operator"
    """Our token, account, number or template needs a person: keep the message for later."""
    REJECTED = "rejected"
    """This request is wrong or refused for good: sending it again changes nothing."""
    MARKETING_LIMITED = "marketing_limited"
    """Meta chose not to deliver a marketing message (the user's marketing limit): not worth
    retrying soon; a campaign message waits until the user writes (then it is not marketing)."""
    MARKETING_STOPPED = "marketing_stopped"
    """The user stopped marketing messages from us in WhatsApp: an opt-out of campaigns."""


RATE_LIMIT_CODES = frozenset({
    4,  # app call rate
    80007,  # WhatsApp Business Account rate limit
    130429,  # Cloud API throughput
    131048,  # spam rate limit (quality)
    131056,  # too many messages to the same user (pair rate limit)
})
RETRY_CODES = frozenset({
    1, 2,  # API unknown / API service (downtime, overload)
    131000,  # something went wrong (generic, Meta-side)
    131016,  # service unavailable
    131057,  # business account in maintenance mode
    133004,  # server temporarily unavailable
})
OUTSIDE_WINDOW_CODES = frozenset({131047})
UNREACHABLE_CODES = frozenset({131026})
MARKETING_LIMIT_CODES = frozenset({
    131049,  # "not delivered to maintain healthy ecosystem engagement": per-user marketing limit
})
MARKETING_STOPPED_CODES = frozenset({
    131050,  # "the recipient has chosen to stop receiving marketing messages on WhatsApp"
})
OPERATOR_CODES = frozenset({
    0, 3, 10, 190, *range(200, 300),  # authentication and permissions
    368, 131031,  # account restricted or locked
    131042, 131045,  # payment, certificate
    132001, 132015, 132016,  # template missing, paused, disabled
    133010,  # the business number is not registered
})


def classify(code: int | None, http_status: int) -> Disposition:
    """``code`` from the error object (``None`` when there was none: network, bare 5xx)."""
    if code is not None:
        for codes, disposition in _TABLE:
            if code in codes:
                return disposition
    if http_status == 429:
        return Disposition.RATE_LIMITED
    if http_status == 0 or http_status >= 500:
        return Disposition.RETRY
    if code is None and http_status in (401, 403):
        return Disposition.OPERATOR
    return Disposition.REJECTED


_TABLE = (
    (RATE_LIMIT_CODES, Disposition.RATE_LIMITED),
    (RETRY_CODES, Disposition.RETRY),
    (OUTSIDE_WINDOW_CODES, Disposition.OUTSIDE_WINDOW),
    (UNREACHABLE_CODES, Disposition.UNREACHABLE),
    (OPERATOR_CODES, Disposition.OPERATOR),
    (MARKETING_LIMIT_CODES, Disposition.MARKETING_LIMITED),
    (MARKETING_STOPPED_CODES, Disposition.MARKETING_STOPPED),
)
