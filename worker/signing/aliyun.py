"""Alibaba Cloud signatures: RPC v1 (HMAC-SHA1), which the client sends, and ACS3-HMAC-SHA256 (V3),
which the sandbox also accepts.

Sources: aliyun-python-sdk-core ``auth/composer/rpc_signature_composer.py`` and alibabacloud-tea-openapi
``Utils.get_authorization``; shared/vendor-protocols.md restates both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from worker.signing.encoding import rfc3986

RPC_SIGNATURE_METHOD = "HMAC-SHA1"
RPC_SIGNATURE_VERSION = "1.0"
ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def rpc_canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()))


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{rfc3986('/')}&{rfc3986(rpc_canonical_query(params))}"


def rpc_signature(access_key_secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rpc_signed_query(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The query string to send: ``params`` in their given order, then ``Signature``."""
    signature = rpc_signature(access_key_secret, rpc_string_to_sign(method, params))
    pairs = [*params.items(), ("Signature", signature)]
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in pairs)


def acs3_authorization(
    method: str,
    pathname: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
) -> str:
    """The ``Authorization`` header of a V3 request.

    Signs ``host`` and every ``x-acs-*`` header (and ``content-type`` when present), as the SDK does;
    ``x-acs-content-sha256`` carries the payload hash.
    """
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    signed = sorted(k for k in lowered if k in ("host", "content-type") or k.startswith("x-acs-"))
    canonical_request = "\n".join(
        [
            method.upper(),
            pathname,
            "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(query.items())),
            "".join(f"{k}:{lowered[k]}\n" for k in signed),
            ";".join(signed),
            lowered.get("x-acs-content-sha256", EMPTY_BODY_SHA256),
        ]
    )
    string_to_sign = f"{ACS3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    signature = hmac.new(access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(signed)},Signature={signature}"
