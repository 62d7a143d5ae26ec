"""API keys: who may do what.

A key is ``alr_<id>_<secret>``: the id finds its record, the secret (32 random bytes)
proves it. Only a keyed hash of the secret is stored: HMAC-SHA256 under a key derived from
the admin key. A keyed hash rather than a slow one because the secrets are random and long
(a slow hash protects guessable passwords, and would cost every request milliseconds),
and keyed so that a copy of the Redis data alone cannot be used to test guesses offline.
Rotating the admin key therefore invalidates every project key.

Roles: ``manager`` may do everything on its project; ``annotator`` may ask for batches,
send and delete its own labels and release its own leases, as one of the annotator names
the key is bound to; the admin key (``ALRANK_ADMIN_KEY``) creates projects and may act on
any.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

ROLES = ("manager", "annotator")
"""Roles a project key may have."""

TOKEN_RE = re.compile(r"^alr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the admin, or one key of one project."""

    role: str
    """admin, manager or annotator."""
    project: str | None = None
    key_id: str | None = None
    annotators: tuple[str, ...] = field(default_factory=tuple)
    """Annotator names an annotator key may act as."""
    per_minute: int | None = None
    """Requests the key may make per minute (None: no limit)."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see(self, project: str) -> bool:
        return self.is_admin or self.project == project

    def may_manage(self, project: str) -> bool:
        return self.is_admin or (self.project == project and self.role == "manager")

    def may_act_as(self, annotator: str) -> bool:
        return self.role != "annotator" or annotator in self.annotators


def new_token() -> tuple[str, str, str]:
    """A fresh key: (token, key id, secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"alr_{key_id}_{secret}", key_id, secret


def parse_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed project key, else None."""
    m = TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def hashing_key(admin_key: str) -> bytes:
    """The HMAC key project keys are hashed under, derived from the admin key."""
    return hmac.new(admin_key.encode(), b"alrank api keys v1", hashlib.sha256).digest()


def digest(hash_key: bytes, secret: str) -> str:
    return hmac.new(hash_key, secret.encode(), hashlib.sha256).hexdigest()


def admin_matches(admin_key: str, presented: str) -> bool:
    return hmac.compare_digest(
        hashlib.sha256(admin_key.encode()).digest(), hashlib.sha256(presented.encode()).digest()
    )


def backend_secret(
    admin_key: str | None, project: str, nonce: str, purpose: str = "label-studio backend"
) -> str:
    """The secret of a project's connection to a tool (``purpose``: Label Studio's backend
    URL, Potato's webhook secret): a keyed hash of the project and its nonce, so it is never
    stored and a new nonce (or admin key) retires it. Without an admin key (no auth) the
    nonce stands in."""
    if not admin_key:
        return nonce
    message = f"{purpose}\0{project}\0{nonce}".encode()
    return hmac.new(hashing_key(admin_key), message, hashlib.sha256).hexdigest()[:40]
