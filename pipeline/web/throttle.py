"""Sign-in throttling: a few failed passwords per account and per address each minute.

Failures are counted in memory (one server process) over a sliding window; while an
account or an address is over its limit, sign-in is refused before the password is checked,
so guessing costs a minute per few tries. A successful sign-in clears the account's count.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import HTTPException

WINDOW_S = 60.0
PER_ACCOUNT = 5
PER_ADDRESS = 20
MAX_KEYS = 10_000


class SignInThrottle:
    """Counts failed sign-ins per account name and per client address."""

    def __init__(self, per_account: int = PER_ACCOUNT, per_address: int = PER_ADDRESS, window_s: float = WINDOW_S,
                 clock=time.monotonic):
        self.limits = {"account": per_account, "address": per_address}
        self.window_s, self.clock = window_s, clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("account", name.strip().casefold()), ("address", address)]

    def check(self, name: str, address: str) -> None:
        """Raise 429 while this account or address has too many recent failures."""
        now = self.clock()
        with self._lock:
            for key in self._keys(name, address):
                times = self._failures.get(key)
                while times and now - times[0] > self.window_s:
                    times.popleft()
                if times is not None and len(times) >= self.limits[key[0]]:
                    wait = int(self.window_s - (now - times[0])) + 1
                    raise HTTPException(429, f"Too many failed sign-ins for this {key[0]}; try again in {wait} s.",
                                        headers={"Retry-After": str(wait)})

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:  # many names tried: forget the expired ones
                for key in [k for k, times in self._failures.items() if not times or now - times[-1] > self.window_s]:
                    del self._failures[key]
            for key in self._keys(name, address):
                self._failures[key].append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("account", name.strip().casefold()), None)
