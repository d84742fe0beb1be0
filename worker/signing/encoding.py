"""RFC 3986 percent-encoding, shared by the Alibaba Cloud and Huawei Cloud signers."""

from __future__ import annotations

from urllib.parse import quote

# Only the RFC 3986 unreserved set stays as is: space is %20, '*' is %2A, '~' stays '~', '/' is %2F.
_UNRESERVED = "-_.~"


def rfc3986(value: str) -> str:
    return quote(value, safe=_UNRESERVED, encoding="utf-8")
