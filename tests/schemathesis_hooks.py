"""Schemathesis hooks for the fuzz tests (``SCHEMATHESIS_HOOKS=schemathesis_hooks``).

``POST /v1/projects/import`` takes a JSON Lines body (``application/x-ndjson``), which
schemathesis has no serializer for: the generated string is sent as it is, as a file of
one or more lines would be.
"""

from __future__ import annotations

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value) -> dict:
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": str(value).encode("utf-8", errors="surrogatepass")}
