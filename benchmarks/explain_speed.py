"""Explanations: the tree explainer, the sampled method's cost per row, attribution drift.

    .venv/bin/python benchmarks/explain_speed.py [--repeats 3]

* 1,000 rows of a 100-tree random forest (depth 8) on 20 features, explained by
  ``mo.explain`` (SHAP's TreeExplainer) and, on 10 rows, by the sampled method;
  the forest's own ``predict_proba`` on the same rows as the floor.
* Attribution drift of a 100,000-row window whose attributions are already
  logged (global importance + comparison), beside the same window's drift
  evaluation (``mo.compare``) on the baseline: their ratio.

Medians over ``--repeats`` rounds, contenders interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

import mlflow_observe as mo
from mlflow_observe.core.explain import attribution_drift, global_importance


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
    baseline_profile = mo.build_profile(reference)
    baseline_importance = global_importance(
        pd.DataFrame(rng.laplace(size=(5000, 20)), columns=columns)
    )
    window_attributions = pd.DataFrame(rng.laplace(size=(100_000, 20)), columns=columns)

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
            "window drift, 100,000 rows": lambda: mo.compare(baseline_profile, window),
            "attribution drift, 100,000 rows": lambda: attribution_drift(
                baseline_importance, global_importance(window_attributions)
            ),
        }
        for name, function in rounds.items():
            timings.setdefault(name, []).append(_timed(function))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("| what | median s |\n| --- | ---: |")
    for name, value in medians.items():
        print(f"| {name} | {value:.3f} |")
    per_row = medians["sampled method, 10 rows"] / 10
    print(f"\nsampled method: {per_row:.3f} s a row")
    ratio = medians["attribution drift, 100,000 rows"] / medians["window drift, 100,000 rows"]
    print(f"attribution drift / window drift: {ratio:.3f}")
    tree_ratio = medians["tree explainer, 1,000 rows"] / medians["predict_proba, 1,000 rows"]
    print(f"tree explainer / predict_proba: {tree_ratio:.1f}")


if __name__ == "__main__":
    main()
