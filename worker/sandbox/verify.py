"""Signature and timestamp checks, the vendors' side of worker.signing.

Each check recomputes the signature from the request exactly as received (method, path, query, the
headers the client says it signed) with the signers in worker.signing, which are pinned by the
vendors' own SDK vectors, so a client passes here only if it would pass at the vendor.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from urllib.parse import unquote

from worker.signing import aliyun as aliyun_signer
from worker.signing import huawei as huawei_signer
from worker.signing import zego as zego_signer


def auth_fields(header: str, algorithm: str) -> dict[str, str] | None:
    """``"ALG A=1, B=2,C=3"`` -> {"A": "1", "B": "2", "C": "3"}; None when the algorithm differs."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme != algorithm:
        return None
    fields = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def fresh(stamp: float | None, now: float, window: float) -> bool:
    return stamp is not None and abs(now - stamp) <= window


def aliyun_timestamp(text: str | None) -> float | None:
    """``2024-03-01T12:00:00Z`` (fractions tolerated) -> Unix time, or None."""
    if not text or not text.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def huawei_date(text: str | None) -> float | None:
    """``20240301T120000Z`` -> Unix time, or None."""
    try:
        return datetime.strptime(text or "", huawei_signer.DATE_FORMAT).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def aliyun_rpc(method: str, params: Mapping[str, str], secret: str) -> bool:
    """RPC v1: every received parameter but Signature, signed with the real HTTP method."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    expected = aliyun_signer.rpc_signature(secret, aliyun_signer.rpc_string_to_sign(method, unsigned))
    return hmac.compare_digest(expected, params.get("Signature", ""))


def aliyun_acs3(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    fields: Mapping[str, str],
    secret: str,
) -> bool:
    """ACS3-HMAC-SHA256 over the headers named in SignedHeaders (host, content-type, x-acs-*: what the SDK
    signs). The canonical URI of an RPC API is ``/``; the path as received is accepted too, so a client
    behind a path prefix can sign either."""
    if headers.get("x-acs-content-sha256", "") != hashlib.sha256(body).hexdigest():
        return False
    signed = [name for name in fields.get("SignedHeaders", "").split(";") if name]
    if any(name not in headers for name in signed):
        return False
    chosen = {name: headers[name] for name in signed}
    access_key_id = fields.get("Credential", "")
    received = fields.get("Signature", "")
    for pathname in dict.fromkeys(("/", unquote(path))):
        expected = aliyun_signer.acs3_authorization(method, pathname, query, chosen, access_key_id, secret)
        same_headers = f"SignedHeaders={';'.join(signed)}," in expected
        if same_headers and hmac.compare_digest(expected.rpartition("Signature=")[2], received):
            return True
    return False


def zego(app_id: int, nonce: str, timestamp: int, secret: str, received: str) -> bool:
    return hmac.compare_digest(zego_signer.signature(app_id, nonce, secret, timestamp), received.lower())


def huawei_aksk(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    fields: Mapping[str, str],
    secret: str,
) -> bool:
    """SDK-HMAC-SHA256 over the exact path and query received and the headers named in SignedHeaders,
    which must include host and X-Sdk-Date."""
    signed = [name for name in fields.get("SignedHeaders", "").split(";") if name]
    if "host" not in signed or "x-sdk-date" not in signed or any(name not in headers for name in signed):
        return False
    chosen = {name: headers[name] for name in signed if name != "host"}
    expected = huawei_signer.authorization(
        method, headers["host"], unquote(path), list(query), chosen, body, fields.get("Access", ""), secret
    )
    return hmac.compare_digest(expected.rpartition("Signature=")[2], fields.get("Signature", ""))
