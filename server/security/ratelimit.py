"""Sign-in rate limiting: a sliding window of recent failures per name and per address.

In-process and in memory: each web process counts on its own and a restart forgets
(documented in docs/security.md). With N processes an attacker gets at most N times
the limit, which still turns an online password guess into days instead of seconds.
Only failures count; a success clears the name's window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimited(Exception):
    """Too many recent failed sign-ins; ``retry_after`` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


class SlidingWindow:
    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def retry_after(self, key: str) -> int:
        """0 when ``key`` may try now, else whole seconds until its oldest hit expires."""
        with self._lock:
            now = self.clock()
            hits = self._prune(key, now)
            if len(hits) < self.limit:
                return 0
            return max(1, int(hits[0] + self.window - now + 0.999))

    def hit(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._prune(key, now)
            self._hits.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


class SignInLimiter:
    def __init__(
        self,
        *,
        per_name: int,
        per_address: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.names = SlidingWindow(per_name, window_seconds, clock)
        self.addresses = SlidingWindow(per_address, window_seconds, clock)

    def check(self, name: str, address: str) -> None:
        wait = max(self.names.retry_after(name.lower()), self.addresses.retry_after(address))
        if wait:
            raise RateLimited(wait)

    def failed(self, name: str, address: str) -> None:
        self.names.hit(name.lower())
        self.addresses.hit(address)

    def succeeded(self, name: str) -> None:
        self.names.clear(name.lower())
