"""Request signers: pure functions of (credentials, request parts, time, nonce).

Time and nonce are passed in, never read here, so ``tests/data/vendor-vectors.json`` (from the vendors'
own SDKs) pins every byte.
"""
