"""Text and embedding columns end to end: the wrapper logs them, the monitor judges each window.

A text model is logged with ``mlflow_observe.log_model`` on a real SQLite store,
with a baseline holding a free-text column and a 16-dimensional vector column.
The loaded pyfunc model predicts in this process; its writer puts every call in
a Parquet prediction log (texts as strings, vectors as ``list<float32>``); the
monitor reads two hourly windows back, one calm and one drifted in both
columns, and logs each window's run.
"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from corpora import rotten_tomatoes
from mlflow import MlflowClient
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema
from sklearn.compose import make_column_transformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlflow_observe as mo

DIM = 16
N_TRAIN = 2000
N_WINDOW = 300  # rows a window
ROWS_PER_CALL = 10
DAY = pd.Timestamp("2026-11-26", tz="UTC")
SHIFT = 0.75  # added to every component of a drifted window's vectors: 3 reference SDs in all


def _vectors(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return [v.round(6).tolist() for v in rng.normal(shift, 1.0, size=(n, DIM))]


@pytest.fixture(scope="module")
def texts():
    corpus = rotten_tomatoes()
    critics = corpus[corpus["category"] != "plot"].sample(frac=1.0, random_state=0)
    plots = corpus[corpus["category"] == "plot"].sample(N_WINDOW, random_state=0)
    return {
        "train": critics.iloc[:N_TRAIN],
        "calm": critics.iloc[N_TRAIN : N_TRAIN + N_WINDOW],
        "plots": plots,
    }


@pytest.fixture
def logged_model(tracking_uri, texts):
    """A TF-IDF sentiment model (the vectors pass by it), logged with its baseline."""
    train = pd.DataFrame(
        {"review": texts["train"]["text"].to_numpy(), "embedding": _vectors(N_TRAIN, seed=0)}
    )
    fresh = (texts["train"]["category"] == "fresh").astype(int).to_numpy()
    model = make_pipeline(
        make_column_transformer((TfidfVectorizer(min_df=2), "review")),  # drops the vectors
        LogisticRegression(max_iter=1000),
    ).fit(train, fresh)
    signature = ModelSignature(
        inputs=Schema(
            [ColSpec(DataType.string, "review"), ColSpec(Array(DataType.double), "embedding")]
        ),
        outputs=Schema([ColSpec(DataType.long)]),
    )
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=train.assign(fresh=fresh),
            targets="fresh",
            registered_model_name="reviews",
            signature=signature,
        )
    return f"models:/reviews/{info.registered_model_version}"


def _serve_in_process(model_uri, log_dir, windows, monkeypatch):
    """Load the wrapped model as ``mlflow models serve`` does (the log directory in
    ``MLFLOW_OBSERVE_LOG_DIR``) and send each window's rows, 10 a call, stamped inside
    that window's hour; close the writer (a clean stop: nothing lost)."""
    monkeypatch.setenv("MLFLOW_OBSERVE_LOG_DIR", log_dir)
    model = mlflow.pyfunc.load_model(model_uri)
    for hour, frame in enumerate(windows):
        for start in range(0, len(frame), ROWS_PER_CALL):
            stamp = DAY + pd.Timedelta(hours=hour, seconds=start)
            model.predict(
                frame.iloc[start : start + ROWS_PER_CALL],
                params={"event_time": stamp.isoformat(), "request_id": f"h{hour}-{start}"},
            )
    writer = model._model_impl.log_writer  # the wrapper's own writer, as a server holds it
    writer.close()
    assert writer.stats()["rows_dropped_write_failed"] == 0


def test_monitor_judges_logged_text_and_vectors_per_window(
    logged_model, texts, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # anything MLflow writes by default stays in the test's folder
    monkeypatch.setenv("MLFLOW_OBSERVE_MAX_EVENT_AGE_DAYS", "none")  # DAY, however long ago
    calm = pd.DataFrame(
        {"review": texts["calm"]["text"].to_numpy(), "embedding": _vectors(N_WINDOW, seed=1)}
    )
    # Awkward rows the model answers: an empty text, a short vector, a vector holding NaN.
    odd = pd.DataFrame({"review": ["", "fine."], "embedding": [[1.0, 2.0], [float("nan")] * DIM]})
    calm = pd.concat([calm, odd], ignore_index=True)
    drifted = pd.DataFrame(
        {
            "review": texts["plots"]["text"].to_numpy(),
            "embedding": _vectors(N_WINDOW, seed=2, shift=SHIFT),
        }
    )
    log_dir = str(tmp_path / "prediction-log")
    _serve_in_process(logged_model, log_dir, [calm, drifted], monkeypatch)

    logged = mo.read_logs(log_dir)
    assert len(logged) == 2 * N_WINDOW + len(odd)
    assert logged["embedding"].map(len).eq(DIM).sum() == 2 * N_WINDOW + 1  # all but the short

    experiment = mlflow.create_experiment(
        "reviews monitoring", artifact_location=(tmp_path / "monitoring").as_uri()
    )
    result = mo.monitor(
        logged_model,
        log_dir,
        window="1h",
        since=DAY,
        until=DAY + pd.Timedelta(hours=2),
        alerts=["drift/embedding/embedding_domain_auc>=0.7:critical"],
        experiment_name="reviews monitoring",
        drift_options={"log_plots": False},
        fleet=False,
    )
    assert [w.n_rows for w in result.windows] == [N_WINDOW + len(odd), N_WINDOW]
    # An alert rule may name an embedding's key; it fires on the drifted hour only.
    assert [w.level for w in result.windows] == [None, "critical"]
    client = MlflowClient()
    runs = [client.get_run(w.run_id) for w in result.windows]
    assert all(r.info.experiment_id == experiment for r in runs)
    quiet, moved = (r.data.metrics for r in runs)
    text_auc, vector_auc = "drift/review/text_domain_auc", "drift/embedding/embedding_domain_auc"
    for metrics in (quiet, moved):
        assert {text_auc, vector_auc, "drift/review/drifted", "drift/embedding/drifted"} <= set(
            metrics
        )
        assert "drift/embedding/embedding_euclidean_distance" in metrics
    # The calm window: held-out critics' snippets and vectors of the same law.
    assert quiet["drift/review/drifted"] == 0.0 and quiet["drift/embedding/drifted"] == 0.0
    assert quiet[text_auc] < 0.6 and quiet[vector_auc] < 0.6
    assert quiet["drift/share_drifted_columns"] == 0.0
    # The drifted window: plot summaries, and vectors moved by SHIFT in every component.
    assert moved["drift/review/drifted"] == 1.0 and moved["drift/embedding/drifted"] == 1.0
    assert moved[text_auc] > 0.9 and moved[vector_auc] > 0.9
    assert moved["drift/share_drifted_columns"] == 1.0
    # The window mean moved by SHIFT in each of 16 components: sqrt(16) * SHIFT = 3, within
    # the sampling error of a 300- and a 2000-vector mean (sqrt(16 / 300 + 16 / 2000) = 0.25).
    distance = moved["drift/embedding/embedding_euclidean_distance"]
    assert abs(distance - np.sqrt(DIM) * SHIFT) < 0.5
    # The tables: the two odd vectors counted apart in the calm window; in the drifted
    # one, the words that separate the texts (the why).
    quiet_rows, moved_rows = (_table(r.info.run_id, tmp_path / str(i)) for i, r in enumerate(runs))
    assert quiet_rows["embedding"]["statistics"]["n_invalid"] == 2
    assert quiet_rows["embedding"]["n_current"] == N_WINDOW
    assert moved_rows["review"]["drifted"]
    assert moved_rows["review"]["statistics"]["separating_terms"]
    assert moved_rows["embedding"]["drifted"]
    assert moved_rows["embedding"]["method"] == "embedding_domain_auc"


def _table(run_id, folder):
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="drift_table.json", dst_path=str(folder)
    )
    with open(path) as handle:
        return {r["column"]: r for r in json.load(handle)}
