"""Sign-in limits that stop guessing without locking the rightful user out for long.

Three counters of recent failures (docs/security.md, "What is defended and how"):

- per **account** (a user name ``user:<name>`` or a badge ``badge:<badge>``): after
  ``per_account`` failures within the window, that account's tries are refused until
  the oldest failure leaves the window. This is what bounds guessing one password or
  PIN: at most ``per_account`` guesses per window, from everywhere together.
- per **source** (a client address ``address:<ip>``, or a tablet ``tablet:<station>``):
  a throttle, not a lock. After ``per_source`` failures within the window the source
  waits 1 s after its last failure, then 2, 4, 8 ... up to ``max_delay`` seconds, so one
  source cannot try many accounts quickly, and everybody else behind the same address
  (a proxy, the plant's NAT) waits seconds, never the whole window. Tries refused for
  waiting are not failures: they do not make the wait grow.
- per **known browser** (``browser:<id>``, from a signed cookie a browser gets when it
  signs in as that person): a try for that person from that browser skips the account
  limit and the source throttle and counts against the browser alone (``per_account``
  failures). Whoever guesses a person's password from elsewhere cannot lock that
  person out of the browser they always use.

A try is counted as a failure when it starts (``begin``), atomically with the check,
so many tries sent at once cannot all pass the check before the first failure is
known; ``release`` takes it back when it was not a failure (a part scanned at a
tablet, a PIN pad opened); ``succeeded`` also forgets the account's failures (or
the known browser's, when the try came in as one).

In process and in memory: each web process counts on its own and a restart forgets.
With N processes an attacker gets at most N times the limits, which still turns an
online password guess into days instead of seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
# Every this many hits, forget the keys whose failures all left the window, so a
# stream of made-up user names or badges cannot grow memory without bound.
SWEEP_EVERY = 1024


class RateLimited(Exception):
    """Too many recent failed sign-ins; ``retry_after`` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


class SlidingWindow:
    """Failures per key within ``window_seconds``, each key admitting a try by a rule."""

    def __init__(self, window_seconds: float, clock: Clock = time.monotonic) -> None:
        self.window = window_seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits

    def wait(self, hits: deque[float], now: float) -> float:
        """Seconds the key with these ``hits`` (oldest first) waits; 0: it may try."""
        raise NotImplementedError

    def retry_after(self, key: str) -> int:
        """0 when ``key`` may try now, else whole seconds until it may."""
        with self._lock:
            now = self.clock()
            wait = self.wait(self._prune(key, now), now)
            return _whole_seconds(wait) if wait > 0 else 0

    def take(self, key: str) -> float | None:
        """Admit a try and count it as a failure (its time), or None when ``key`` waits."""
        with self._lock:
            now = self.clock()
            hits = self._prune(key, now)
            if self.wait(hits, now) > 0:
                return None
            self._hits.setdefault(key, deque()).append(now)
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self._since_sweep = 0
                for stale in list(self._hits):
                    self._prune(stale, now)
            return now

    def give_back(self, key: str, at: float) -> None:
        """Forget the failure ``take`` counted at ``at``: the try did not fail."""
        with self._lock:
            hits = self._hits.get(key)
            if hits is not None and at in hits:
                hits.remove(at)
                if not hits:
                    del self._hits[key]

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def __len__(self) -> int:
        return len(self._hits)


class Limit(SlidingWindow):
    """``limit`` failures within the window refuse further tries until the oldest leaves."""

    def __init__(self, limit: int, window_seconds: float, clock: Clock = time.monotonic) -> None:
        super().__init__(window_seconds, clock)
        self.limit = limit

    def wait(self, hits: deque[float], now: float) -> float:
        if len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window - now


class Throttle(SlidingWindow):
    """Slows a source down instead of locking it out: up to ``allowance`` failures within
    the window cost nothing; from then on the source waits ``2 ** (failures -
    allowance)`` seconds, at most ``max_delay``, after its last failure."""

    def __init__(
        self,
        allowance: int,
        window_seconds: float,
        max_delay: float,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(window_seconds, clock)
        self.allowance = allowance
        self.max_delay = max_delay

    def delay(self, failures: int) -> float:
        """Seconds a source with ``failures`` recent failures waits after the last one."""
        if failures < self.allowance:
            return 0.0
        return float(min(2 ** min(failures - self.allowance, 32), self.max_delay))

    def wait(self, hits: deque[float], now: float) -> float:
        if not hits:
            return 0.0
        return max(0.0, hits[-1] + self.delay(len(hits)) - now)


@dataclass
class Attempt:
    """One sign-in try admitted by ``SignInLimiter.begin``: the failures it counted."""

    account: str | None = None
    browser: str | None = None
    trusted: bool = False  # admitted as a known browser: the account was not counted
    counted: list[tuple[SlidingWindow, str, float]] = field(default_factory=list)


class SignInLimiter:
    """The sign-in limits of one app: accounts, sources, known browsers."""

    def __init__(
        self,
        *,
        per_account: int,
        per_source: int,
        window_seconds: float,
        max_delay: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.accounts = Limit(per_account, window_seconds, clock)
        self.browsers = Limit(per_account, window_seconds, clock)
        self.sources = Throttle(per_source, window_seconds, max_delay, clock)

    def set_clock(self, clock: Clock) -> None:
        """Read the time from ``clock`` (seconds) from now on; for tests."""
        self.accounts.clock = self.browsers.clock = self.sources.clock = clock

    def begin(
        self, account: str | None, source: str | None, *, browser: str | None = None
    ) -> Attempt:
        """Admit a try, counted as a failure until ``release`` / ``succeeded``; raise
        ``RateLimited`` when it must wait. ``None`` leaves a counter out; ``browser`` is
        the known-browser key when the browser vouches for ``account``."""
        attempt = Attempt(account=account, browser=browser)
        if browser is not None:
            at = self.browsers.take(browser)
            if at is not None:  # a known browser within its own limit
                attempt.trusted = True
                attempt.counted.append((self.browsers, browser, at))
                return attempt
        for window, key in ((self.accounts, account), (self.sources, source)):
            if not key:
                continue
            at = window.take(key)
            if at is None:
                wait = window.retry_after(key)
                self.release(attempt)
                raise RateLimited(max(wait, 1))
            attempt.counted.append((window, key, at))
        return attempt

    def failed(self, attempt: Attempt) -> None:
        """The try failed: its failures stay counted."""
        attempt.counted.clear()

    def release(self, attempt: Attempt) -> None:
        """The try was not a failure (nothing was guessed): take its counts back."""
        for window, key, at in attempt.counted:
            window.give_back(key, at)
        attempt.counted.clear()

    def succeeded(self, attempt: Attempt) -> None:
        """A right password or PIN: the failures of the way it came in are forgotten (the
        known browser's, or else the account's). Not the source's: an attacker's own
        account must not reset the throttle of the address it guesses from; and a
        sign-in from a known browser leaves the account's failures from elsewhere."""
        self.release(attempt)
        if attempt.browser:
            self.browsers.clear(attempt.browser)
        if attempt.account and not attempt.trusted:
            self.accounts.clear(attempt.account)
