"""Replaying annotation on a labelled data set: does active learning help on *my* data?

The simulator hides the labels of a data set and replays labelling it, up to a budget,
measuring the model on a held-out test split as it goes. By default it replays the loop the
service runs (``workers.simulation.served``: its cold start, shares, retrain rule and
ranking, through the service's own code), which is what a team gets. The ``seeded`` loop
instead reveals a random seed set, then round after round trains the schema model and takes
the next batch from the head of the service's ranking (the strategy's order, class-balanced
unless ``balance_classes`` is off), as active-learning papers measure it. Several repeats give
a band; ``random`` is always among the strategies, as the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from workers.ensembles import train_ensemble
from workers.exceptions import InvalidInput, NotTrainable
from workers.models import aligned_proba, train_single_label
from workers.ranking import balanced, balances, batch_aware_depth, rank_pool, strategy_params
from workers.settings import AL_DEFAULTS
from workers.simulation.data import Dataset, featurise, numeric_rows, split
from workers.simulation.progress import Progress, RoundClock, terminal_progress, timed
from workers.simulation.report import write_results
from workers.simulation.spec import LOOPS, SERVED_POOL_SHARE, Point, Settings
from workers.strategies import REGISTRY, STRATEGIES, needs_ensemble, select


def evaluate(
    x_train, y_train: list[str], x_test, y_test: list[str], seed: int, classifier: str = "logistic_regression"
):
    """Accuracy and macro-F1 of the schema model trained on the given labels."""
    try:
        model = train_single_label(x_train, y_train, seed, classifier)
        pred = [model.classes[j] for j in model.predict_proba(x_test).argmax(axis=1)]
    except NotTrainable:
        model = None
        pred = [y_train[0]] * len(y_test)
    return model, accuracy_score(y_test, pred), f1_score(y_test, pred, average="macro")


Picker = Callable[..., np.ndarray]
"""An outside strategy, for comparisons: picker(model, x_pool, x_labelled, y_labelled, k,
rng) returns k row indices of x_pool."""


def run_one(
    strategy: str,
    repeat: int,
    x,
    y: list[str],
    x_test,
    y_test: list[str],
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    picker: Picker | None = None,
) -> list[Point]:
    """One replay: seed, then train-measure-select rounds until the budget is spent."""
    rng = np.random.default_rng([settings.seed, repeat])
    n = x.shape[0]
    budget = min(settings.budget, n)
    labelled = list(rng.choice(n, min(settings.seed_size, n), replace=False))
    is_labelled = np.zeros(n, dtype=bool)
    is_labelled[labelled] = True
    points = []
    while True:
        rows = np.array(labelled)
        y_lab = [y[i] for i in rows]
        model, acc, f1 = evaluate(x[rows], y_lab, x_test, y_test, settings.seed + repeat, settings.classifier)
        points.append(Point(strategy, repeat, len(labelled), acc, f1))
        if progress:
            progress(len(labelled))
        if len(labelled) >= budget:
            return points
        if settings.stop_accuracy is not None and acc >= settings.stop_accuracy:
            return points
        pool = np.flatnonzero(~is_labelled)
        size = settings.batch_size
        if settings.large_batch_size and len(labelled) >= settings.large_batch_from:
            size = settings.large_batch_size
        k = min(size, budget - len(labelled))
        xp = x[pool]
        if picker is not None and model is not None:
            chosen = pool[np.asarray(picker(model, xp, x[rows], y_lab, k, rng), dtype=np.int64)[:k]]
            labelled += chosen.tolist()
            is_labelled[chosen] = True
            continue
        # the service's parameters for this pool, from the replay's settings as a project's
        al = {**AL_DEFAULTS, "query_strategy": strategy, **settings.params}
        params = {**strategy_params(al, xp), **settings.params}
        spec = REGISTRY.get(strategy)  # None: a peer's picker, which has no model yet
        proba = member = None
        balance = balances(al, strategy)
        if model is not None and spec is not None and (spec.needs_model or balance):
            proba = model.predict_proba(xp)
            if needs_ensemble(strategy, params) and model.has_committee:
                member = model.committee_proba(xp, 5)
            elif needs_ensemble(strategy, params):
                members = train_ensemble(x[rows], y_lab, 5, 0.8, settings.seed + repeat, model.kind)
                member = np.stack([aligned_proba(m, xp, model.classes) for m in members])
        if spec is None or (proba is None and spec.needs_model):
            name = "diversity"  # no model yet: the cold start
        else:
            name = strategy
        if balance and name == strategy and model is not None and proba is not None:
            # the service's ranking head: the strategy orders a ranking's depth, then the
            # head keeps the pool's class mix (``workers.ranking.balance_classes``)
            depth = max(k, batch_aware_depth(al, 0))
            space, labelled_space = model.space(xp), model.space(x[rows])
            ranking = rank_pool(strategy, space, labelled_space, al, rng, proba, member, depth=depth)
            chosen = pool[balanced(ranking, model.classes, y_lab, proba, depth).order[:k]]
        else:
            sel = select(
                name,
                batch_size=k,
                probabilities=proba,
                member_probabilities=member,
                features=model.space(xp) if model is not None else xp,
                labelled_features=model.space(x[rows]) if model is not None else x[rows],
                random_state=rng,
                params=params,
            )
            chosen = pool[sel.indices]
        labelled += chosen.tolist()
        is_labelled[chosen] = True


def run_served(
    strategy: str,
    repeat: int,
    train: Dataset,
    test: Dataset,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
) -> list[Point]:
    """One replay of the served loop on a random share of the pool: a point per model the
    service would serve, measured on the test split."""
    from workers.simulation.served import ServedPool, replay

    rng = np.random.default_rng([settings.seed, repeat])
    keep = np.sort(rng.choice(len(train), max(1, int(SERVED_POOL_SHARE * len(train))), replace=False))
    ids = [f"{k:08d}" for k in keep]
    texts = [train.texts[k] for k in keep] if train.texts is not None else [""] * len(keep)
    vectors = test_vectors = None
    if train.rows is not None:
        both = numeric_rows([train.rows[k] for k in keep] + (test.rows or []))
        vectors, test_vectors = both[: len(keep)], list(both[len(keep) :])
    pool = ServedPool(ids, texts, vectors, {i: train.labels[k] for i, k in zip(ids, keep, strict=True)})
    al = {
        **settings.params,
        "query_strategy": strategy,
        "vectorizer_name": settings.vectorizer,
        "classifier_name": settings.classifier,
    }
    served = replay(
        pool,
        test.texts if test.texts is not None else [""] * len(test),
        test_vectors,
        test.labels,
        al,
        settings.batch_size,
        min(settings.budget, len(keep)),
        on_round=progress,
        gain_every=settings.gain_every,
    )
    return [
        Point(
            strategy,
            repeat,
            p.labels,
            p.accuracy,
            p.macro_f1,
            p.gain,
            p.labels - len(p.eval_ids),
            p.measured_accuracy,
        )
        for p in served
    ]


def check_settings(settings: Settings, pickers: dict[str, Picker]) -> None:
    """Refuse, saying why, a replay that cannot run as asked."""
    if settings.loop not in LOOPS:
        raise InvalidInput(f"unknown loop {settings.loop!r}; use one of {list(LOOPS)}")
    if settings.loop == "served" and pickers:
        raise InvalidInput("outside strategies replay the seeded loop only")
    first_model = {**AL_DEFAULTS, **settings.params}["min_instances_for_training"]
    if settings.loop == "served" and settings.budget <= first_model:
        raise InvalidInput(
            f"the served loop trains its first model after {first_model} labels "
            "(min_instances_for_training); give a larger budget, or loop: seeded"
        )
    unknown = [s for s in settings.strategies if s not in STRATEGIES and s not in pickers]
    if unknown:
        raise InvalidInput(f"unknown strategies {unknown}; use some of {list(STRATEGIES)}")


def simulate(
    train: Dataset,
    test: Dataset | None,
    settings: Settings,
    out_dir: str | Path,
    progress: Progress | None = None,
    pickers: dict[str, Picker] | None = None,
    features: tuple | None = None,
) -> dict:
    """Run every strategy ``repeats`` times and write curves.csv, curves.png, summary.json.

    ``progress(fraction, eta_seconds, stage)`` hears how far the run is: computing the
    features, then the rounds (default: a bar per stage on stderr). ``pickers`` adds
    outside strategies by name; before the first model they fall back to the same cold
    start as alrank's. ``features`` is ``featurise(train, test,
    settings.vectorizer)`` when the caller already has it (several runs on one data set
    need the features once); it needs ``test``."""
    progress = progress or terminal_progress()
    pickers = pickers or {}
    check_settings(settings, pickers)
    if "random" not in settings.strategies:
        settings.strategies = [*settings.strategies, "random"]
    if test is None:
        if features is not None:
            raise ValueError("precomputed features need the test split they were made with")
        train, test = split(train, settings.test_fraction, settings.seed)
    if features is None:
        features = featurise(train, test, settings.vectorizer, timed(progress, "features"))
    x, x_test = features
    full_model, full_acc, _ = evaluate(
        x, train.labels, x_test, test.labels, settings.seed, settings.classifier
    )
    del full_model

    runs = len(settings.strategies) * settings.repeats
    clock = RoundClock(progress, runs, settings.seed_size, settings.batch_size, settings.budget)

    def progress_for(base: int) -> Callable[[int], None]:
        run = base // settings.budget
        return lambda n_labels: clock.round_done(run, n_labels)

    points: list[Point] = []
    step = 0
    for strategy in settings.strategies:
        for repeat in range(settings.repeats):
            if settings.loop == "served":
                points += run_served(
                    strategy, repeat, train, test, settings, progress_for(step * settings.budget)
                )
            else:
                points += run_one(
                    strategy,
                    repeat,
                    x,
                    train.labels,
                    x_test,
                    test.labels,
                    settings,
                    progress_for(step * settings.budget),
                    pickers.get(strategy),
                )
            step += 1
    progress(1.0, 0.0, "simulating")

    return write_results(points, full_acc, settings, Path(out_dir))
