"""The simulator: replays annotation with the service's own feature, model and strategy code."""

from __future__ import annotations

import gzip
import io
import itertools
import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from service.cli import main
from workers import features
from workers.exceptions import InvalidInput
from workers.simulation.data import load_dataset
from workers.simulation.engine import simulate
from workers.simulation.progress import terminal_progress
from workers.simulation.spec import Settings

WORDS = {
    "sport": "match goal team coach league striker keeper season fans final",
    "tech": "chip software startup compiler battery phone cloud data code robot",
    "politics": "vote senate minister budget law election party reform tax debate",
}


def text_rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    labels = list(WORDS)
    rows = []
    for i in range(n):
        lab = labels[i % 3]
        own = rng.choice(WORDS[lab].split(), 4)
        noise = rng.choice(" ".join(WORDS.values()).split(), 3)
        rows.append({"id": str(i), "text": " ".join([*own, *noise]), "label": lab})
    return rows


def quiet(fraction: float, eta: float, stage: str) -> None:
    """A progress listener that shows nothing."""


def write_jsonl_gz(path, rows) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_simulation_writes_curves_and_summary(tmp_path):
    write_jsonl_gz(tmp_path / "train.jsonl.gz", text_rows(300))
    data = load_dataset(tmp_path / "train.jsonl.gz")
    settings = Settings(
        strategies=["uncertainty", "badge"], seed_size=10, batch_size=10, budget=60, repeats=2
    )
    summary = simulate(data, None, settings, tmp_path / "out", progress=quiet)
    assert set(summary["strategies"]) == {"uncertainty", "badge", "random"}  # random always added
    for s in summary["strategies"].values():
        assert 0.0 <= s["auc"] <= 1.0 and 0.0 <= s["final_accuracy"] <= 1.0
        assert set(s) >= {"labels_to_90", "labels_to_95", "labels_to_98"}
    assert summary["full_pool_accuracy"] > 0.8  # the words separate the classes
    lines = (tmp_path / "out" / "curves.csv").read_text().splitlines()
    assert lines[0] == "strategy,repeat,labels,accuracy,macro_f1"
    # 3 strategies x 2 repeats x models at 20..60 labels (the evaluation share holds the
    # first batch's model back: 9 of its 10 labels train)
    assert len(lines) - 1 == 3 * 2 * 5
    assert (tmp_path / "out" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert stored["settings"]["budget"] == 60


def test_labels_to_marks_follow_the_mean_curve(tmp_path):
    from workers.simulation.report import summarise
    from workers.simulation.spec import Point

    pts = [Point("uncertainty", 0, n, a, a) for n, a in [(10, 0.5), (20, 0.9), (30, 0.97)]]
    s = summarise(pts, 1.0, Settings(strategies=["uncertainty"]))["strategies"]["uncertainty"]
    assert (s["labels_to_90"], s["labels_to_95"], s["labels_to_98"]) == (20, 30, None)
    assert s["auc"] == pytest.approx(((0.5 + 0.9) / 2 * 10 + (0.9 + 0.97) / 2 * 10) / 20)


def test_csv_with_numeric_features(tmp_path):
    x, y = load_breast_cancer(return_X_y=True)
    header = ",".join([f"f{j}" for j in range(x.shape[1])] + ["label"])
    body = "\n".join(",".join([*map(str, row), str(lab)]) for row, lab in zip(x, y, strict=True))
    (tmp_path / "data.csv").write_text(header + "\n" + body + "\n")
    data = load_dataset(tmp_path / "data.csv")
    assert data.rows is not None and len(data) == len(y)
    summary = simulate(
        data,
        None,
        Settings(
            strategies=["diversity"],
            seed_size=10,
            batch_size=10,
            budget=40,
            repeats=1,
            classifier="logistic_regression",  # the CSV reading is under test
        ),
        tmp_path / "out",
        progress=quiet,
    )
    assert summary["full_pool_accuracy"] > 0.85


def test_cli(tmp_path, capsys):
    write_jsonl_gz(tmp_path / "train.jsonl.gz", text_rows(200))
    with pytest.raises(SystemExit) as done:
        main(
            [
                "simulate",
                "--train",
                str(tmp_path / "train.jsonl.gz"),
                "--strategies",
                "uncertainty",
                "--seed-size",
                "10",
                "--batch-size",
                "10",
                "--budget",
                "40",
                "--repeats",
                "1",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "uncertainty" in out and "random" in out and "curves.png" in out


def test_bad_inputs(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InvalidInput):
        load_dataset(tmp_path / "x.txt")
    (tmp_path / "one.csv").write_text("text,label\na,x\nb,x\n")
    with pytest.raises(InvalidInput, match="two labels"):
        load_dataset(tmp_path / "one.csv")
    with pytest.raises(InvalidInput):
        load_dataset(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "vectorizer, classifier",
    [
        ("tfidf_char", "linear_svm"),
        ("tfidf", "complement_nb"),
        ("tfidf", "multinomial_nb"),
        ("wordllama", "svc"),
        ("wordllama", "logistic_regression"),
        ("tfidf+wordllama", "logistic_regression"),
    ],
)
def test_feature_and_model_choices(tmp_path, vectorizer, classifier):
    write_jsonl_gz(tmp_path / "train.jsonl.gz", text_rows(240))
    data = load_dataset(tmp_path / "train.jsonl.gz")
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=12,
        batch_size=12,
        budget=36,
        repeats=1,
        vectorizer=vectorizer,
        classifier=classifier,
    )
    summary = simulate(data, None, settings, tmp_path / "out", progress=quiet)
    assert summary["full_pool_accuracy"] > 0.7


@pytest.mark.parametrize("classifier", ["complement_nb", "multinomial_nb"])
def test_naive_bayes_refuses_negative_features(classifier):
    from workers.models import train_single_label

    x = np.array([[1.0, -1.0], [0.5, 2.0], [-0.2, 1.0], [1.0, 1.0]])
    with pytest.raises(InvalidInput, match="non-negative"):
        train_single_label(x, ["a", "b", "a", "b"], 0, classifier)


@pytest.mark.parametrize("params", [None, {"alpha": 0.3}, {"fit_prior": False}])
def test_multinomial_nb_state_gives_sklearns_probabilities(params):
    """Stored as a linear model (log P(feature | class), log P(class)), multinomial naive
    Bayes answers what scikit-learn's own MultinomialNB answers, hyperparameters included."""
    import scipy.sparse as sp
    from sklearn.naive_bayes import MultinomialNB

    from workers.models import load_model, train_single_label

    rng = np.random.default_rng(4)
    x = sp.random(60, 30, density=0.2, random_state=4, format="csr")
    y = [["neg", "pos", "neutral"][k] for k in rng.integers(0, 3, 60)]
    model = train_single_label(x, y, 0, "multinomial_nb", params, calibrate=False)
    model = load_model(model.to_bytes())  # as served
    reference = MultinomialNB(**(params or {})).fit(x, y)
    assert model.classes == list(reference.classes_)
    np.testing.assert_allclose(model.predict_proba(x), reference.predict_proba(x), rtol=1e-5, atol=1e-6)


def test_progress_covers_the_features_then_the_rounds(tmp_path, monkeypatch):
    """An embedding part's progress reaches the listener as the ``features`` stage, before
    any round: on long texts MiniLM takes minutes before the first round."""

    def embed(texts: list[str], progress=None) -> np.ndarray:
        for done in (len(texts) // 2, len(texts)):
            if progress:
                progress(done / len(texts))
        rows = np.array([[len(t), t.count("red") + 1.0, 1.0] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    monkeypatch.setitem(features.EMBEDDINGS, "wordllama", embed)
    heard: list[tuple[str, float]] = []
    data = load_dataset_rows(text_rows(120))
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=10,
        batch_size=10,
        budget=30,
        repeats=1,
        vectorizer="tfidf+wordllama",
    )
    simulate(data, None, settings, tmp_path, progress=lambda f, eta, stage: heard.append((stage, f)))
    stages = [stage for stage, _ in heard]
    assert heard[:2] == [("features", 0.5), ("features", 1.0)]
    assert set(stages[2:]) == {"simulating"} and heard[-1] == ("simulating", 1.0)
    fractions = [f for stage, f in heard if stage == "simulating"]
    assert fractions == sorted(fractions)


def test_the_terminal_bar_draws_each_stage_on_its_own_line():
    out = io.StringIO()
    draw = terminal_progress(out)
    draw(0.5, 10.0, "features")
    draw(0.25, 30.0, "simulating")  # the features ended without a final report
    draw(1.0, 0.0, "simulating")
    draw(1.0, 0.0, "simulating")  # a finished stage draws nothing more
    lines = out.getvalue().split("\n")
    assert len(lines) == 3 and lines[2] == ""
    assert lines[0].startswith("\rfeatures ") and "50.0%" in lines[0]
    assert lines[1].count("\rsimulating") == 2 and lines[1].rstrip().endswith("eta     0 s")


def wait_finished(client, run_jobs, url: str) -> dict:
    run_jobs()
    body = client.get(url).json
    assert body["status"] == "finished", body
    return body


def test_simulation_through_the_api(client, run_jobs):
    rows = text_rows(240)
    body = {
        "train": rows[:200],
        "test": rows[200:],
        "strategies": ["uncertainty", "diversity"],
        "seed_size": 9,
        "batch_size": 10,
        "budget": 49,
        "repeats": 2,
        "vectorizer_name": "tfidf",
    }
    resp = client.post("/v1/simulations", json=body)
    assert resp.status_code == 202, resp.json
    url = resp.headers["Location"]
    assert client.get(url).json["status"] == "queued"
    done = wait_finished(client, run_jobs, url)
    assert done["progress"]["fraction"] == 1.0
    summary = done["summary"]
    assert set(summary["strategies"]) == {"uncertainty", "diversity", "random"}
    assert done["settings"]["budget"] == 49 and done["source"]["train_rows"] == 200
    # the API's job runs the CLI's code: the same data and settings give the same figures
    data = load_dataset_rows(rows[:200])
    test = load_dataset_rows(rows[200:])
    settings = Settings(
        strategies=["uncertainty", "diversity"],
        seed_size=9,
        batch_size=10,
        budget=49,
        repeats=2,
        vectorizer="tfidf",
    )
    direct = simulate(data, test, settings, _tmp(), progress=quiet)
    assert summary["strategies"] == direct["strategies"]
    csv_resp = client.get(done["files"]["curves.csv"])
    assert csv_resp.mimetype == "text/csv" and csv_resp.data.startswith(b"strategy,repeat,labels")
    png = client.get(done["files"]["curves.png"])
    assert png.mimetype == "image/png" and png.data[:4] == b"\x89PNG"
    assert json.loads(client.get(done["files"]["summary.json"]).data)["strategies"] == summary["strategies"]
    assert client.get(url + "/nothing.txt").status_code == 404
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def _tmp():
    import tempfile

    return tempfile.mkdtemp(prefix="alrank-test-")


def load_dataset_rows(rows: list[dict]):
    from workers.simulation.data import dataset_from_records

    return dataset_from_records(((str(i), r) for i, r in enumerate(rows)), "rows")


def test_simulation_of_a_projects_own_labels(client, run_jobs):
    rows = text_rows(120, seed=3)
    project = {
        "name": "sim",
        "schemas": [{"name": "topic", "labels": list(WORDS)}],
        "active_learning": {"query_strategy": "badge", "min_instances_for_training": 1000},
    }
    assert client.post("/v1/projects", json=project).status_code == 201
    items = [{"id": r["id"], "text": r["text"]} for r in rows]
    client.post("/v1/projects/sim/items", json={"items": items})
    labels = [{"item": r["id"], "schema": "topic", "value": r["label"], "annotator": "a"} for r in rows[:100]]
    client.post("/v1/projects/sim/labels", json={"labels": labels})
    body = {
        "source": {"project": "sim", "schema": "topic"},
        "seed_size": 6,
        "batch_size": 6,
        "budget": 30,
        "repeats": 1,
    }
    resp = client.post("/v1/simulations", json=body)
    assert resp.status_code == 202, resp.json
    done = wait_finished(client, run_jobs, resp.headers["Location"])
    assert done["source"]["train_rows"] == 100  # the labelled items only
    assert set(done["summary"]["strategies"]) == {"badge", "random"}  # the project's strategy


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({}, "either train rows or a source project"),
        (
            {"train": [{"text": "a", "label": "x"}] * 12, "source": {"project": "p", "schema": "s"}},
            "not both",
        ),
        ({"train": [{"text": "a", "label": "x"}] * 12}, "at least two labels"),
        (
            {"train": [{"text": "a", "label": "x"}, {"label": "y"}] * 6},
            "train[1]: a row needs 'text' or 'features'",
        ),
        (
            {"train": [{"text": "a", "label": "x"}, {"features": [1], "label": "y"}] * 6},
            "mix 'text' and 'features'",
        ),
        ({"train": [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}]}, "at least 10 labelled rows"),
        (
            {
                "train": [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}] * 6,
                "strategies": ["magic"],
            },
            "strategies.0: Must be one of",
        ),
        ({"train": [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}] * 6, "repeats": 0}, "repeats"),
        ({"train": [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}] * 6, "colour": 1}, "colour"),
        ({"source": {"project": "nope", "schema": "s"}}, "nope"),
    ],
)
def test_simulation_requests_are_checked(client, body, fragment):
    resp = client.post("/v1/simulations", json=body)
    assert resp.status_code in (404, 422), resp.json
    assert resp.mimetype == "application/problem+json"
    assert fragment in json.dumps(resp.json), resp.json


def test_unknown_simulation_is_404(client):
    assert client.get("/v1/simulations/0123456789abcdef").status_code == 404
    assert client.get("/v1/simulations/0123456789abcdef/curves.csv").status_code == 404
    assert client.delete("/v1/simulations/0123456789abcdef").status_code == 404


def test_replay_stops_at_a_mark_and_grows_its_batches():
    from workers.simulation.data import featurise
    from workers.simulation.engine import run_one

    rows = text_rows(400, seed=5)
    train, test = load_dataset_rows(rows[:300]), load_dataset_rows(rows[300:])
    x, x_test = featurise(train, test, "tfidf")
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=10,
        batch_size=10,
        budget=300,
        vectorizer="tfidf",
        large_batch_size=50,
        large_batch_from=40,
    )
    sizes = [p.labels for p in run_one("random", 0, x, train.labels, x_test, test.labels, settings)]
    assert sizes[:4] == [10, 20, 30, 40] and sizes[4:7] == [90, 140, 190]
    settings.stop_accuracy = 0.9
    points = run_one("uncertainty", 0, x, train.labels, x_test, test.labels, settings)
    assert points[-1].accuracy >= 0.9 and all(p.accuracy < 0.9 for p in points[:-1])
    assert points[-1].labels < 300


def test_a_projects_uncertainty_measure_reaches_the_strategy(tmp_path, monkeypatch):
    import workers.ranking
    import workers.simulation.engine

    seen = []
    real = workers.simulation.engine.select

    def spy(name, **kwargs):
        seen.append((name, kwargs["params"]))
        return real(name, **kwargs)

    # the cold start picks in the engine, the ranking (balanced head) in workers.ranking
    monkeypatch.setattr(workers.simulation.engine, "select", spy)
    monkeypatch.setattr(workers.ranking, "select", spy)
    data = load_dataset_rows(text_rows(120))
    settings = Settings(
        strategies=["uncertainty"],
        seed_size=10,
        batch_size=10,
        budget=30,
        repeats=1,
        vectorizer="tfidf",
        params={"uncertainty_measure": "entropy"},
        loop="seeded",
    )
    simulate(data, None, settings, tmp_path / "out", progress=quiet)
    measures = {params["measure"] for name, params in seen if name == "uncertainty"}
    assert measures == {"entropy"}


def test_a_weighted_hybrid_with_a_bald_term_replays(tmp_path):
    data = load_dataset_rows(text_rows(120))
    settings = Settings(
        strategies=["hybrid"],
        seed_size=10,
        batch_size=10,
        budget=30,
        repeats=1,
        vectorizer="tfidf",
        params={"hybrid_weights": {"bald": 0.5, "uncertainty": 0.5}},
    )
    summary = simulate(data, None, settings, tmp_path / "out", progress=quiet)
    assert summary["strategies"]["hybrid"]["final_accuracy"] > 0


def _gain(trained_on: int, m: int | None, lo: int | None, hi: int | None, verdict: str) -> dict:
    return {
        "status": "estimated",
        "labels": trained_on,
        "equivalent_random_labels": m,
        "interval": [lo, hi],
        "verdict": verdict,
    }


def test_the_gain_is_checked_against_the_random_curve_in_training_labels():
    from workers.simulation.report import gain_validation, true_random_labels
    from workers.simulation.spec import Point

    # random labelling's test curve: 0.5 at 100 labels (90 trained on), 0.7 at 200 (180), 0.8 at 300 (270)
    random = [
        Point("random", r, labels, acc, acc, None, trained)
        for r in (0, 1)
        for labels, acc, trained in ((100, 0.5, 90), (200, 0.7, 180), (300, 0.8, 270))
    ]
    assert true_random_labels(random, 0.6) == pytest.approx(135.0)  # halfway from 90 to 180
    assert true_random_labels(random, 0.9) is None  # never within the budget
    ours = [
        # truth 135: covered, and "saving" is right (135 > 80)
        Point("ours", 0, 100, 0.6, 0.6, _gain(80, 130, 100, 170, "saving"), 80),
        # truth 135: missed, and "not_helping" is wrong (135 > 120)
        Point("ours", 1, 150, 0.6, 0.6, _gain(120, 60, 40, 90, "not_helping"), 120),
        # truth past the budget (270): an open top covers it
        Point("ours", 0, 200, 0.9, 0.9, _gain(160, None, 400, None, "saving"), 160),
        # a bounded top short of the budget misses it
        Point("ours", 1, 250, 0.9, 0.9, _gain(200, 230, 210, 260, "saving"), 200),
        # truth 180 at or under the 180 trained on: "saving" is wrong, yet the interval covers
        Point("ours", 0, 300, 0.7, 0.7, _gain(180, 200, 170, 240, "saving"), 180),
        Point("ours", 1, 300, 0.7, 0.7, {"status": "too_early"}, 180),
    ]
    summary, rows = gain_validation(random + ours)
    assert [r["covered"] for r in rows] == [True, False, True, False, True]
    assert rows[0]["truth"] == pytest.approx(135.0) and rows[2]["truth"] is None
    mine = summary["ours"]
    assert (mine["estimates"], mine["covered"], mine["truth_beyond_budget"]) == (5, 3, 2)
    assert mine["wrong_verdicts"] == 2
    assert mine["verdicts"] == {"saving": 4, "undecided": 0, "not_helping": 1}
    assert mine["bounded"] == 4 and mine["median_high_over_low"] == pytest.approx(
        np.median([1.7, 2.25, 260 / 210, 240 / 170])
    )
    assert "random" not in summary  # no estimates were made for it


def test_the_gain_is_checked_with_the_fits_it_was_estimated_for():
    """The served model also learns from the evaluation labels, so it scores higher on the
    test split than the fit the gain was estimated for: the truth reads the measured fits'
    accuracies, on both sides, not the served models'."""
    from workers.simulation.report import gain_validation, true_random_labels
    from workers.simulation.spec import Point

    # served models 0.05 above their measured fits
    random = [
        Point("random", 0, labels, acc + 0.05, acc + 0.05, None, trained, acc)
        for labels, acc, trained in ((100, 0.5, 90), (200, 0.7, 180), (300, 0.8, 270))
    ]
    assert true_random_labels(random, 0.6) == pytest.approx(135.0)
    ours = [Point("ours", 0, 100, 0.65, 0.65, _gain(80, 130, 100, 170, "saving"), 80, 0.6)]
    _, rows = gain_validation(random + ours)
    assert rows[0]["truth"] == pytest.approx(135.0) and rows[0]["test_accuracy"] == 0.6


def test_svc_learns_a_boundary_no_hyperplane_draws():
    """On two interleaved half-moons the RBF kernel machine beats logistic regression, and
    stored and loaded (arrays only) it answers the same probabilities, in chunks or not."""
    from sklearn.datasets import make_moons

    import workers.models
    from workers.models import KernelModel, load_model, train_single_label

    x, y = make_moons(800, noise=0.2, random_state=0)
    labels = ["ab"[v] for v in y]
    accuracy = {}
    for classifier in ("logistic_regression", "svc"):
        model = load_model(train_single_label(x[:400], labels[:400], 0, classifier).to_bytes())
        predicted = np.array(model.classes)[model.predict_proba(x[400:]).argmax(axis=1)]
        accuracy[classifier] = float(np.mean(predicted == np.array(labels[400:])))
    assert isinstance(model, KernelModel) and model.rows.shape == (300, 2)
    assert accuracy["svc"] > accuracy["logistic_regression"] + 0.04, accuracy
    whole = model.predict_proba(x)
    workers.models.KERNEL_CHUNK, saved = 64, workers.models.KERNEL_CHUNK
    try:
        np.testing.assert_allclose(model.predict_proba(x), whole, rtol=1e-7)  # BLAS rounding
    finally:
        workers.models.KERNEL_CHUNK = saved


@pytest.mark.parametrize("gamma", ["scale", "auto", 0.5])
def test_svc_takes_svcs_gamma(gamma):
    import scipy.sparse as sp

    from workers.model_kinds import scale_gamma
    from workers.models import train_single_label

    x = sp.random(40, 12, density=0.5, random_state=1, format="csr")
    y = ["a", "b"] * 20
    model = train_single_label(x, y, 0, "svc", {"gamma": gamma, "C": 2.0}, calibrate=False)
    expected = {"scale": scale_gamma(x), "auto": 1 / 12, 0.5: 0.5}[gamma]
    assert model.gamma == pytest.approx(expected) and model.rows.shape == (40, 12)


def test_the_time_left_falls_as_rounds_that_grow_with_the_labels_are_done(monkeypatch):
    """Rounds whose cost grows with the labels, as training does: from the third round on,
    the time left falls round after round and stays within 5% of the truth, where a count
    of rounds done would keep rising."""
    import workers.simulation.progress as progress

    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    heard: list[tuple[float, float]] = []
    clock = progress.RoundClock(lambda f, eta, stage: heard.append((f, eta)), 2, 20, 20, 200)
    rounds = [(run, labels) for run in range(2) for labels in range(20, 201, 20)]
    costs = [0.5 + 0.01 * labels for _, labels in rounds]
    for (run, labels), cost in zip(rounds, costs, strict=True):
        now[0] += cost
        clock.round_done(run, labels)
    left = [sum(costs[k + 1 :]) for k in range(len(rounds))]
    etas = [eta for _, eta in heard][2:]
    assert all(later <= earlier + 1e-9 for earlier, later in itertools.pairwise(etas))
    assert all(abs(eta - t) < 0.05 * max(t, 1.0) for eta, t in zip(etas, left[2:], strict=True))
    fractions = [f for f, _ in heard][2:]
    assert fractions == sorted(fractions) and heard[-1] == (1.0, 0.0)
