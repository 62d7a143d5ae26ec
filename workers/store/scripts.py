"""The Lua scripts, loaded once per connection from the ``.lua`` files beside this module.

Redis runs a script atomically, so operations that must not interleave (label upserts,
leasing a batch, coalescing retrain triggers) are scripts. Each file's header says what it
takes in ``KEYS`` and ``ARGV`` and what it returns.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from redis import Redis
from redis.commands.core import Script

NAMES = (
    "upsert_labels",
    "delete_label",
    "next_batch",
    "release",
    "claim_trigger",
    "job_started",
    "job_ended",
    "forget_job",
    "spend_since",
)


@cache
def source(name: str) -> str:
    """A script's Lua, read from its file once per process (every job makes a Store)."""
    return (files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Every script, registered on one connection; ``scripts.next_batch(keys=..., args=...)``."""

    def __init__(self, redis: Redis) -> None:
        for name in NAMES:
            setattr(self, name, redis.register_script(source(name)))

    def __getattr__(self, name: str) -> Script:  # for type checkers: set in __init__
        raise AttributeError(name)
