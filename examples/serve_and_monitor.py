"""Serve a wrapped model, send it traffic that drifts half-way, read the log, evaluate.

    .venv/bin/python examples/serve_and_monitor.py

1. trains a classifier and logs it with ``mlflow_observe.log_model`` (the
   baseline goes inside the model and onto the run), registered as ``churn``
   with the alias ``champion``;
2. starts ``mlflow models serve -m models:/churn@champion`` on 127.0.0.1 with
   ``MLFLOW_OBSERVE_LOG_DIR`` set, and sends 400 requests: the second half with
   a shifted ``tenure_months``;
3. reads both halves of the prediction log back by time and evaluates each
   against the champion's baseline.

Everything stays on this machine: a SQLite tracking store and the log under
./.demo (or --store).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from _serving import send, serving
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

import mlflow_observe as mo

N_REQUESTS = 400


def make_customers(n: int, seed: int, tenure_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure_months": rng.gamma(4.0, 6.0, n) + tenure_shift,
            "monthly_spend": rng.normal(60.0, 15.0, n),
            "support_calls": rng.poisson(1.5, n).astype(float),
        }
    )


def churned(frame: pd.DataFrame) -> pd.Series:
    score = 1.5 - 0.08 * frame["tenure_months"] + 0.4 * frame["support_calls"]
    return (score > 0).astype(int)


def main(store: Path) -> None:
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    store.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{store / 'serve.db'}"
    log_dir = store / "prediction-log"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("mlflow-observe serve and monitor")

    # 1. Train and log the wrapped model.
    train = make_customers(3000, seed=0)
    labels = churned(train)
    model = LogisticRegression(max_iter=1000).fit(train, labels)
    with mlflow.start_run(run_name="train"):
        info = mo.log_model(
            model,
            name="model",
            baseline=train.assign(churned=labels),
            targets="churned",
            registered_model_name="churn",
            input_example=train.head(5),
        )
    MlflowClient().set_registered_model_alias("churn", "champion", info.registered_model_version)
    print(f"logged {info.model_uri} as models:/churn@champion")

    # 2. Serve it with prediction logging on, and send traffic that drifts half-way.
    with serving(
        "models:/churn@champion", tracking_uri, log_dir, MLFLOW_OBSERVE_FLUSH_SECONDS="0.5"
    ) as url:
        calm = make_customers(N_REQUESTS // 2, seed=1)
        # the same kind of customers, staying a year longer
        shifted = make_customers(N_REQUESTS // 2, seed=1, tenure_shift=12.0)
        start = pd.Timestamp.now(tz="UTC")
        send(url, calm)
        middle = pd.Timestamp.now(tz="UTC")
        send(url, shifted)
        time.sleep(1.5)  # the writer flushes every 0.5 s here
        end = pd.Timestamp.now(tz="UTC")
    print(f"sent {N_REQUESTS} requests to {url}/invocations; the second half shifted")

    # 3. Read each half of the log back by time and evaluate it against the champion.
    for name, (since, until) in {
        "first half": (start, middle),
        "second half": (middle, end),
    }.items():
        window = mo.read_logs(str(log_dir), start=since, end=until)
        with mlflow.start_run(run_name=f"monitor {name}") as run:
            result = mo.evaluate_drift(window, baseline="models:/churn@champion", log_plots=False)
        table = result.artifacts["drift_table"].content
        drifted = [r["column"] for r in table if r["drifted"]]
        print(
            f"{name}: {len(window)} logged predictions; drifted columns: {drifted or 'none'} "
            f"(run {run.info.run_id})"
        )
    print(f"\nprediction log: {log_dir}")
    print(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {tracking_uri}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path(".demo"))
    main(parser.parse_args().store)
