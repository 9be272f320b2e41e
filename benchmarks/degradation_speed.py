"""Realised and estimated performance of a binary classifier on a 1M-row window.

    .venv/bin/python benchmarks/degradation_speed.py              # 1M rows, 5 rounds
    .venv/bin/python benchmarks/degradation_speed.py --rows 100000

Side by side in one run, rounds interleaved (A B C A B C ...):

* ``sklearn``: scikit-learn computing the realised metrics directly
  (accuracy, precision, recall, F1, ROC AUC, log loss);
* ``realised``: ``compare_performance`` with labels (the same metrics, compared
  with the baseline);
* ``estimated``: ``compare_performance`` without labels (isotonic calibration,
  expected confusion matrix and ROC AUC, a band from 100 simulated label sets).

Targets: realised within 2x of scikit-learn; estimation under 10x the realised cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sklearn import metrics as skm

from mlflow_observe.core.performance.degradation import (
    compare_performance,
    reference_performance,
)


def make(n: int, seed: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < p).astype(int)
    return y, (p > 0.5).astype(int), p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    y_ref, pred_ref, p_ref = make(50_000, seed=0)
    performance = reference_performance(y_ref, pred_ref, p_ref, probabilities=["p_1"])
    y, pred, p = make(args.rows, seed=1, shift=0.3)
    proba = np.column_stack([1 - p, p])

    def sklearn_metrics():
        return (
            skm.accuracy_score(y, pred),
            skm.precision_score(y, pred),
            skm.recall_score(y, pred),
            skm.f1_score(y, pred),
            skm.roc_auc_score(y, p),
            skm.log_loss(y, proba),
        )

    contenders = {
        "sklearn": sklearn_metrics,
        "realised": lambda: compare_performance(performance, y_true=y, y_pred=pred, proba=p),
        "estimated": lambda: compare_performance(performance, y_pred=pred, proba=p),
    }
    times = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"rows: {args.rows:,}; {args.repeats} rounds; medians\n")
    print("| contender | median s | vs sklearn |")
    print("| --- | ---: | ---: |")
    for name, value in median.items():
        print(f"| {name} | {value:.3f} | {value / median['sklearn']:.2f}x |")
    print(f"\nrealised / sklearn: {median['realised'] / median['sklearn']:.2f}x (target <= 2x)")
    print(f"estimated / realised: {median['estimated'] / median['realised']:.2f}x (target < 10x)")
    realised = compare_performance(performance, y_true=y, y_pred=pred, proba=p)
    estimated = compare_performance(performance, y_pred=pred, proba=p)
    for name in ("accuracy", "roc_auc"):
        print(
            f"{name}: realised {realised.metric(name).value:.4f}, estimated "
            f"{estimated.metric(name).value:.4f}"
        )


if __name__ == "__main__":
    main()
