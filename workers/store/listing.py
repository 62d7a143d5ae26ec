"""Listing the pool and the labels a page at a time, in a stable order.

Items are listed in the lexical order of their ids, labels by schema (in the project's
order), item id and annotator. A page starts after the last row of the one before (keyset
pagination over ``keys.item_index`` and ``keys.labelled_index``), never at an offset, so
rows written or deleted meanwhile never make a listing skip or repeat a row that existed
when it began: a row deleted before its page is read is not listed, a row added behind the
listing's position is not, and one added ahead of it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from redis import Redis

from workers.store import keys
from workers.store._codec import raw, text

LABELS_SCANNED_PER_ROW = 20
"""A filtered label page reads at most this many labelled items per row it may return,
then ends early (with a cursor), so a filter that matches little never holds a request."""


@dataclass(frozen=True)
class LabelRow:
    schema: str
    item: str
    annotator: str
    value: object
    updated_ms: int | None
    """When the label was last set (Unix ms); None for labels from before layout 3."""


@dataclass(frozen=True)
class LabelPosition:
    """Where a label listing stands: after this (schema, item, annotator)."""

    schema: str
    item: str
    annotator: str


class Listings:
    redis: Redis

    def item_page(
        self, project: str, after: str | None, limit: int, vectors: bool = False
    ) -> tuple[list[tuple[str, dict, bytes | None]], str | None]:
        """Up to ``limit`` items (id, document, float32 vector bytes or None) after the id
        ``after``, and the id to list the next page after (None at the end)."""
        start = "-" if after is None else "(" + after
        ids = [text(i) for i in self.redis.zrangebylex(keys.item_index(project), start, "+", 0, limit + 1)]
        more = len(ids) > limit
        ids = ids[:limit]
        if not ids:
            return [], None
        docs = self.redis.hmget(keys.items(project), ids)
        vecs = self.redis.hmget(keys.vectors(project), ids) if vectors else [None] * len(ids)
        rows = [
            (item_id, json.loads(doc), raw(vec) if vec is not None else None)
            for item_id, doc, vec in zip(ids, docs, vecs, strict=True)
            if doc is not None  # deleted since the index was read
        ]
        return rows, ids[-1] if more else None

    def label_page(
        self,
        project: str,
        schemas: list[str],
        after: LabelPosition | None,
        limit: int,
        annotator: str | None = None,
        since_ms: int | None = None,
    ) -> tuple[list[LabelRow], LabelPosition | None]:
        """Up to ``limit`` labels after ``after`` (of ``annotator``, set at or after
        ``since_ms``, where given), and where the next page starts (None at the end). A
        filtered page may hold fewer rows than ``limit`` and still have a next one."""
        budget = limit * LABELS_SCANNED_PER_ROW if (annotator or since_ms is not None) else None
        rows: list[LabelRow] = []
        scanned = 0
        position = after
        first = 0 if after is None else schemas.index(after.schema)
        chunk = max(min(limit, 1000), 10)
        for schema in schemas[first:]:
            resume = position if position is not None and position.schema == schema else None
            start = "-" if resume is None else "[" + resume.item
            while True:
                ids = [
                    text(i)
                    for i in self.redis.zrangebylex(
                        keys.labelled_index(project, schema), start, "+", 0, chunk
                    )
                ]
                if not ids:
                    break
                start = "(" + ids[-1]
                pipe = self.redis.pipeline(transaction=False)
                pipe.hmget(keys.labels(project, schema), ids)
                pipe.hmget(keys.label_times(project, schema), ids)
                values, times = pipe.execute()
                for item_id, found, at in zip(ids, values, times, strict=True):
                    if found is None:
                        continue  # its labels were deleted since the index was read
                    by_annotator = json.loads(found)
                    when = json.loads(at) if at is not None else {}
                    names = sorted(by_annotator)
                    if resume is not None and item_id == resume.item:
                        names = [n for n in names if n > resume.annotator]
                    for name in names:
                        if len(rows) == limit:
                            return rows, position
                        position = LabelPosition(schema, item_id, name)
                        updated = when.get(name)
                        if annotator is not None and name != annotator:
                            continue
                        if since_ms is not None and (updated is None or updated < since_ms):
                            continue
                        rows.append(LabelRow(schema, item_id, name, by_annotator[name], updated))
                    scanned += 1
                    if budget is not None and scanned >= budget and position is not None:
                        return rows, position
                resume = None
            position = None
        return rows, None

    def label_count(self, project: str, schemas: list[str]) -> int:
        """Labels (item, annotator pairs) in the schemas."""
        return sum(
            sum(int(n) for n in self.redis.hvals(keys.annotator_counts(project, schema)))
            for schema in schemas
        )

    def iter_labels(
        self, project: str, schemas: list[str], annotator: str | None = None, since_ms: int | None = None
    ) -> Iterator[LabelRow]:
        """Every label (filtered), page by page, in listing order."""
        after: LabelPosition | None = None
        while True:
            rows, after = self.label_page(project, schemas, after, 1000, annotator, since_ms)
            yield from rows
            if after is None:
                return

    def iter_item_pages(
        self, project: str, vectors: bool = False, size: int = 1000
    ) -> Iterator[list[tuple[str, dict, bytes | None]]]:
        """Every item, a page at a time, in listing order."""
        after: str | None = None
        while True:
            rows, after = self.item_page(project, after, size, vectors)
            if rows:
                yield rows
            if after is None:
                return
