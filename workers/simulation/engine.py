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

import csv
import gzip
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.metrics import accuracy_score, f1_score

from workers import defaults
from workers.ensembles import train_ensemble
from workers.exceptions import InvalidInput, NotTrainable
from workers.features import Progress as FeatureProgress
from workers.features import VectorScale, pool_features
from workers.models import aligned_proba, train_single_label
from workers.ranking import balanced, balances, batch_aware_depth, rank_pool, strategy_params
from workers.settings import AL_DEFAULTS
from workers.strategies import REGISTRY, STRATEGIES, needs_ensemble, select

MARKS = (0.90, 0.95, 0.98)
"""Shares of the full-pool model's accuracy whose label cost the summary reports."""


@dataclass
class Dataset:
    """Rows of text or feature vectors, with their labels."""

    texts: list[str] | None
    rows: list[list] | None
    labels: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> Dataset:
        return Dataset(
            [self.texts[i] for i in idx] if self.texts is not None else None,
            [self.rows[i] for i in idx] if self.rows is not None else None,
            [self.labels[i] for i in idx],
        )


@dataclass
class Settings:
    strategies: list[str]
    seed_size: int = defaults.SIMULATION_SEED_SIZE
    batch_size: int = defaults.SIMULATION_BATCH_SIZE
    budget: int = defaults.SIMULATION_BUDGET
    repeats: int = defaults.SIMULATION_REPEATS
    test_fraction: float = defaults.SIMULATION_TEST_FRACTION
    seed: int = 0
    vectorizer: str = defaults.VECTORIZER_NAME
    classifier: str = defaults.CLASSIFIER_NAME
    params: dict = field(default_factory=dict)
    large_batch_size: int = 0
    """Past ``large_batch_from`` labels, batches of this size (0: keep ``batch_size``):
    cheaper rounds when a replay runs on towards the whole pool."""
    large_batch_from: int = 1000
    stop_accuracy: float | None = None
    """End a replay as soon as its test accuracy reaches this (for labels-to-a-mark runs)."""
    gain_every: int = defaults.SIMULATION_GAIN_EVERY
    """Served loop: estimate the gain over random, as the service reports it, at the first
    model past every multiple of this many labels, and check it against the ``random``
    strategy's measured curve (0: off)."""
    loop: str = "served"
    """``served``: the loop the service runs (its cold start, evaluation and exploration
    shares, retrain rule and ranking head; ``workers.simulation.served``), each repeat on a
    random 90% of the pool. ``seeded``: a random seed set of ``seed_size`` labels, then
    ``batch_size`` picks per round from the head of the service's ranking (the strategy's
    order, balanced by class unless ``params`` turn ``balance_classes`` off), as papers
    replay it."""


LOOPS = ("served", "seeded")
SERVED_POOL_SHARE = 0.9
"""Share of the pool each served repeat runs on (the service's loop is deterministic on a
given pool, so the repeats differ by their pools)."""


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def load_dataset(path: str | Path) -> Dataset:
    """JSON Lines (``{"text"|"features", "label"}``, optionally gzip'd) or CSV with a
    ``label`` column and either a ``text`` column or numeric feature columns."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"no such file: {path}")
    name = path.name.removesuffix(".gz")
    with _open_text(path) as f:
        if name.endswith((".jsonl", ".json")):
            records = (
                (f"{path}:{n}", _json_line(line, path, n)) for n, line in enumerate(f, 1) if line.strip()
            )
            return dataset_from_records(records, str(path))
        if not name.endswith(".csv"):
            raise InvalidInput(f"{path}: use .jsonl, .jsonl.gz or .csv")
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "label" not in fields:
            raise InvalidInput(f"{path}: the CSV needs a 'label' column; it has {fields}")
        feature_cols = [c for c in fields if c not in ("label", "id", "text")]
        texts: list[str] = []
        rows: list[list] = []
        labels: list[str] = []
        for rec in reader:
            labels.append(rec["label"])
            if "text" in fields:
                texts.append(rec["text"] or "")
            else:
                rows.append([_number_or_text(rec[c]) for c in feature_cols])
    return _dataset(texts, rows, labels, str(path))


def _json_line(line: str, path: Path, n: int):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{n}: not JSON ({exc.msg})") from None


def dataset_from_records(records: Iterable[tuple[str, dict]], source: str) -> Dataset:
    """A data set from ``(where, {"text"|"features", "label"})`` records; ``where`` names a
    record in error messages (a file and line, or a position in a request)."""
    texts: list[str] = []
    rows: list[list] = []
    labels: list[str] = []
    for where, obj in records:
        if not isinstance(obj, dict) or "label" not in obj:
            raise InvalidInput(f"{where}: a row needs a 'label'")
        labels.append(str(obj["label"]))
        if obj.get("text") is not None:
            texts.append(str(obj["text"]))
        elif obj.get("features") is not None:
            rows.append(list(obj["features"]))
        else:
            raise InvalidInput(f"{where}: a row needs 'text' or 'features'")
    return _dataset(texts, rows, labels, source)


def _dataset(texts: list[str], rows: list[list], labels: list[str], source: str) -> Dataset:
    if texts and rows:
        raise InvalidInput(f"{source}: rows mix 'text' and 'features'; use one kind")
    if len(set(labels)) < 2:
        raise InvalidInput(f"{source}: the data set needs at least two labels")
    return Dataset(texts if texts else None, rows if rows else None, labels)


def _number_or_text(value: str | None):
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def featurise(
    train: Dataset, test: Dataset, vectorizer: str = "tfidf", progress: FeatureProgress | None = None
):
    """Features for both splits, fitted without labels on all their rows together, as the
    service fits them on the whole pool it is sent. ``progress(fraction)`` hears how far
    an embedding part has got (MiniLM on long texts: minutes)."""
    if train.texts is not None and test.texts is not None:
        x = pool_features(train.texts + test.texts, None, vectorizer, progress)
    else:
        # the vectors a client would upload, scaled as the service scales them
        _, x = VectorScale.standardise(_numeric_rows((train.rows or []) + (test.rows or [])))
    return x[: len(train)], x[len(train) :]


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = max(1, round(fraction * len(data)))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


@dataclass
class Point:
    strategy: str
    repeat: int
    labels: int
    accuracy: float
    macro_f1: float
    gain: dict | None = None
    """The served loop's gain-over-random estimate at this point, where one was made."""
    trained_on: int | None = None
    """Labels the model trained on (the served loop keeps the evaluation sample's out)."""


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


Progress = Callable[[float, float, str], None]
"""progress(fraction_done, eta_seconds, stage): stage ``features`` while the features are
computed (when a part reports, as MiniLM does), then ``simulating``, after every round."""


def terminal_progress(stream=sys.stderr) -> Progress:
    """A progress bar per stage, redrawn in place; a new line once a stage is done."""

    finished: set[str] = set()
    current = [""]

    def draw(fraction: float, eta: float, stage: str) -> None:
        if stage in finished:
            return
        if current[0] and current[0] != stage and current[0] not in finished:
            stream.write("\n")  # the stage before ended without reporting its end
        current[0] = stage
        bar = "#" * int(fraction * 30)
        stream.write(f"\r{stage:<10} [{bar:<30}] {fraction:6.1%}  eta {eta:5.0f} s ")
        if fraction >= 1.0:
            stream.write("\n")
            finished.add(stage)
        stream.flush()

    return draw


def timed(progress: Progress, stage: str) -> FeatureProgress:
    """``progress`` for one stage, from a fraction: the time left is extrapolated from the
    time since this call."""
    started = time.monotonic()

    def report(fraction: float) -> None:
        elapsed = time.monotonic() - started
        progress(fraction, elapsed / fraction - elapsed if fraction > 0 else math.nan, stage)

    return report


class RoundClock:
    """How far a replay is and the time left, from what its rounds really cost.

    A round at n labels trains on n rows, so later rounds take longer than early ones: a
    count of rounds or labels done says the run is further on than it is, and its time left
    keeps rising. Here each round's seconds are fitted as a + b x n over the rounds so far
    (least squares, b >= 0), and the time left is that line summed over the rounds still to
    come: this run's up to the budget, and every later run's whole schedule."""

    def __init__(self, progress: Progress, runs: int, seed_size: int, batch_size: int, budget: int) -> None:
        self.progress, self.runs = progress, runs
        self.schedule = np.unique(
            np.r_[np.arange(min(seed_size, budget), budget, max(batch_size, 1)), budget]
        )
        self.started = self.last = time.monotonic()
        self.seen: list[tuple[int, float]] = []

    def round_done(self, run: int, labels: int) -> None:
        now = time.monotonic()
        self.seen.append((labels, now - self.last))
        self.last = now
        left = np.r_[
            self.schedule[self.schedule > labels], np.tile(self.schedule, max(self.runs - run - 1, 0))
        ]
        eta = float(self.seconds(left).sum())
        elapsed = now - self.started
        fraction = elapsed / (elapsed + eta) if elapsed + eta > 0 else 1.0
        self.progress(min(fraction, 1.0), eta, "simulating")

    def seconds(self, labels: np.ndarray) -> np.ndarray:
        """The seconds rounds at ``labels`` labels are expected to take."""
        n = np.array([k for k, _ in self.seen], dtype=np.float64)
        t = np.array([s for _, s in self.seen], dtype=np.float64)
        slope = 0.0
        if len(np.unique(n)) >= 2:
            slope = max(float(np.polyfit(n, t, 1)[0]), 0.0)
        intercept = float(np.mean(t - slope * n))
        return np.maximum(intercept + slope * labels, 0.0)


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
        both = _numeric_rows([train.rows[k] for k in keep] + (test.rows or []))
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
        Point(strategy, repeat, p.labels, p.accuracy, p.macro_f1, p.gain, p.labels - len(p.eval_ids))
        for p in served
    ]


def _numeric_rows(rows: list[list]) -> np.ndarray:
    """Rows as the vectors a client would upload: numbers as they are, text values one-hot,
    missing values 0."""
    records = [{str(j): v for j, v in enumerate(row) if v is not None} for row in rows]
    return DictVectorizer(sparse=False).fit_transform(records).astype(np.float32)


def normalised_auc(labels, accuracy) -> float:
    """Area under an accuracy curve over its span of labels: its mean height, between 0 and
    1 (the one value, for a curve of one point)."""
    labels = np.asarray(labels, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    span = labels[-1] - labels[0]
    return float(np.trapezoid(accuracy, labels) / span) if span > 0 else float(accuracy[0])


def summarise(points: list[Point], full_accuracy: float, settings: Settings) -> dict:
    out: dict = {"full_pool_accuracy": full_accuracy, "settings": asdict(settings), "strategies": {}}
    for strategy in settings.strategies:
        mine = [p for p in points if p.strategy == strategy]
        grid = sorted({p.labels for p in mine})
        if not grid:  # no model within the budget (one class only, say)
            out["strategies"][strategy] = {"auc": None, "final_accuracy": None, "final_macro_f1": None}
            out["strategies"][strategy] |= {f"labels_to_{round(m * 100)}": None for m in MARKS}
            continue
        mean = np.array([np.mean([p.accuracy for p in mine if p.labels == g]) for g in grid])
        f1 = np.array([np.mean([p.macro_f1 for p in mine if p.labels == g]) for g in grid])
        entry: dict[str, float | int | None] = {
            "auc": normalised_auc(grid, mean),
            "final_accuracy": float(mean[-1]),
            "final_macro_f1": float(f1[-1]),
        }
        for mark in MARKS:
            reached = [g for g, a in zip(grid, mean, strict=True) if a >= mark * full_accuracy]
            entry[f"labels_to_{round(mark * 100)}"] = int(reached[0]) if reached else None
        out["strategies"][strategy] = entry
    return out


def true_random_labels(points: list[Point], accuracy: float) -> float | None:
    """Training labels at which the ``random`` strategy's mean test curve first reaches
    ``accuracy`` (linear between its points); None where it never does within the budget.
    The gain counts the labels a model trains on, so the truth does too: the served loop's
    random strategy keeps its evaluation labels out of training, as the service does."""
    mine = [p for p in points if p.strategy == "random"]
    steps = sorted({p.labels for p in mine})
    mean = [float(np.mean([p.accuracy for p in mine if p.labels == g])) for g in steps]
    grid = [
        float(np.mean([p.labels if p.trained_on is None else p.trained_on for p in mine if p.labels == g]))
        for g in steps
    ]
    for k, (g, a) in enumerate(zip(grid, mean, strict=True)):
        if a >= accuracy:
            if k == 0:
                return float(g)
            g0, a0 = grid[k - 1], mean[k - 1]
            return float(g0 + (g - g0) * (accuracy - a0) / (a - a0))
    return None


def gain_validation(points: list[Point]) -> tuple[dict, list[dict]]:
    """How often the gain's 95% interval covers the truth: the labels the ``random``
    strategy's measured mean curve needs to reach each estimated model's test accuracy.
    Where random never reaches it within the budget, the truth is only known to lie beyond
    the budget, and the interval covers it when its top does too."""
    random_points = [p for p in points if p.strategy == "random"]
    budget = max((p.trained_on or p.labels for p in random_points), default=0)
    rows = []
    for p in points:
        if not p.gain or p.gain.get("status") != "estimated":
            continue
        truth = true_random_labels(points, p.accuracy)
        lo, hi = p.gain["interval"]
        if truth is None:
            covered = hi is None or hi >= budget
        else:
            covered = (lo is None or lo <= truth) and (hi is None or truth <= hi)
        rows.append(
            {
                "strategy": p.strategy,
                "repeat": p.repeat,
                "labels": p.labels,
                "trained_on": p.gain["labels"],
                "test_accuracy": p.accuracy,
                "estimate": p.gain["equivalent_random_labels"],
                "low": lo,
                "high": hi,
                "truth": truth,
                "covered": bool(covered),
                "verdict": p.gain["verdict"],
            }
        )
    out: dict = {}
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        bounded = [r["high"] / max(r["low"], 1) for r in mine if r["high"] is not None and r["low"]]
        out[strategy] = {
            "estimates": len(mine),
            "covered": sum(r["covered"] for r in mine),
            "coverage": sum(r["covered"] for r in mine) / len(mine),
            "truth_beyond_budget": sum(r["truth"] is None for r in mine),
            "bounded": len(bounded),
            "median_high_over_low": float(np.median(bounded)) if bounded else None,
            "verdicts": {
                v: sum(r["verdict"] == v for r in mine) for v in ("saving", "undecided", "not_helping")
            },
            "wrong_verdicts": sum(_wrong(r) for r in mine),
        }
    return out, rows


def _wrong(row: dict) -> bool:
    """A verdict the truth contradicts: "saving" where random labelling reached the model's
    accuracy with no more labels than it trained on, "not helping" where it needed more."""
    beyond = row["truth"] is None or row["truth"] > row["trained_on"]
    return (row["verdict"] == "saving" and not beyond) or (row["verdict"] == "not_helping" and beyond)


def plot(points: list[Point], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for strategy in summary["strategies"]:
        mine = [p for p in points if p.strategy == strategy]
        grid = sorted({p.labels for p in mine})
        acc = [[p.accuracy for p in mine if p.labels == g] for g in grid]
        mean = np.array([np.mean(a) for a in acc])
        lo = np.array([np.min(a) for a in acc])
        hi = np.array([np.max(a) for a in acc])
        auc = summary["strategies"][strategy]["auc"]
        if auc is None:
            continue
        ax.plot(grid, mean, label=f"{strategy} (AUC {auc:.3f})")
        ax.fill_between(grid, lo, hi, alpha=0.2)
    full = summary["full_pool_accuracy"]
    ax.axhline(full, color="grey", linestyle="--", linewidth=1, label=f"whole pool labelled ({full:.3f})")
    ax.set_xlabel("labels")
    ax.set_ylabel("test accuracy")
    ax.set_title("Learning curves (band: min to max over repeats)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "curves.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["strategy", "repeat", "labels", "accuracy", "macro_f1"])
        for p in points:
            writer.writerow([p.strategy, p.repeat, p.labels, f"{p.accuracy:.6f}", f"{p.macro_f1:.6f}"])
    summary = summarise(points, full_acc, settings)
    summary["curves"] = [asdict(p) for p in points]
    if any(p.gain for p in points):
        summary["gain_validation"], gains = gain_validation(points)
        with open(out / "gain.csv", "w", newline="", encoding="utf-8") as f:
            table = csv.DictWriter(f, fieldnames=list(gains[0]) if gains else ["strategy"])
            table.writeheader()
            table.writerows(gains)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot(points, summary, out / "curves.png")
    return summary
