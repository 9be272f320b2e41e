"""Label-free estimates on real data against NannyML's, from stored fixtures.

``benchmarks/conformance/peers.py`` (run in NannyML's own virtual environment)
stores, for each real dataset, a model's outputs on a reference and on an
analysis period split for a real reason, and NannyML's estimate on each chunk.
Here mlflow-observe estimates the same chunks from the same outputs, and its
error against the realised metric must stay within NannyML's own error (mean
absolute error over the chunks, plus 0.01 for classifier metrics or 10% for
regression metrics), on every metric of every dataset.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlflow_observe.core.performance.degradation import compare_performance, reference_performance
from mlflow_observe.core.performance.metrics import classification_metrics, regression_metrics

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "conformance").glob("*.json"))
# NannyML's metric names -> ours.
NAMES = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "f1": "f1",
    "precision": "precision",
    "recall": "recall",
    "mae": "mae",
    "rmse": "rmse",
}
SLACK = 0.01


def _load(path):
    return json.loads(path.read_text())


def _proba(part, record):
    columns = [c for c in part if c.startswith("p_")]
    return np.column_stack([part[c] for c in sorted(columns)]) if columns else None


def errors(record, random_state=0):
    """Per metric: (our mean absolute error, NannyML's) over the analysis chunks."""
    reference, analysis = record["reference"], record["analysis"]
    regression = record["task"] == "regression"
    features = record["features"]
    y_ref, pred_ref = np.asarray(reference["y"]), np.asarray(reference["pred"])
    if regression:
        performance = reference_performance(
            y_ref,
            pred_ref,
            task="regression",
            features=pd.DataFrame({c: reference[c] for c in features}),
            random_state=random_state,
        )
    else:
        performance = reference_performance(
            y_ref.astype(int),
            pred_ref.astype(int),
            _proba(reference, record),
            probabilities=[c for c in reference if c.startswith("p_")],
            random_state=random_state,
        )
    y, pred = np.asarray(analysis["y"]), np.asarray(analysis["pred"])
    proba = _proba(analysis, record)
    ours, theirs = {}, {}
    for i, (start, end) in enumerate(record["chunk_bounds"]):
        rows = slice(start, end)
        if regression:
            frame = pd.DataFrame({c: np.asarray(analysis[c])[rows] for c in features})
            estimate = compare_performance(performance, y_pred=pred[rows], features=frame)
            realised = regression_metrics(y[rows], pred[rows])
        else:
            estimate = compare_performance(
                performance, y_pred=pred[rows].astype(int), proba=proba[rows]
            )
            classes = list(performance.classes)
            matrix = proba[rows] if proba.shape[1] > 1 else np.c_[1 - proba[rows], proba[rows]]
            realised = classification_metrics(
                y[rows].astype(int), pred[rows].astype(int), matrix, classes=classes
            )
        values = {m.metric: m.value for m in estimate.metric_results}
        for key, series in record["nannyml_estimates"].items():
            name = NAMES[key]
            if name not in realised or name not in values or not np.isfinite(series[i]):
                continue
            ours.setdefault(name, []).append(abs(values[name] - realised[name]))
            theirs.setdefault(name, []).append(abs(series[i] - realised[name]))
    return {name: (float(np.mean(ours[name])), float(np.mean(theirs[name]))) for name in ours}


def within(record, name, ours, theirs) -> bool:
    """Classifier metrics (in [0, 1]): at most 0.01 above NannyML's error; regression
    metrics (in the target's units): at most 10% above."""
    if record["task"] == "regression":
        return ours <= theirs * (1 + 10 * SLACK)
    return ours <= theirs + SLACK


@pytest.mark.skipif(not FIXTURES, reason="no conformance fixtures")
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_label_free_estimates_are_within_nannymls_error(path):
    record = _load(path)
    measured = errors(record)
    assert measured  # every fixture compares at least one metric
    for name, (ours, theirs) in measured.items():
        assert within(record, name, ours, theirs), (record["dataset"], name, ours, theirs)


CLASSIFIERS = [p for p in FIXTURES if _load(p)["task"] != "regression"]


@pytest.mark.parametrize("random_state", [1, 2, 3, 4])
@pytest.mark.parametrize("path", CLASSIFIERS, ids=[p.stem for p in CLASSIFIERS])
def test_the_bound_holds_whatever_the_calibration_folds(path, random_state):
    """Whether a class's scores are calibrated is decided on random folds of 250 to 2,000
    reference rows: the bound holds whatever the folds, not for one lucky seed."""
    record = _load(path)
    for name, (ours, theirs) in errors(record, random_state).items():
        assert within(record, name, ours, theirs), (name, random_state, ours, theirs)


if __name__ == "__main__":  # the table of benchmarks/README.md
    print("| dataset | task | metric | chunks | our error | NannyML's error |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for path in FIXTURES:
        record = _load(path)
        for name, (ours, theirs) in errors(record).items():
            print(
                f"| {record['dataset']} | {record['task']} | {name} | "
                f"{len(record['chunk_bounds'])} | {ours:.4f} | {theirs:.4f} |"
            )
