"""Every read and write of alrank's state in Redis.

``Store`` is one object over one connection (passed in), made of a class per concern:
projects, items, labels, the evaluation sample, leases and batches, rankings, label quality,
model versions, job state, API keys, Label Studio and Potato connections. The layout of the
keys is stated once, in :mod:`workers.store.keys`; the operations that must not interleave
are Lua scripts in ``scripts/``.
"""

from __future__ import annotations

import re

from redis import Redis

from workers import limits
from workers.exceptions import InvalidInput
from workers.store._codec import now_iso
from workers.store.apikeys import ApiKeys
from workers.store.evaluation import EvaluationSample
from workers.store.items import Items
from workers.store.jobstate import JobState
from workers.store.label_studio import LabelStudioLinks
from workers.store.labels import Labels
from workers.store.leases import Batch, BatchItem, Leases
from workers.store.listing import LabelPosition, LabelRow, Listings
from workers.store.models import Models
from workers.store.potato import PotatoLinks, SyncJobs
from workers.store.projects import Projects
from workers.store.quality import Quality
from workers.store.rankings import RankingEntry, Rankings
from workers.store.scripts import Scripts

NAME_RE = re.compile(limits.NAME_PATTERN)


class Store(
    Projects,
    Items,
    Labels,
    Listings,
    EvaluationSample,
    Leases,
    Rankings,
    Quality,
    Models,
    JobState,
    ApiKeys,
    LabelStudioLinks,
    PotatoLinks,
    SyncJobs,
):
    """Every read and write of alrank's state, over one Redis connection (passed in)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.scripts = Scripts(redis)
        self.seen_rankings = {}


def check_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


__all__ = [
    "Batch",
    "BatchItem",
    "LabelPosition",
    "LabelRow",
    "RankingEntry",
    "Store",
    "check_name",
    "now_iso",
]
