"""Feature rows on disk (workers/features/files.py): written per save, read back by
memory-mapping, moved out of Redis, and kept out of Redis by ``alrank serve``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp
from test_features import _fake_embedding, corpus, dense, memory_cache

from workers import defaults, features
from workers.features import CachedPart, FeatureCache
from workers.features.files import FeatureFiles, feature_root, forget, project_dir


@pytest.mark.parametrize("vectorizer", ["tfidf", "wordllama", "tfidf_char+wordllama"])
def test_a_pool_written_in_several_uploads_reads_back_exactly(tmp_path, vectorizer):
    """Three uploads, each followed by a retrain: a new process (a new cache on the same
    directory) reads the very rows the last save wrote, and they equal a cache kept in
    memory that saw the same uploads."""
    texts = corpus(900, 4)
    ids = [f"i{k}" for k in range(900)]
    on_disk = FeatureFiles(tmp_path / "p")
    in_memory, _ = memory_cache()
    for n in (300, 600, 900):
        x, _ = on_disk.pool_features(ids[:n], texts[:n], None, vectorizer)
        expected, _ = in_memory.pool_features(ids[:n], texts[:n], None, vectorizer)
        np.testing.assert_array_equal(dense(x), dense(expected))
        if vectorizer == "wordllama":  # the rows just embedded come back mapped from their file
            assert isinstance(x, np.memmap)
    again, report = FeatureFiles(tmp_path / "p").pool_features(ids, texts, None, vectorizer)
    np.testing.assert_array_equal(dense(again), dense(x))
    assert all(n == 0 for n in report.computed.values())
    # one directory a part: each save replaced the one before
    parts = sorted(p.name.split(".")[0] for p in (tmp_path / "p").iterdir() if p.is_dir())
    assert parts == sorted(
        {"tfidf": ["words"], "wordllama": ["wordllama"]}.get(vectorizer, ["words", "chars", "wordllama"])
    )


def test_rows_are_mapped_not_copied_and_a_job_cannot_change_the_file(tmp_path):
    cache = FeatureFiles(tmp_path / "p")
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    cache.keep("wordllama", CachedPart(["a", "b", "c", "d"], np.arange(4, dtype=np.uint32), rows))
    read = cache.read("wordllama")
    assert read is not None and isinstance(read.rows, np.memmap)
    read.rows[0, 0] = 99.0  # copy-on-write: this process only
    np.testing.assert_array_equal(FeatureFiles(tmp_path / "p").read("wordllama").rows, rows)


def test_sparse_rows_come_back_without_a_cast(tmp_path):
    matrix = sp.random(50, 40, density=0.1, format="csr", dtype=np.float32, random_state=1)
    cache = FeatureFiles(tmp_path / "p")
    cache.keep("words", CachedPart([f"i{k}" for k in range(50)], np.zeros(50, dtype=np.uint32), matrix))
    read = cache.read("words")
    assert read is not None
    # views of the mapped files, not copies
    assert not read.rows.data.flags.owndata and not read.rows.indices.flags.owndata
    np.testing.assert_array_equal(read.rows.toarray(), matrix.toarray())


def test_rows_of_the_older_layout_move_out_of_redis(tmp_path):
    """A data dir whose rows sit in Redis (the layout before the feature directory): the
    first job reads them there, writes them to disk and drops them from Redis."""
    texts = corpus(200, 5)
    ids = [f"i{k}" for k in range(200)]
    old, blobs = memory_cache()
    x, _ = old.pool_features(ids, texts, None, "tfidf")
    assert set(blobs) == {"words"}
    moved = FeatureFiles(tmp_path / "p", (blobs.get, blobs.pop))
    again, report = moved.pool_features(ids, texts, None, "tfidf")
    np.testing.assert_array_equal(dense(again), dense(x))
    assert report.computed == {"words": 0} and blobs == {}
    assert (tmp_path / "p" / "words.current").exists()


def test_unreadable_files_are_computed_afresh(tmp_path):
    texts = corpus(100, 6)
    ids = [f"i{k}" for k in range(100)]
    cache = FeatureFiles(tmp_path / "p")
    x, _ = cache.pool_features(ids, texts, None, "tfidf")
    version = (tmp_path / "p" / "words.current").read_text()
    (tmp_path / "p" / f"words.{version}" / "data.npy").write_bytes(b"not an array")
    again, report = FeatureFiles(tmp_path / "p").pool_features(ids, texts, None, "tfidf")
    np.testing.assert_array_equal(dense(again), dense(x))
    assert report.computed == {"words": 100}


def test_a_project_made_again_under_its_name_gets_a_new_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(defaults.FEATURE_DIR_ENV, str(tmp_path))
    assert feature_root() == tmp_path
    first = {"name": "news", "created_at": "2026-12-01T10:00:00Z"}
    second = {"name": "news", "created_at": "2026-12-02T10:00:00Z"}
    assert project_dir(tmp_path, first) != project_dir(tmp_path, second)
    FeatureFiles(project_dir(tmp_path, first)).keep(
        "wordllama", CachedPart(["a"], np.zeros(1, dtype=np.uint32), np.ones((1, 2), dtype=np.float32))
    )
    forget(first)
    assert not project_dir(tmp_path, first).exists()


def test_without_a_directory_the_rows_stay_in_redis(monkeypatch):
    monkeypatch.delenv(defaults.FEATURE_DIR_ENV, raising=False)
    assert feature_root() is None
    assert type(memory_cache()[0]) is FeatureCache


def test_alrank_serve_keeps_the_rows_on_its_disk_not_in_redis(tmp_path):
    """A pool served by ``alrank serve``: the rows are under ``D/features``, Redis holds
    none, a restart reads them back without computing a row, and deleting the project
    deletes them."""
    from procs import Annotator, Serve, wait_until
    from redis import Redis

    def ranked(admin: Annotator) -> bool:
        return admin.call("GET", "/v1/projects/rows").json()["counts"]["topic"]["ranking"] is not None

    data = tmp_path / "data"
    served = Serve(data)
    try:
        admin = Annotator(served.base, served.admin_key, project="rows")
        admin.create(n=500, seed=1)
        wait_until(lambda: ranked(admin), 60, "the first ranking")
        stored = list((data / "features").glob("rows-*/words.current"))
        assert len(stored) == 1
        truth = admin.truth
        redis = Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
        assert list(redis.scan_iter(match="*features*")) == []
    finally:
        served.close()
    served = Serve(data)
    try:
        admin = Annotator(served.base, served.admin_key, project="rows")
        admin.truth = truth
        admin.label_round(size=5)  # new labels: a job that cannot be up to date
        job = admin.call("POST", "/v1/projects/rows/train", params={"schema": "topic"}).json()["job"]
        result = wait_until(
            lambda: (j := admin.call("GET", f"/v1/jobs/{job}").json()).get("result") and j["result"],
            60,
            "the job",
        )
        assert result["features"]["computed"] == {"words": 0}, result
        assert result["features"]["texts_read"] is False  # no upload since: no text read
        assert admin.call("DELETE", "/v1/projects/rows").status_code == 204
        assert list((data / "features").iterdir()) == []
    finally:
        served.close()


def test_a_directory_that_cannot_be_written_costs_the_cache_not_the_job(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the directory should be")
    cache = FeatureFiles(blocked / "p")
    texts = corpus(50, 7)
    x, _ = cache.pool_features([f"i{k}" for k in range(50)], texts, None, "tfidf")
    assert x.shape[0] == 50 and cache.read("words") is None


def test_an_unchanged_pool_is_known_by_its_generation(tmp_path):
    """Rows stamped with the pool's generation come back with the pool's ids, so a refresh
    of a pool no upload has touched reads no text; anything else finds nothing."""
    texts = corpus(120, 8)
    ids = [f"i{k}" for k in range(120)]
    cache = FeatureFiles(tmp_path / "p")
    x, _ = cache.pool_features(ids, texts, None, "tfidf_char", generation=7)
    known = FeatureFiles(tmp_path / "p").unchanged(7, "tfidf_char")
    assert known is not None and known.ids == ids
    again, report = cache.assemble(known, None)
    np.testing.assert_array_equal(dense(again), dense(x))
    assert report.computed == {"words": 0, "chars": 0} and [p for p, _ in report.parts] == ["words", "chars"]
    assert cache.unchanged(8, "tfidf_char") is None  # an upload since
    assert cache.unchanged(7, "tfidf_char", {"min_df": 2}) is None  # other TF-IDF settings
    assert cache.unchanged(7, "tfidf+wordllama") is None  # a part never computed
    cache.pool_features(ids[:60], texts[:60], None, "tfidf_char")  # rows saved with no stamp
    assert cache.unchanged(7, "tfidf_char") is None


def test_rows_redis_refuses_cost_the_cache_not_the_ranking(client, run_jobs, redis_conn, monkeypatch):
    """Without a feature directory the rows go to Redis, which refuses a value past 512 MB
    (a dense part of about half a million items) by dropping the connection: the ranking is
    published all the same."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from workers.store import Store

    def refuse(self, project, part, blob):
        raise RedisConnectionError("Error 104 while writing to socket. Connection reset by peer.")

    monkeypatch.delenv(defaults.FEATURE_DIR_ENV, raising=False)
    monkeypatch.setattr(Store, "save_feature_rows", refuse)
    body = {
        "name": "big",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"vectorizer_name": "tfidf"},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    items = [{"id": f"i{k}", "text": text} for k, text in enumerate(corpus(200, 9))]
    assert client.post("/v1/projects/big/items", json={"items": items}).status_code == 200
    run_jobs()
    assert Store(redis_conn).ranking_meta("big", "s") is not None
    assert Store(redis_conn).feature_rows("big", "words") is None


def test_client_vectors_are_known_beside_the_rows(tmp_path):
    """A pool of vectors alone: its (absent) text parts are stamped empty, its vectors are
    kept as a part, and an unchanged pool gives them back without Redis."""
    ids = [f"i{k}" for k in range(80)]
    vectors = np.random.default_rng(3).normal(size=(80, 5)).astype(np.float32)
    cache = FeatureFiles(tmp_path / "p")
    x, _ = cache.pool_features(ids, [""] * 80, vectors, "tfidf", generation=4)
    assert cache.unchanged(4, "tfidf", vectors=True) is None  # the vectors are not kept yet
    cache.keep_vectors(ids, vectors, 4)
    known = FeatureFiles(tmp_path / "p").unchanged(4, "tfidf", vectors=True)
    assert known is not None and known.ids == ids and known.parts == []
    np.testing.assert_array_equal(known.vectors, vectors)
    again, _ = cache.assemble(known, known.vectors)
    np.testing.assert_array_equal(dense(again), dense(x))
    assert cache.unchanged(5, "tfidf", vectors=True) is None  # an upload since


def test_a_retrain_of_an_unchanged_pool_reads_no_vector_from_redis(client, run_jobs, tmp_path, monkeypatch):
    """After the first job has kept the vectors beside the rows, a retrain with new labels
    and no upload takes them from the feature directory (that they give the rows Redis's
    give: tests/test_shards.py, where a shard builds its rows from them)."""
    from workers.store import Store

    monkeypatch.setenv(defaults.FEATURE_DIR_ENV, str(tmp_path / "features"))
    body = {
        "name": "vec",
        "schemas": [{"name": "s", "labels": ["a", "b"]}],
        "active_learning": {"min_instances_for_training": 4, "update_frequency": 4},
    }
    assert client.post("/v1/projects", json=body).status_code == 201
    rng = np.random.default_rng(5)
    items = [
        {"id": f"i{k}", "text": text, "vector": rng.normal(size=3).tolist()}
        for k, text in enumerate(corpus(60, 2))
    ]
    assert client.post("/v1/projects/vec/items", json={"items": items}).status_code == 200
    labels = [{"item": f"i{k}", "schema": "s", "value": "ab"[k % 2], "annotator": "x"} for k in range(8)]
    assert client.post("/v1/projects/vec/labels", json={"labels": labels}).status_code == 200
    run_jobs()

    def refuse(*args, **kwargs):
        raise AssertionError("the vectors were read from Redis")

    monkeypatch.setattr(Store, "load_vectors", refuse)
    more = [{"item": f"i{k}", "schema": "s", "value": "ab"[k % 2], "annotator": "x"} for k in range(8, 12)]
    job = client.post("/v1/projects/vec/labels", json={"labels": more}).json["training_jobs"]["s"]
    run_jobs()
    result = client.get(f"/v1/jobs/{job}").json["result"]
    assert result["status"] == "published" and result["features"]["texts_read"] is False


def test_embedding_rows_are_filled_in_a_file_and_moved_into_place(tmp_path, monkeypatch):
    """An embedding's rows are written to a file of the directory as they are computed
    (checkpoints on the way save what is done), and the save moves that file into place:
    no file of rows is left behind, nor one a dead job left, and the rows read back are
    those a cache in memory computes."""
    monkeypatch.setattr(defaults, "EMBED_STEP_ROWS", 100)
    monkeypatch.setattr(defaults, "FEATURE_CHECKPOINT_SECONDS", 0.0)
    texts = corpus(350, 5)
    ids = [f"i{k}" for k in range(350)]
    folder = tmp_path / "p"
    folder.mkdir()
    dead = folder / ".rows.wordllama.0123456789abcdef.npy"
    np.save(dead, np.zeros((2, 2), dtype=np.float32))
    os.utime(dead, (0, 0))
    cache = FeatureFiles(folder)
    x, _ = cache.pool_features(ids, texts, None, "wordllama")
    expected, _ = memory_cache()[0].pool_features(ids, texts, None, "wordllama")
    np.testing.assert_array_equal(np.asarray(x), expected)
    assert isinstance(x, np.memmap) and cache.checkpoints == 3
    assert list(folder.glob(".rows.*")) == []
    again, report = FeatureFiles(folder).pool_features(ids, texts, None, "wordllama")
    np.testing.assert_array_equal(np.asarray(again), expected)
    assert report.computed == {"wordllama": 0}


def test_an_embedding_cut_short_leaves_its_checkpoint_in_the_directory(tmp_path, monkeypatch):
    """A checkpoint copies the rows done into a file of the directory (a step at a time,
    never the whole of them in memory); the next job reads them back and embeds only the
    rest, and the rows match a run that was never cut short."""
    from rq.timeouts import JobTimeoutException

    monkeypatch.setattr(defaults, "EMBED_STEP_ROWS", 10)
    monkeypatch.setattr(defaults, "FEATURE_CHECKPOINT_SECONDS", 0.0)
    texts = corpus(45, 8)
    ids = [f"i{k}" for k in range(45)]
    folder = tmp_path / "p"
    embed, calls = _fake_embedding(stop_after=3)
    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    with pytest.raises(JobTimeoutException):
        FeatureFiles(folder).pool_features(ids, texts, None, "wordllama")
    kept = FeatureFiles(folder).read("wordllama")
    assert kept is not None and kept.ids == ids[:30] and isinstance(kept.rows, np.memmap)
    np.testing.assert_array_equal(kept.rows, embed(texts[:30]))
    embed, calls = _fake_embedding(stop_after=None)
    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    x, report = FeatureFiles(folder).pool_features(ids, texts, None, "wordllama")
    assert calls == [10, 5] and report.reused["wordllama"] == 30
    np.testing.assert_array_equal(np.asarray(x), embed(texts))
    assert list(folder.glob(".rows.*")) == []
