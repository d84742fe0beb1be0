"""Huawei Cloud APIG AK/SK signature (SDK-HMAC-SHA256).

Source: huaweicloudsdkcore ``signer/signer.py`` (Signer.sign); shared/vendor-protocols.md restates it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from worker.signing.encoding import rfc3986

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"

QueryParams = Sequence[tuple[str, str | Sequence[str]]]


def _flatten(query: QueryParams) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in query:
        values = [value] if isinstance(value, str) else list(value)
        pairs.extend((name, v) for v in values)
    return pairs


def encoded_query(query: QueryParams) -> str:
    """The query string as sent: names and values RFC 3986 encoded (a comma is %2C), in given order."""
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in _flatten(query))


def canonical_request(
    method: str, path: str, query: QueryParams, headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """(canonical request, signed header names) over every header given, ``host`` included."""
    segments = [rfc3986(segment) for segment in path.split("/")]
    canonical_path = "/".join(segments)
    if not canonical_path.endswith("/"):
        canonical_path += "/"
    # Sorted on the raw names and values, then encoded, as huaweicloudsdkcore's Signer does.
    canonical_query = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(_flatten(query)))
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    names = sorted(lowered)
    request = "\n".join(
        [
            method.upper(),
            canonical_path,
            canonical_query,
            "".join(f"{name}:{lowered[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    return request, ";".join(names)


def authorization(
    method: str,
    host: str,
    path: str,
    query: QueryParams,
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
) -> str:
    """The ``Authorization`` header; ``headers`` must hold X-Sdk-Date and must not hold Host."""
    all_headers = {**headers, "host": host}
    request, signed_names = canonical_request(method, path, query, all_headers, body)
    date = next(v for k, v in headers.items() if k.lower() == DATE_HEADER.lower())
    string_to_sign = f"{ALGORITHM}\n{date}\n{hashlib.sha256(request.encode()).hexdigest()}"
    signature = hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={signed_names}, Signature={signature}"
