"""ZEGO server API signature v2.0: md5 hex of AppId + SignatureNonce + ServerSecret + Timestamp.

Source: ZEGO's "Accessing server APIs" page (the ServerSecret itself is never sent).
"""

from __future__ import annotations

import hashlib

SIGNATURE_VERSION = "2.0"


def signature(app_id: int, nonce: str, server_secret: str, timestamp: int) -> str:
    return hashlib.md5(f"{app_id}{nonce}{server_secret}{timestamp}".encode()).hexdigest()
