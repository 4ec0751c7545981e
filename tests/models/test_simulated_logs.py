"""The pipeline on real data: a `sim.world` world, logs the simulator made through the real service.

One module, so the world and its logs (the slow part: real HTTP) are made once and shared.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
import scipy.sparse as sp

from botify.registry import EXPERIMENTS
from botify.store import Store
from models.catalog import read_catalog
from models.features import FEATURE_GROUPS, identity_only, item_features, lightfm_data
from models.logs import read_listens
from models.positives import PositivesConfig, build_interactions
from models.recommend import Scorer
from models.training import Evaluator, LightFMParams, fit
from models.tuning import TuneConfig, tune

from .conftest import REPO, run_models

TRACKS, USERS, EPISODES = 500, 100, 3000
POSITIVES = PositivesConfig(min_user_positives=3, min_track_positives=3)


@dataclass(frozen=True)
class Trained:
    out: Path
    process: subprocess.CompletedProcess
    published: dict[str, dict[int, list[int]]]  # what `--load` put in Redis for a few users, by set


@pytest.fixture(scope="module")
def sim_logs(simulate_through_botify):
    """A small world (`.data`), and the logs of the simulator's listeners served by the real botify (`.logs`) under
    EXPLORE, the experiment that collects training data (the course's three baselines), as the pipeline's day 1."""
    return simulate_through_botify(seed=7, tracks=TRACKS, users=USERS, episodes=EPISODES, experiment="EXPLORE")


@pytest.fixture(scope="module")
def prepared(sim_logs):
    catalog = read_catalog(sim_logs.data)
    listens = read_listens([sim_logs.logs])
    interactions = build_interactions(listens, catalog.size, POSITIVES, np.random.default_rng(0))
    features = item_features(catalog)
    evaluator = Evaluator(interactions.train, interactions.valid, interactions.eval_users())
    with_features = lightfm_data(len(interactions.users), features)
    identity = lightfm_data(len(interactions.users), identity_only(features))
    return catalog, interactions, features, evaluator, with_features, identity


@pytest.fixture(scope="module")
def trained(sim_logs, redis_server, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """`python -m models train ... --load` as a user runs it, against the test Redis."""
    out = tmp_path_factory.mktemp("models-out")
    env = {"REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    process = run_models(
        "train", "--logs", sim_logs.logs, "--data", sim_logs.data, "--out", out, "--trials", "2",
        "--epochs", "8", "--threads", "1", "--min-positives", "3", "--top-k", "50", "--load", env=env,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    store = Store(redis.Redis.from_url(redis_server.url))
    published = {}
    for name in ("lightfm", "lightfm_nofeat"):
        users = [json.loads(line)["user"] for line in (out / f"{name}.jsonl").read_text().splitlines()[:5]]
        published[name] = {user: store.user_list(user, name).tolist() for user in users}
    return Trained(out=out, process=process, published=published)


def test_every_catalog_track_gets_identity_and_all_feature_groups(prepared, sim_logs) -> None:
    catalog, _, features, _, with_features, _ = prepared
    assert features.groups == FEATURE_GROUPS
    matrix = with_features.item_features
    assert matrix.shape[0] == catalog.size == TRACKS
    nonzero = np.diff(matrix.indptr)
    assert (nonzero == 1 + len(FEATURE_GROUPS)).all()  # identity + one feature per group
    assert (matrix.data == 1.0).all()
    genre = catalog.tracks["genre"].iloc[3]
    assert f"genre={genre}" in features.names[3]


def test_scores_use_item_features_and_match_lightfm_predict(prepared) -> None:
    _, interactions, _, _, with_features, _ = prepared
    fitted = fit(LightFMParams(), interactions.train, with_features.item_features, 3, 1, random_state=3)
    users = np.array([0, 1, 2])
    ours = fitted.scorer().scores(users)
    items = np.arange(TRACKS, dtype=np.int32)
    for row in users:
        theirs = fitted.model.predict(int(row), items, item_features=with_features.item_features)
        user_bias = fitted.model.user_biases[row]
        np.testing.assert_allclose(ours[row], theirs - user_bias, rtol=1e-4, atol=1e-5)
    # The same model asked without the features (identity rows only) ranks differently.
    n_features = with_features.item_features.shape[1]
    identity_rows = sp.csr_matrix((np.ones(TRACKS, np.float32), (items, items)), shape=(TRACKS, n_features))
    without = Scorer.from_lightfm(fitted.model, identity_rows).scores(users)
    assert not np.allclose(ours, without, atol=1e-3)


def test_early_stopping_triggers_and_keeps_the_best_epoch(prepared) -> None:
    _, interactions, _, evaluator, with_features, _ = prepared
    params = LightFMParams(learning_rate=0.2)
    fitted = fit(
        params, interactions.train, with_features.item_features, 60, 1, random_state=1, evaluator=evaluator, patience=2
    )
    assert fitted.stopped_early
    assert len(fitted.curve) < 60
    precisions = [e.metrics.precision for e in fitted.curve]
    assert fitted.best_epoch == int(np.argmax(precisions)) + 1
    assert len(fitted.curve) - fitted.best_epoch == 2
    assert evaluator(fitted.scorer()).precision == pytest.approx(max(precisions))


def test_one_thread_is_bit_reproducible(prepared) -> None:
    _, interactions, _, _, with_features, _ = prepared
    a, b = (
        fit(LightFMParams(), interactions.train, with_features.item_features, 2, 1, random_state=5) for _ in range(2)
    )
    np.testing.assert_array_equal(a.model.item_embeddings, b.model.item_embeddings)
    np.testing.assert_array_equal(a.model.user_embeddings, b.model.user_embeddings)


def test_optuna_study_runs_and_resumes(prepared, tmp_path: Path) -> None:
    _, interactions, _, evaluator, with_features, _ = prepared
    config = TuneConfig(storage=str(tmp_path / "study.db"), trials=2, epochs=3, threads=1, seed=0)
    first = tune(interactions.train, with_features.item_features, evaluator, config)
    assert (first.finished_trials, first.new_trials) == (2, 2)
    again = tune(interactions.train, with_features.item_features, evaluator, config)
    assert (again.finished_trials, again.new_trials) == (2, 0)
    assert again.params == first.params and again.value == first.value
    more = tune(
        interactions.train,
        with_features.item_features,
        evaluator,
        TuneConfig(storage=config.storage, trials=3, epochs=3, threads=1, seed=0),
    )
    assert (more.finished_trials, more.new_trials) == (3, 1)
    assert more.value >= first.value


def test_lightfm_with_features_beats_toppop(trained: Trained) -> None:
    report = json.loads((trained.out / "report.json").read_text())
    models = report["models"]
    assert models["LightFM + item features"]["precision"] > models["TopPop"]["precision"]
    assert {name: t["finished_trials"] for name, t in report["tuning"].items()} == {"lightfm": 2, "lightfm_nofeat": 2}
    assert set(json.loads((trained.out / "params.json").read_text())) == {"lightfm", "lightfm_nofeat"}
    assert (trained.out / "report.md").read_text().count("| LightFM") == 2


def test_export_format_is_exact(trained: Trained, sim_logs, prepared) -> None:
    _, interactions, *_ = prepared
    for name in ("lightfm", "lightfm_nofeat"):
        records = [json.loads(line) for line in (trained.out / f"{name}.jsonl").read_text().splitlines()]
        assert [sorted(r) for r in records] == [["tracks", "user"]] * len(records)
        users = [r["user"] for r in records]
        assert users == sorted(users) == interactions.users.tolist()
        seen = interactions.heard
        for row, record in enumerate(records):
            tracks = record["tracks"]
            assert len(tracks) == len(set(tracks)) == 50
            assert all(type(t) is int and 0 <= t < TRACKS for t in tracks)
            assert not set(tracks) & set(seen[row].indices.tolist())
        vectors = np.load(trained.out / f"{name}.npy")
        assert vectors.dtype == np.float32 and vectors.shape[0] == TRACKS and np.isfinite(vectors).all()


def test_load_flag_publishes_both_sets(trained: Trained) -> None:
    for name in ("lightfm", "lightfm_nofeat"):
        records = [json.loads(line) for line in (trained.out / f"{name}.jsonl").read_text().splitlines()[:5]]
        assert trained.published[name] == {r["user"]: r["tracks"] for r in records}


def test_service_serves_the_exported_lists(trained: Trained, sim_logs, start_module_botify) -> None:
    """HW_2_ARMS has an arm that serves the `lightfm` list in its stored order: it must answer its first track."""
    recs = {"lightfm": trained.out / "lightfm.jsonl", "lightfm_nofeat": trained.out / "lightfm_nofeat.jsonl"}
    service = start_module_botify(sim_logs.data, recs=recs, experiment="HW_2_ARMS")
    lists = {r["user"]: r["tracks"] for r in map(json.loads, recs["lightfm"].read_text().splitlines())}
    experiment = EXPERIMENTS["HW_2_ARMS"]
    in_order = [u for u in lists if experiment.recommender_for(experiment.arm(u)) == "lightfm_in_order"][:20]
    assert in_order
    for user in in_order:
        answer = requests.post(f"{service.url}/next/{user}", json={"track": lists[user][-1], "time": 0.9}, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["track"] == lists[user][0]
