"""What keeps one noisy station from delaying the others (issue 13).

- ``FairQueue``: one FIFO queue per station, served round-robin; a batch takes at most
  ``max(MIN_SHARE, batch_max // stations waiting)`` messages of any one station, so a
  station flooding thousands of messages adds a few to each batch, not thousands
  ahead of everyone else. Each station's own order is kept.
- ``TokenBucket``: per-station rate of *bad* payloads (garbage) beyond which they are
  answered ``rate_limited`` without being written anywhere; valid events are never
  rate limited (a bridge replaying its outbox after an outage is a legitimate burst).
- ``RecentAnswers``: the verdicts of the last ``maxlen`` committed messages by
  ``msg_id``, so a duplicate is answered from memory, without a write transaction (the
  database's unique ``msg_id`` stays the truth for anything older).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")
MIN_SHARE = 4


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._queues: dict[str, deque[T]] = {}
        self._ring: deque[str] = deque()
        self._size = 0
        self._cond = threading.Condition()

    def put(self, key: str, item: T) -> None:
        with self._cond:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                self._ring.append(key)
            queue.append(item)
            self._size += 1
            self._cond.notify()

    def __len__(self) -> int:
        return self._size

    def qsize(self) -> int:
        """Messages waiting (``queue.Queue``'s name for it)."""
        return self._size

    def take(self, max_items: int, timeout: float) -> list[T]:
        """Up to ``max_items`` items, round-robin over the stations; waits up to
        ``timeout`` seconds for the first one."""
        with self._cond:
            if not self._size:
                self._cond.wait(timeout)
            if not self._size:
                return []
            share = max(MIN_SHARE, max_items // len(self._ring))
            taken: dict[str, int] = {}
            batch: list[T] = []
            progress = True
            while progress and len(batch) < max_items:
                progress = False
                for key in list(self._ring):
                    if len(batch) >= max_items:
                        break
                    if taken.get(key, 0) >= share:
                        continue
                    queue = self._queues[key]
                    batch.append(queue.popleft())
                    taken[key] = taken.get(key, 0) + 1
                    progress = True
                    if not queue:
                        del self._queues[key]
                        self._ring.remove(key)
            # Next time, start after the stations served first this time.
            self._ring.rotate(-1)
            self._size -= len(batch)
            return batch


class TokenBucket:
    """``rate`` events per second per key, bursts of ``burst``; ``allow`` never blocks."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._state[key] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


class RecentAnswers:
    def __init__(self, maxlen: int = 100_000) -> None:
        self.maxlen = maxlen
        self._answers: OrderedDict[str, str] = OrderedDict()

    def get(self, msg_id: str) -> str | None:
        return self._answers.get(msg_id)

    def add(self, msg_id: str, result: str) -> None:
        self._answers[msg_id] = result
        self._answers.move_to_end(msg_id)
        while len(self._answers) > self.maxlen:
            self._answers.popitem(last=False)
