"""The Redis data layout: every key alrank writes, as a function of what it names.

All keys live under ``alrank:``; a project's under ``alrank:{P}:``, a schema's under
``alrank:{P}:s:S:``. The braces are a Redis Cluster hash tag: every key of a project hashes
to one slot, so a cluster can run each script and transaction on one node. Every key a Lua
script in ``scripts/`` touches is passed to it in ``KEYS``; a script that touches the
published ranking is told which ranking id its keys were named for and answers ``stale``
if another was published in between, and the caller names them again.
``workers.store.migrate`` renames the keys of the layout before this one
(``alrank:p:P:...``).

Projects

- ``layout()`` the layout version of the data; ``projects()`` SET of project names;
  ``config(P)`` the project as JSON.
- ``api_keys()`` HASH key id -> JSON record (project, name, role, annotators, the
  secret's keyed hash); ``project_keys(P)`` SET of the project's key ids;
  ``rate_window(K, W)`` requests key K made in rate-limit window W.
- ``items(P)`` HASH item id -> JSON ``{"text", "metadata"}``; ``vectors(P)`` HASH item id ->
  float32 bytes; ``generation(P)`` counter, bumped by every change to the pool;
  ``item_index(P)`` ZSET of item ids, all at score 0: their lexical order, which listings
  page through by the last id seen (``ZRANGEBYLEX``), so rows written or deleted meanwhile
  never make a page skip or repeat another.
- ``features(P, part)`` one feature part's cached rows (``.npz`` bytes, see
  ``workers.features``), only where no feature directory is set (``ALRANK_FEATURE_DIR``,
  ``workers.features.files``); a job moves them to the directory once it is set.
- ``label_studio(P)`` HASH of the project's Label Studio connection (``workers.store.
  label_studio``); ``label_studio_annotations(P)`` HASH Label Studio annotation id -> JSON
  ``{"item", "annotator", "schemas"}``, the labels it became.
- ``sync_job(P, kind, state)`` the ``queued`` and ``running`` job of each kind that keeps a
  connected tool (Label Studio, Potato) in step, one at a time per project.
- ``potato(P)`` HASH of the project's Potato connection: ``nonce`` (its webhook secret's
  seed), ``settings``, ``feed`` (the last feed), ``files`` (files written so far);
  ``potato_given(P)`` SET of items written to Potato's data directory.

Schemas

- ``labels(P, S)`` HASH item id -> JSON ``{annotator: value}``; ``label_times(P, S)`` HASH
  item id -> JSON ``{annotator: Unix ms}``, when each label was last set (labels from before
  layout 3 have none); ``labelled_index(P, S)`` ZSET of the labelled item ids, for listings
  as ``item_index``; ``annotator_counts(P, S)``
  HASH item id -> number of annotators; ``label_revision(P, S)`` counter, bumped by every
  label change; ``since_trigger(P, S)`` labels since the last retrain trigger.
- ``leases(P, S)`` ZSET item id -> expiry (ms); ``owners(P, S)`` HASH item id ->
  annotator; ``annotator_leases(P, S, A)`` ZSET of annotator A's items.
- ``evaluation(P, S)`` SET of items handed out as the random evaluation sample.
- ``eval_sample(P, S)`` LIST, the evaluation sample: pool items drawn uniformly at random,
  in the order they are handed out; never ranked. ``eval_sample_head(P, S)`` how far from
  its start every item is labelled (or gone).
- ``activity(P, S)`` HASH ``annotator NUL labels|first|last`` -> labels sent, first and
  last time (Unix seconds); ``activity_hours(P, S)`` HASH ``annotator NUL hour`` -> labels
  sent in that hour (the last 48 kept), for each annotator's pace.
- ``random_draws(P, S)`` SET of items last handed out (or placed in a tool's order) as a
  uniform draw: the exploration share, or a batch before any ranking. The gain over random
  (``workers.gain``) learns random labelling's curve from them.
- ``queue(P, S, Q)`` LIST, for Q ``overlap`` (labelled items a second annotator is asked
  to label again) and ``review`` (labels the data contradicts, for another annotator to
  check): items in the order they are handed out; ``queue_due(P, S, Q)`` HASH item id ->
  its number of annotators when listed (an item leaves the queue once that changes);
  ``queue_head(P, S, Q)`` how far from its start every item is done.
- ``quality(P, S)`` JSON: agreement, each annotator's reliability and the label issues, as
  the last refresh found them.
- ``ranking(P, S)`` the published ranking's id R; ``ranking_sequence(P, S)`` counter of
  ranking ids; ``ranking_part(P, S, R, part)`` for each part of ranking R: ``order`` LIST
  of item ids, best first; ``explore`` LIST, a random permutation; ``info`` HASH item id ->
  JSON ``[score, rank, label, confidence]`` (``RankingEntry``); ``pos`` HASH item id ->
  position in ``order``; ``returned`` ZSET of items handed out and given back, by position;
  ``meta`` JSON; ``head:order`` and ``head:explore`` how far each list has been handed out.
- ``models(P, S)`` LIST of model-version JSON; ``model_sequence(P, S)`` counter of
  versions; ``model(P, S, V)`` version V's state (``.npz`` bytes; an older version's
  expires once a newer one is saved, ``model_latest(P, S)`` the version of the newest);
  ``featurizer(P, S, V)``
  the fitted feature parts version V was trained on (``.npz``, for predictions on items
  outside the pool; an older version's expires once a newer one is saved), and
  ``featurizer_latest(P, S)`` the version of the newest;
  ``stop_predictions(P, S, V)`` version V's predictions on the stop set, JSON.
- ``asked(P, S)`` counter of items asked for by ``GET /next``, which sets each batch's
  random shares (``workers.batches.share``).
- ``jobstate(P, S)`` HASH ``queued``/``running`` job ids, for coalescing retrain triggers.
- ``shard(P, T, what)`` a sharded scoring pass T (``workers.shards``): ``spec`` JSON,
  ``model`` the model's state, and per shard i ``rows:i`` its pool rows, ``claim:i`` who
  scores it (a lease), ``proba:i`` and ``space:i`` what came back; the retraining job
  deletes them when the pass is done, and they expire after ``JOB_TIMEOUT`` if it dies.

Operations

- ``metrics()`` HASH of the counters the workers and the API keep in Redis for ``GET
  /metrics`` (``workers.telemetry``).

Simulations

- ``simulation(ID) + "data"`` the request's rows, JSON; ``simulation(ID) + "files"`` HASH
  file name -> result bytes.
"""

from __future__ import annotations

from workers import defaults

RANKING_PARTS = ("order", "explore", "info", "pos", "returned", "meta", "head:order", "head:explore")
"""Every key of one published ranking, by part name."""


def projects() -> str:
    return f"{defaults.KEY_PREFIX}:projects"


def project(p: str) -> str:
    """The prefix of every key of project ``p``; ``{p}`` is its cluster hash tag."""
    return f"{defaults.KEY_PREFIX}:{{{p}}}:"


def api_keys() -> str:
    return f"{defaults.KEY_PREFIX}:apikeys"


def rate_window(key_id: str, window: int) -> str:
    """Requests a key made in one window of its rate limit (expires with the window)."""
    return f"{defaults.KEY_PREFIX}:rate:{key_id}:{window}"


def project_keys(p: str) -> str:
    return project(p) + "keys"


def config(p: str) -> str:
    return project(p) + "config"


def items(p: str) -> str:
    return project(p) + "items"


def vectors(p: str) -> str:
    return project(p) + "vectors"


def item_index(p: str) -> str:
    return project(p) + "itemindex"


def generation(p: str) -> str:
    return project(p) + "gen"


def features(p: str, part: str) -> str:
    return project(p) + "features:" + part


def label_studio(p: str) -> str:
    return project(p) + "ls"


def label_studio_annotations(p: str) -> str:
    return project(p) + "ls:annotations"


def potato(p: str) -> str:
    return project(p) + "potato"


def potato_given(p: str) -> str:
    return project(p) + "potato:given"


def sync_job(p: str, kind: str, state: str) -> str:
    """The id of the ``queued`` or ``running`` sync job of ``kind`` (expires with it)."""
    return f"{project(p)}sync:{state}:{kind}"


def schema(p: str, s: str) -> str:
    """The prefix of every key of schema ``s`` of project ``p``."""
    return f"{project(p)}s:{s}:"


def labels(p: str, s: str) -> str:
    return schema(p, s) + "labels"


def label_times(p: str, s: str) -> str:
    return schema(p, s) + "labeltimes"


def labelled_index(p: str, s: str) -> str:
    return schema(p, s) + "labelledindex"


def annotator_counts(p: str, s: str) -> str:
    return schema(p, s) + "nlab"


def label_revision(p: str, s: str) -> str:
    return schema(p, s) + "rev"


def since_trigger(p: str, s: str) -> str:
    return schema(p, s) + "since"


def leases(p: str, s: str) -> str:
    return schema(p, s) + "leases"


def owners(p: str, s: str) -> str:
    return schema(p, s) + "owner"


def annotator_leases(p: str, s: str, annotator: str) -> str:
    return schema(p, s) + "lease:" + annotator


def evaluation(p: str, s: str) -> str:
    return schema(p, s) + "eval"


def eval_sample(p: str, s: str) -> str:
    return schema(p, s) + "evalsample"


def eval_sample_head(p: str, s: str) -> str:
    return schema(p, s) + "evalsample:head"


QUEUES = ("overlap", "review")
"""The queues of labelled items that go to another annotator."""


def queue(p: str, s: str, q: str) -> str:
    return schema(p, s) + f"queue:{q}"


def queue_due(p: str, s: str, q: str) -> str:
    return schema(p, s) + f"queue:{q}:due"


def queue_head(p: str, s: str, q: str) -> str:
    return schema(p, s) + f"queue:{q}:head"


def quality(p: str, s: str) -> str:
    return schema(p, s) + "quality"


def activity(p: str, s: str) -> str:
    return schema(p, s) + "activity"


def activity_hours(p: str, s: str) -> str:
    return schema(p, s) + "activity:hours"


def random_draws(p: str, s: str) -> str:
    return schema(p, s) + "random"


def ranking(p: str, s: str) -> str:
    return schema(p, s) + "ranking"


def ranking_sequence(p: str, s: str) -> str:
    return schema(p, s) + "rseq"


def ranking_part(p: str, s: str, rid: str, part: str) -> str:
    return f"{schema(p, s)}r:{rid}:{part}"


def models(p: str, s: str) -> str:
    return schema(p, s) + "models"


def gains(p: str, s: str) -> str:
    """Hash: model version -> its gain over random (JSON), estimated after its ranking."""
    return schema(p, s) + "gains"


def model_sequence(p: str, s: str) -> str:
    return schema(p, s) + "modelseq"


def model(p: str, s: str, version: int) -> str:
    return f"{schema(p, s)}model:{version}"


def asked(p: str, s: str) -> str:
    return schema(p, s) + "asked"


def featurizer(p: str, s: str, version: int) -> str:
    return f"{schema(p, s)}featurizer:{version}"


def model_latest(p: str, s: str) -> str:
    return schema(p, s) + "model:latest"


def model_choice(p: str, s: str) -> str:
    return schema(p, s) + "model:choice"


def featurizer_latest(p: str, s: str) -> str:
    return schema(p, s) + "featurizer:latest"


def stop_predictions(p: str, s: str, version: int) -> str:
    return f"{schema(p, s)}stoppreds:{version}"


def jobstate(p: str, s: str) -> str:
    return schema(p, s) + "jobstate"


def shard(p: str, token: str, what: str) -> str:
    """A key of sharded scoring pass ``token`` of project ``p`` (``workers.shards``)."""
    return project(p) + f"shard:{token}:{what}"


def refresh_lock(p: str, s: str) -> str:
    """The lock a schema's refresh holds while it runs (a token, with a short TTL)."""
    return schema(p, s) + "refreshlock"


def simulation(sim_id: str) -> str:
    """The prefix of a simulation's keys; ``{sim_id}`` is their cluster hash tag."""
    return f"{defaults.KEY_PREFIX}:sim:{{{sim_id}}}:"


def metrics() -> str:
    return f"{defaults.KEY_PREFIX}:metrics"


def layout() -> str:
    """The layout version the data is in (``workers.store.migrate``)."""
    return f"{defaults.KEY_PREFIX}:layout"
