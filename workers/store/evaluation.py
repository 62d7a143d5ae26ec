"""The evaluation sample and the uniform draws: which items were chosen at random.

The evaluation sample is drawn once, uniformly, from the pool (``eval_size`` items; the
refresh draws it before it ranks anything) and handed out at the ``eval_fraction`` share of
batches until every item of it is labelled. Its items are never ranked, so active learning
cannot pick them, and once labelled they measure the model instead of training it.

The uniform draws (``random_draws``) are the items the exploration share handed out: their
labels are a random sample of the pool, from which the gain over random is estimated.
"""

from __future__ import annotations

from redis import Redis

from workers.store import keys
from workers.store._codec import text


class EvaluationSample:
    redis: Redis

    def eval_sample(self, project: str, schema: str) -> list[str]:
        """The evaluation sample's items, in the order they are handed out."""
        return [text(i) for i in self.redis.lrange(keys.eval_sample(project, schema), 0, -1)]

    def extend_eval_sample(self, project: str, schema: str, items: list[str]) -> None:
        if items:
            self.redis.rpush(keys.eval_sample(project, schema), *items)

    def open_items(self, project: str, schema: str, ids: list[str]) -> list[bool]:
        """Per id, whether the item is in the pool with no label and out of the evaluation
        sample: an item a ranking ranks."""
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.items(project), ids)
        pipe.hmget(keys.annotator_counts(project, schema), ids)
        pipe.lrange(keys.eval_sample(project, schema), 0, -1)
        pipe.smembers(keys.evaluation(project, schema))
        docs, nlab, sample, handed = pipe.execute()
        held = {text(i) for i in sample} | {text(i) for i in handed}
        return [
            doc is not None and not int(n or 0) and item not in held
            for item, doc, n in zip(ids, docs, nlab, strict=True)
        ]

    def random_draws(self, project: str, schema: str) -> set[str]:
        """Items last handed out, or placed in a tool's order, as a uniform draw."""
        return {text(m) for m in self.redis.smembers(keys.random_draws(project, schema))}

    def mark_sources(self, project: str, schema: str, placed: list[tuple[str, str]]) -> None:
        """Record how the items of an order written to an annotation tool were chosen, as
        ``GET /next`` records it for the batches it hands out: ``(item, source)``."""
        evaluation = [i for i, s in placed if s == "evaluation"]
        drawn = [i for i, s in placed if s == "random"]
        ranked = [i for i, s in placed if s == "ranking"]
        pipe = self.redis.pipeline(transaction=False)
        if evaluation:
            pipe.sadd(keys.evaluation(project, schema), *evaluation)
        if drawn:
            pipe.sadd(keys.random_draws(project, schema), *drawn)
        if ranked:
            pipe.srem(keys.random_draws(project, schema), *ranked)
        pipe.execute()
