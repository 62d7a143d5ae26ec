"""A project's settings: defaults filled in and cross-field rules checked.

The HTTP edge checks each field's type and range; the rules here span fields (a schema
named in ``schema_names`` must exist, hybrid weights must name strategies).
"""

from __future__ import annotations

from workers import defaults
from workers.exceptions import InvalidInput
from workers.features import PARTS, TFIDF_PARAMS, VECTORIZERS, check_vectorizer
from workers.model_choice import CHOOSABLE
from workers.model_kinds import CLASSIFIER_PARAMS, CLASSIFIERS
from workers.strategies import STRATEGIES
from workers.strategies.hybrid import SHARED, WEIGHTED
from workers.strategies.uncertainty import MEASURES

AL_DEFAULTS: dict = {
    "enabled": True,
    "schema_names": None,
    "query_strategy": defaults.QUERY_STRATEGY,
    "uncertainty_measure": defaults.UNCERTAINTY_MEASURE,
    "min_instances_for_training": defaults.MIN_INSTANCES_FOR_TRAINING,
    "update_frequency": defaults.UPDATE_FREQUENCY,
    "random_sample_percent": defaults.RANDOM_SAMPLE_PERCENT,
    "min_annotations_per_instance": defaults.MIN_ANNOTATIONS_PER_INSTANCE,
    "resolution_strategy": "majority_vote",
    "hybrid_weights": None,
    "hybrid_shares": None,
    "bald_params": None,
    "vectorizer_name": defaults.VECTORIZER_NAME,
    "classifier_name": defaults.CLASSIFIER_NAME,
    "eval_fraction": defaults.EVAL_FRACTION,
    "overlap_share": defaults.OVERLAP_SHARE,
    "review_share": defaults.REVIEW_SHARE,
    "review_min_score": defaults.REVIEW_MIN_SCORE,
    "eval_size": defaults.EVAL_SIZE,
    "train_on_eval": defaults.TRAIN_ON_EVAL,
    "classifier_params": None,
    "vectorizer_params": None,
    "calibrate_probabilities": True,
    "cold_start_strategy": defaults.COLD_START_STRATEGY,
    "max_instances_to_reorder": None,
    "balance_classes": True,
}
"""Every active-learning setting and its default; Potato's key names where Potato has one."""


def active_learning(project: dict) -> dict:
    """A stored project's active-learning settings, with defaults for settings added since
    it was saved (every reader goes through here, so a default is stated once)."""
    return {**AL_DEFAULTS, **project["active_learning"]}


POTATO_NAMES = {
    "sklearn.linear_model.LogisticRegression": "logistic_regression",
    "sklearn.svm.LinearSVC": "linear_svm",
    "sklearn.naive_bayes.ComplementNB": "complement_nb",
    "sklearn.naive_bayes.MultinomialNB": "multinomial_nb",
    "sklearn.svm.SVC": "svc",
    "sklearn.ensemble.RandomForestClassifier": "random_forest",
    "sklearn.ensemble.ExtraTreesClassifier": "extra_trees",
    "sklearn.ensemble.HistGradientBoostingClassifier": "hist_gradient_boosting",
    "sklearn.feature_extraction.text.TfidfVectorizer": "tfidf",
}
"""Potato's class-path names for the models and features alrank offers."""


def resolve_active_learning(schemas: list[dict], given: dict, current: dict | None = None) -> dict:
    """Merge ``given`` over ``current`` (or the defaults) and check the rules between fields."""
    al = {**AL_DEFAULTS, **(current or {}), **given}
    for key, allowed in (("vectorizer_name", VECTORIZERS), ("classifier_name", CLASSIFIERS)):
        al[key] = POTATO_NAMES.get(al[key], al[key])
        if al[key] not in allowed:
            raise InvalidInput(
                f"active_learning.{key} {al[key]!r} is not available; use one of {list(allowed)}"
            )
    check_vectorizer(al["vectorizer_name"])
    names = [s["name"] for s in schemas]
    if al["schema_names"] is not None:
        unknown = [n for n in al["schema_names"] if n not in names]
        if unknown:
            raise InvalidInput(
                f"active_learning.schema_names names schemas the project does not have: "
                f"{unknown}; its schemas are {names}"
            )
    if al["query_strategy"] not in STRATEGIES:
        raise InvalidInput(
            f"query_strategy {al['query_strategy']!r} is not available; use one of {list(STRATEGIES)}"
        )
    if al["uncertainty_measure"] not in MEASURES:
        raise InvalidInput(f"uncertainty_measure must be one of {list(MEASURES)}")
    if al["min_instances_for_training"] < 2:
        raise InvalidInput("min_instances_for_training must be at least 2")
    for key, allowed in (("hybrid_weights", WEIGHTED), ("hybrid_shares", SHARED)):
        blend = al[key] or {}
        unknown = sorted(set(blend) - set(allowed))
        if unknown:
            raise InvalidInput(f"active_learning.{key} names {unknown}; it takes {list(allowed)}")
        if blend and not any(v > 0 for v in blend.values()):
            raise InvalidInput(f"active_learning.{key} needs at least one value above 0")
    if al["hybrid_weights"] and al["hybrid_shares"]:
        raise InvalidInput(
            "give hybrid_weights (a blend of scores) or hybrid_shares (a split of the batch), not both"
        )
    used = {al["query_strategy"]}
    if al["query_strategy"] == "hybrid":
        used |= set(al["hybrid_shares"] or {}) | set(al["hybrid_weights"] or {})
    needs_single = used & {"badge", "bald"}
    if "bald" in used and al["classifier_name"] == "hist_gradient_boosting":
        raise InvalidInput(
            "bald scores a committee's disagreement; hist_gradient_boosting grows one sequence of "
            "trees, not a committee: use random_forest or extra_trees (their trees are the "
            "committee), a linear model (bootstrap replicas), or another strategy"
        )
    multi = [
        s["name"]
        for s in schemas
        if s.get("multi_label") and (al["schema_names"] is None or s["name"] in al["schema_names"])
    ]
    if multi and al["classifier_name"] not in ("logistic_regression", "auto"):
        raise InvalidInput(
            f"multi-label schemas {multi} train logistic regression only; "
            "leave classifier_name at auto or logistic_regression"
        )
    if needs_single and multi:
        raise InvalidInput(
            f"{sorted(needs_single)} rank single-label schemas only; {multi} "
            "are multi-label: leave them out of schema_names or use uncertainty"
        )
    shares = {k: al[k] for k in ("random_sample_percent", "eval_fraction", "overlap_share", "review_share")}
    if sum(shares.values()) > 1.0 + 1e-9:
        raise InvalidInput(
            f"the shares of a batch add up to more than all of it: {shares}; lower one of them"
        )
    check_params(al)
    al["bald_params"] = {
        "n_estimators": defaults.BALD_N_ESTIMATORS,
        "bootstrap_fraction": defaults.BALD_BOOTSTRAP_FRACTION,
        **(al["bald_params"] or {}),
    }
    return al


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive(v) -> bool:
    return _number(v) and v > 0


def _count(v, least: int, most: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and least <= v <= most


CLASSIFIER_VALUES = {
    "C": lambda v: isinstance(v, int | float) and v > 0,
    "max_iter": lambda v: isinstance(v, int) and v > 0,
    "tol": lambda v: isinstance(v, int | float) and v > 0,
    "class_weight": lambda v: v in (None, "balanced"),
    "alpha": lambda v: isinstance(v, int | float) and v >= 0,
    "norm": lambda v: isinstance(v, bool),
    "fit_prior": lambda v: isinstance(v, bool),
    "gamma": lambda v: v in ("scale", "auto") or _positive(v),
    "n_estimators": lambda v: _count(v, 1, 1000),
    "max_depth": lambda v: v is None or _count(v, 1, 1000),
    "min_samples_split": lambda v: _count(v, 2, 10**6) or (_number(v) and 0 < v <= 1),
    "min_samples_leaf": lambda v: _count(v, 1, 10**6) or (_number(v) and 0 < v < 1),
    "max_features": lambda v: (
        v in (None, "sqrt", "log2") or _count(v, 1, 10**7) or (_number(v) and 0 < v <= 1)
    ),
    "criterion": lambda v: v in ("gini", "entropy", "log_loss"),
    "learning_rate": _positive,
    "max_leaf_nodes": lambda v: v is None or _count(v, 2, 10**6),
    "l2_regularization": lambda v: _number(v) and v >= 0,
    "candidates": lambda v: (
        isinstance(v, list) and 0 < len(v) == len(set(v)) and all(k in CHOOSABLE for k in v)
    ),
}
TFIDF_VALUES = {
    "max_features": lambda v: isinstance(v, int) and v > 0,
    "min_df": lambda v: (isinstance(v, int) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
    "max_df": lambda v: (isinstance(v, int) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
    "ngram_range": lambda v: (
        isinstance(v, list | tuple)
        and len(v) == 2
        and all(isinstance(n, int) for n in v)
        and 1 <= v[0] <= v[1] <= 5
    ),
    "stop_words": lambda v: v in (None, "english"),
    "lowercase": lambda v: isinstance(v, bool),
    "sublinear_tf": lambda v: isinstance(v, bool),
}
"""What each hyperparameter a project may set accepts."""


def check_params(al: dict) -> None:
    """The classifier's and the word TF-IDF's hyperparameters: only those alrank lets a
    project set, with values their estimators accept."""
    extra = set(al["classifier_params"] or {}) - {"candidates"}
    if al["classifier_name"] == "auto" and extra:
        raise InvalidInput(
            f"active_learning.classifier_params {sorted(extra)}: auto chooses the model and keeps "
            "each kind's own defaults; name the model in classifier_name to set its hyperparameters"
        )
    _check_values(
        "classifier_params",
        al["classifier_params"],
        CLASSIFIER_PARAMS[al["classifier_name"]],
        f"of {al['classifier_name']}",
        CLASSIFIER_VALUES,
    )
    if al["vectorizer_params"] and "words" not in PARTS[al["vectorizer_name"]]:
        raise InvalidInput(
            f"active_learning.vectorizer_params set the word TF-IDF, which "
            f"{al['vectorizer_name']!r} does not use"
        )
    _check_values("vectorizer_params", al["vectorizer_params"], TFIDF_PARAMS, "of the TF-IDF", TFIDF_VALUES)


def _check_values(field: str, given: dict | None, allowed, owner: str, values: dict) -> None:
    for key, value in (given or {}).items():
        if key not in allowed:
            raise InvalidInput(
                f"active_learning.{field}.{key} is not a setting {owner} alrank lets a project change; "
                f"it takes {list(allowed)}"
            )
        if not values[key](value):
            raise InvalidInput(f"active_learning.{field}.{key}: {value!r} is not a valid value")


def active_schemas(project: dict) -> list[str]:
    """Schemas that active learning ranks (the rest are served in random order)."""
    al = project["active_learning"]
    if not al["enabled"]:
        return []
    names = al["schema_names"]
    return [s["name"] for s in project["schemas"] if names is None or s["name"] in names]


def find_schema(project: dict, name: str) -> dict:
    for schema in project["schemas"]:
        if schema["name"] == name:
            return schema
    raise InvalidInput(
        f"project {project['name']!r} has no schema {name!r}; "
        f"its schemas are {[s['name'] for s in project['schemas']]}"
    )


def check_schemas(schemas: list[dict]) -> None:
    seen = set()
    for s in schemas:
        if s["name"] in seen:
            raise InvalidInput(f"schema {s['name']!r} is given twice")
        seen.add(s["name"])
        if len(set(s["labels"])) != len(s["labels"]):
            raise InvalidInput(f"schema {s['name']!r} lists a label twice")
        if len(s["labels"]) < 2 and not s.get("multi_label"):
            raise InvalidInput(f"schema {s['name']!r} needs at least two labels")


def check_value(schema: dict, value, index: int) -> None:
    """A label's value fits its schema (one label, or a list of them for multi-label);
    ``index`` places it in the request for the message."""
    allowed = schema["labels"]
    if schema["multi_label"]:
        if not isinstance(value, list):
            raise InvalidInput(
                f"labels[{index}]: schema {schema['name']!r} is multi-label; send a list of labels"
            )
        bad = [v for v in value if v not in allowed]
        if len(set(value)) != len(value):
            raise InvalidInput(f"labels[{index}]: a label is listed twice in {value}")
    else:
        if not isinstance(value, str):
            raise InvalidInput(f"labels[{index}]: schema {schema['name']!r} takes one label, not a list")
        bad = [value] if value not in allowed else []
    if bad:
        raise InvalidInput(
            f"labels[{index}]: {bad[0]!r} is not a label of schema "
            f"{schema['name']!r}; its labels are {allowed}"
        )
