"""Nonces already used, per account, forgotten once their timestamp could no longer pass anyway.

Alibaba Cloud refuses a SignatureNonce seen in the last 15 minutes (SignatureNonceUsed), so a replayed
or naively retried request fails even with a valid signature. Not thread-safe: the engine's lock covers it.
"""

from __future__ import annotations

from collections import deque


class NonceBook:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._seen: dict[tuple[str, str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str, str]]] = deque()

    def first_use(self, vendor: str, account: str, nonce: str, now: float) -> bool:
        """True, remembering the nonce, unless it was used within the last ``ttl`` seconds."""
        while self._order and self._order[0][0] <= now - self.ttl:
            _, old = self._order.popleft()
            if self._seen.get(old, now) <= now - self.ttl:
                del self._seen[old]
        key = (vendor, account, nonce)
        if key in self._seen:
            return False
        self._seen[key] = now
        self._order.append((now, key))
        return True

    def clear(self) -> None:
        self._seen.clear()
        self._order.clear()
