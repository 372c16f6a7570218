"""Dispatch: which unit operation each station builds next.

``policy`` is the pure ordering; ``queue`` the queues, the atomic claim and the status
moves the station workflow calls; ``supervise`` the supervisor's hold / resume /
re-prioritise / move; ``views`` the supervisor pages.
"""

from server.dispatch.queue import (
    claim,
    claim_next,
    complete_operation,
    mark_started,
    order_of,
    queue_for,
)
from server.dispatch.supervise import DispatchError, hold, move, reprioritise, resume

__all__ = [
    "DispatchError",
    "claim",
    "claim_next",
    "complete_operation",
    "hold",
    "mark_started",
    "move",
    "order_of",
    "queue_for",
    "reprioritise",
    "resume",
]
