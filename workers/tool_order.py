"""The order written to an annotation tool (Label Studio's queue, Potato's feed files), with
the evaluation and exploration shares that ``GET /next`` puts in its batches.

A tool serves its queue from the top, so the position of an item in the order written
after ``L`` labels is, near enough, the label it will become: position ``k`` is the
``L + k``-th label. Giving position ``k`` to the evaluation sample when
``share(L + k, 1, eval_fraction)`` says so keeps the shares exact (to within the one item
two shares may ask for at the same position, which the next position takes) over the labels
a tool returns, whichever part of each order its annotators get through before the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.batches import share
from workers.settings import active_learning
from workers.store import RankingEntry, Store


@dataclass
class Placed:
    """One item of a tool's order: how it was chosen and its entry in the ranking (None for
    an evaluation item, which the ranking never holds)."""

    item: str
    source: str
    entry: RankingEntry | None


def compose(
    ranked: list[str],
    drawn: list[str],
    sample: list[str],
    start: int,
    n: int,
    eval_fraction: float,
    explore: float,
) -> list[tuple[str, str]]:
    """``n`` positions of an order, as ``(item, source)``: the evaluation sample's items and
    the random list's at their shares of the labels from ``start`` on, the ranking's order in
    between. Each list holds only items still to label; a list that runs dry gives way to
    the next (evaluation, then random, then the ranking, then random again)."""
    lists = {"evaluation": iter(sample), "random": iter(drawn), "ranking": iter(ranked)}
    used: set[str] = set()

    def pull(source: str) -> str | None:
        for item in lists[source]:
            if item not in used:
                used.add(item)
                return item
        return None

    out: list[tuple[str, str]] = []
    owed = {"evaluation": 0, "random": 0}
    for k in range(n):
        owed["evaluation"] += share(start + k, 1, eval_fraction)
        owed["random"] += share(start + k, 1, explore)
        wanted = [s for s in ("evaluation", "random") if owed[s] > 0]
        for source in [*wanted, "ranking", "random"]:
            item = pull(source)
            if item is None:
                if source in owed:
                    owed[source] = 0  # that list is dry: its share waits for no one
                continue
            if source in owed:
                owed[source] = max(0, owed[source] - 1)
            out.append((item, source))
            break
        else:
            break  # every list ran dry
    return out


def tool_order(
    store: Store,
    project: dict,
    schema: str,
    n: int,
    exclude: Callable[[list[str]], list[bool]] | None = None,
) -> tuple[dict | None, list[Placed]]:
    """The published ranking's metadata and the first ``n`` items of the order to write to
    a tool: items labelled by enough annotators, and those ``exclude`` flags, left out. The sources are
    recorded as ``GET /next`` records them, so labels that come back through the tool count
    as evaluation and uniform draws too."""
    name = project["name"]
    al = active_learning(project)
    meta, ranked, drawn = store.ranking_lists(name, schema, 4 * n)
    if meta is None:
        return None, []
    sample = store.eval_sample(name, schema) if al["eval_fraction"] > 0 else []
    needed = al["min_annotations_per_instance"]
    candidates = list(dict.fromkeys([*(i for i, _ in ranked), *(i for i, _ in drawn), *sample]))
    counts = dict(zip(candidates, store.annotator_counts(name, schema, candidates), strict=True))
    flagged = dict(zip(candidates, exclude(candidates), strict=True)) if exclude and candidates else {}

    def open_(ids) -> list[str]:
        return [i for i in ids if counts[i] < needed and not flagged.get(i, False)]

    entries = {i: e for i, e in [*ranked, *drawn]}
    start = store.labelled_count(name, schema)
    placed = compose(
        open_(i for i, _ in ranked),
        open_(i for i, _ in drawn),
        open_(sample)[:n],
        start,
        n,
        al["eval_fraction"],
        al["random_sample_percent"],
    )
    store.mark_sources(name, schema, placed)
    return meta, [Placed(i, s, entries.get(i) if s != "evaluation" else None) for i, s in placed]
