"""Quickstart: record a baseline at training time, then catch drift in production.

Runs on a local SQLite tracking store (./.demo/mlflow.db), no server needed:

    python3 tasks.py demo

Then look at the results in the MLflow UI:

    .venv/bin/mlflow ui --backend-store-uri sqlite:///.demo/mlflow.db
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlflow_observe as mo

# The production window gets a known shift in these columns (in reference standard deviations).
INJECTED_SHIFT = {"mean radius": 1.0, "worst texture": 1.0}


def main(store: Path) -> None:
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("mlflow-observe quickstart")

    data = load_breast_cancer(as_frame=True)
    features, labels = data.data, data.target
    X_train, X_prod, y_train, y_prod = train_test_split(
        features, labels, test_size=0.4, random_state=0, stratify=labels
    )

    # 1. Training run: fit the model and record the baseline next to it.
    with mlflow.start_run(run_name="train") as train_run:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(X_train, y_train)
        mlflow.sklearn.log_model(model, name="model", input_example=X_train.head(3))
        reference = X_train.assign(label=y_train.to_numpy(), prediction=model.predict(X_train))
        profile = mo.log_baseline(reference, targets="label", predictions="prediction")
    print(
        f"Recorded a baseline of {profile.n_rows} rows and {len(profile.columns)} columns "
        f"on run {train_run.info.run_id}."
    )

    # 2. Two production windows: one like the training data, one with an injected shift.
    half = len(X_prod) // 2
    calm = X_prod.iloc[:half].copy()
    shifted = X_prod.iloc[half:].copy()
    for column, size in INJECTED_SHIFT.items():
        shifted[column] = shifted[column] + size * X_train[column].std()

    for name, window in (("calm window", calm), ("shifted window", shifted)):
        window = window.assign(prediction=model.predict(window))
        with mlflow.start_run(run_name=name) as run:
            # 30 correlated features, about 100 rows: judge the dataset with a
            # Benjamini-Hochberg correction over the columns' p-values.
            result = mo.evaluate_drift(window, baseline=train_run.info.run_id, dataset_method="bh")
        _print_result(name, run.info.run_id, result)

    print("\nOpen the results in the MLflow UI:")
    print(f"    .venv/bin/mlflow ui --backend-store-uri {uri}")
    print(
        "then the 'mlflow-observe quickstart' experiment: each window's run has the metrics "
        "(drift/...), drift_report.html, drift_table.json and drift_plots/."
    )


def _print_result(name: str, run_id: str, result) -> None:
    metrics = result.metrics
    table = pd.DataFrame(result.artifacts["drift_table"].content)
    features = table[table["role"] == "feature"]
    flagged = features[features["drifted"]]
    corrected = features[features["pvalue_adjusted"] <= 0.05]
    print(f"\n{name} (run {run_id}):")
    print(
        f"  dataset drift: {'yes' if metrics['drift/dataset_drift'] else 'no'}; "
        f"prediction drift: {'yes' if metrics.get('drift/prediction_drift') else 'no'}"
    )
    print(f"  columns with p < 0.05 on their own: {len(flagged)} of {len(features)}")
    print(f"  columns that drift after Benjamini-Hochberg over {len(features)} tests:")
    for _, row in corrected.iterrows():
        print(
            f"    - {row['column']}: {row['method']} p = {row['pvalue']:.2g} "
            f"(adjusted {row['pvalue_adjusted']:.2g})"
        )
    if corrected.empty:
        print("    (none)")
    expected = set(INJECTED_SHIFT) if name.startswith("shifted") else set()
    print(f"  injected shift in: {sorted(expected) or 'none'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        type=Path,
        default=Path(".demo"),
        help="Folder of the SQLite tracking store (default: .demo).",
    )
    main(parser.parse_args().store)
