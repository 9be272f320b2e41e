"""Explanations: the tree explainer, the sampled method's cost per row, attribution drift.

    .venv/bin/python benchmarks/explain_speed.py [--repeats 3]

* 1,000 rows of a 100-tree random forest (depth 8) on 20 features, explained by
  ``mo.explain`` (SHAP's TreeExplainer) and, on 10 rows, by the sampled method;
  the forest's own ``predict_proba`` on the same rows as the floor.
* Attribution drift of a 100,000-row window whose attributions are already
  logged (``attribution_<column>`` columns, as the prediction log keeps them),
  beside the same window's drift evaluation on a baseline that recorded its
  global importance: once through ``mo.compare`` (the counting and comparison)
  and once through ``mo.evaluate_drift`` (the evaluator path, logging to a
  SQLite store). The cost of attribution drift is the difference of the two
  runs; its ratio to the drift evaluation is printed.

Medians over ``--repeats`` rounds, contenders interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

import mlflow_observe as mo
from mlflow_observe.tracking.predictor import record_impact


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    columns = [f"f{i}" for i in range(20)]
    train = pd.DataFrame(rng.normal(size=(5000, 20)), columns=columns)
    labels = (train["f0"] + train["f1"] * train["f2"] > 0).astype(int)
    forest = RandomForestClassifier(100, max_depth=8, random_state=0, n_jobs=1).fit(train, labels)
    rows = pd.DataFrame(rng.normal(size=(1000, 20)), columns=columns)
    reference = pd.DataFrame(rng.normal(size=(100_000, 20)), columns=columns)
    window = pd.DataFrame(rng.normal(size=(100_000, 20)), columns=columns)
    weights = np.linspace(2.0, 0.1, 20)
    linear = LinearRegression().fit(reference.iloc[:5000], reference.iloc[:5000] @ weights)
    baseline_profile = record_impact(mo.build_profile(reference), linear, reference)
    # Logged attributions: the linear model's exact values, w_j (x_j - mean_j).
    attributed = window.assign(
        **{
            f"attribution_{c}": weights[j] * (window[c] - reference[c].mean())
            for j, c in enumerate(columns)
        }
    )
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    mlflow.set_experiment("explain_speed")
    with mlflow.start_run() as run:
        mo.log_baseline(reference.iloc[:20_000], model=linear)
    baseline_run = run.info.run_id

    def evaluated(frame):
        with mlflow.start_run():
            mo.evaluate_drift(frame, baseline_run, log_plots=False)

    timings: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        rounds = {
            "predict_proba, 1,000 rows": lambda: forest.predict_proba(rows),
            "tree explainer, 1,000 rows": lambda: mo.explain(
                forest, rows, background=train, output="probability"
            ),
            "sampled method, 10 rows": lambda: mo.explain(
                forest, rows.iloc[:10], background=train, output="probability", method="sampled"
            ),
            "compare, 100,000 rows": lambda: mo.compare(baseline_profile, window),
            "compare with attributions, 100,000 rows": lambda: mo.compare(
                baseline_profile, attributed
            ),
            "evaluate_drift, 100,000 rows": lambda: evaluated(window),
            "evaluate_drift with attributions, 100,000 rows": lambda: evaluated(attributed),
        }
        for name, function in rounds.items():
            timings.setdefault(name, []).append(_timed(function))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("| what | median s |\n| --- | ---: |")
    for name, value in medians.items():
        print(f"| {name} | {value:.3f} |")
    per_row = medians["sampled method, 10 rows"] / 10
    print(f"\nsampled method: {per_row:.3f} s a row")
    for path in ("compare", "evaluate_drift"):
        plain = medians[f"{path}, 100,000 rows"]
        extra = medians[f"{path} with attributions, 100,000 rows"] - plain
        print(
            f"{path}: attribution drift {extra:.3f} s beside the drift evaluation's "
            f"{plain:.3f} s: ratio {extra / plain:.3f}"
        )
    tree_ratio = medians["tree explainer, 1,000 rows"] / medians["predict_proba, 1,000 rows"]
    print(f"tree explainer / predict_proba: {tree_ratio:.1f}")


if __name__ == "__main__":
    main()
