"""Explaining degradation: the features the model leaned on where it erred.

Known causes: a classifier learnt ``y = [x1 + x2 + noise > 0]`` and the window's
labels follow ``x1 - x2`` (x2's relation to the label flipped), so its wrong
answers are the rows where x2 outweighed x1; a regressor learnt ``x1 + x3`` and
the window's truth is ``x1 + 3 x3``, so its error is ``2 x3`` and the
high-error rows are those with a large ``|x3|``. A linear model's attributions
are known in closed form (``w_j (x_j - m_j)``, in the score it is linear in),
which the logged path uses as its reference.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression, LogisticRegression

import mlflow_observe as mo
from mlflow_observe.comparison import explain_errors
from mlflow_observe.core.explain.errors import error_attribution, error_groups

COLUMNS = ["x1", "x2", "x3"]


def _features(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS)


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(0)
    reference = _features(20_000, 0)
    labels = (reference.x1 + reference.x2 + rng.normal(0, 0.3, len(reference)) > 0).astype(int)
    model = LogisticRegression().fit(reference, labels)
    recorded = reference.assign(label=labels, prediction=model.predict(reference))
    profile = mo.build_profile(recorded, targets="label", predictions="prediction")
    return model, reference, profile


def _flipped_window(model, n=4000, seed=1):
    """x2's relation to the label flipped: the model errs where x2 outweighs x1."""
    rng = np.random.default_rng(seed)
    window = _features(n, seed)
    labels = (window.x1 - window.x2 + rng.normal(0, 0.3, n) > 0).astype(int)
    return window.assign(label=labels, prediction=model.predict(window))


def _logit_attributions(model, window, background):
    weights = model.coef_[0]
    means = background[COLUMNS].mean().to_numpy()
    values = (window[COLUMNS].to_numpy() - means) * weights
    return window.assign(**{f"attribution_{c}": values[:, j] for j, c in enumerate(COLUMNS)})


@pytest.mark.parametrize("source", ["logged", "computed"])
def test_the_feature_whose_relation_flipped_tops_the_errors(classifier, source):
    model, reference, profile = classifier
    window = _flipped_window(model)
    if source == "logged":
        window = _logit_attributions(model, window, reference)
    result = explain_errors(
        profile,
        window,
        window["label"],
        window["prediction"],
        task="classification",
        model=model if source == "computed" else None,
    )
    assert result.source == source and result.groups == ("correct", "wrong")
    assert result.top_feature == "x2"
    by_feature = {r["feature"]: r for r in result.features}
    # x3 is unused: no share anywhere; x2's share rises on the wrong rows, x1's falls.
    assert by_feature["x3"]["bad_share"] == pytest.approx(0.0, abs=0.02)
    assert by_feature["x2"]["share_difference"] > 0.15
    assert by_feature["x1"]["share_difference"] < -0.15
    # Half the wrong answers at least: the window is about 50% wrong.
    assert result.n_bad > (1000 if source == "logged" else 50)


def test_random_label_noise_points_at_no_feature(classifier):
    model, reference, _ = classifier
    rng = np.random.default_rng(3)
    window = _features(6000, 3)
    predictions = model.predict(window)
    # A fifth of the labels flipped at random: errors that no feature explains.
    labels = np.where(rng.random(len(window)) < 0.2, 1 - predictions, predictions)
    window = _logit_attributions(model, window.assign(label=labels), reference)
    values = window[[f"attribution_{c}" for c in COLUMNS]].set_axis(COLUMNS, axis=1)
    bad, groups = error_groups(labels, predictions, "classification")
    result = error_attribution(values, bad, task="classification", groups=groups)
    assert max(abs(r["share_difference"]) for r in result.features) < 0.05


def test_regression_high_errors_follow_the_feature_whose_slope_changed():
    reference = _features(5000, 4)
    model = LinearRegression().fit(reference, reference.x1 + reference.x3)
    window = _features(4000, 5)
    truth = window.x1 + 3 * window.x3  # x3's slope tripled
    predictions = model.predict(window)
    weights = model.coef_
    values = pd.DataFrame(
        (window[COLUMNS].to_numpy() - reference[COLUMNS].mean().to_numpy()) * weights,
        columns=COLUMNS,
    )
    bad, groups = error_groups(truth, predictions, "regression")
    assert groups == ("low error", "high error") and np.nansum(bad) == 1000
    result = error_attribution(values, bad, task="regression", groups=groups)
    assert result.top_feature == "x3" and result.features[0]["share_difference"] > 0.2
    # |error| = 2|x3|: the high-error quarter is exactly the quarter with the largest |x3|.
    largest = np.abs(window.x3.to_numpy()) > np.quantile(np.abs(window.x3), 0.75)
    assert np.array_equal(bad.astype(bool), largest)


def test_odd_windows_are_said_not_guessed():
    values = pd.DataFrame({"a": [1.0] * 50, "b": [0.5] * 50})
    # No wrong answer at all, then too few.
    result = error_attribution(values, np.zeros(50), task="classification")
    assert result.features == [] and "0 attributed wrong rows" in result.note
    assert result.top_feature is None and result.metrics() == {}
    few = np.zeros(50)
    few[:5] = 1
    assert "5 attributed wrong rows" in error_attribution(values, few, task="x").note
    with pytest.raises(ValueError, match="one flag per row"):
        error_attribution(values, np.zeros(3), task="classification")
    # Unlabelled rows and unattributed rows are in neither group; text and inf count as missing.
    bad, _ = error_groups([1, None, 0, 1], [1, 1, 1, np.nan], "classification")
    assert np.isnan(bad[1]) and np.isnan(bad[3]) and bad[2] == 1.0
    odd = values.astype(object)
    odd.loc[0, "a"] = "n/a"
    odd.loc[1, "b"] = np.inf
    flags = np.r_[np.ones(25), np.zeros(25)]
    result = error_attribution(odd, flags, task="classification")
    assert result.n_bad == 25 and result.features[0]["bad_share"] == pytest.approx(2 / 3)
    # Labels 1 and predictions 1.0 are the same answer; a constant regression error has no tail.
    assert error_groups([1, 0], [1.0, 0.0], "classification")[0].tolist() == [0.0, 0.0]
    assert error_groups([1.0, 2.0], [0.0, 1.0], "regression")[0].tolist() == [0.0, 0.0]


def test_the_degradation_run_names_the_features_beside_the_worst_segments(tracking_uri, classifier):
    model, reference, profile = classifier
    with mlflow.start_run() as baseline_run:
        mo.log_baseline(
            reference.assign(
                label=(reference.x1 + reference.x2 > 0).astype(int),
                prediction=model.predict(reference),
            ),
            targets="label",
            predictions="prediction",
        )
    window = _flipped_window(model, 3000, seed=7)
    window["region"] = np.where(window.x2 > 0, "north", "south")
    with mlflow.start_run() as run:
        result = mo.evaluate_degradation(
            window,
            baseline_run.info.run_id,
            segment_by=["region"],
            min_segment_size=100,
            attribution_model=model,
        )
    assert result.metrics["degradation/degraded"] == 1.0
    path = MlflowClient().download_artifacts(run.info.run_id, "degradation_table.json")
    with open(path, encoding="utf-8") as handle:
        table = json.load(handle)
    errors = table["error_attribution"]
    assert errors["source"] == "computed" and errors["features"][0]["feature"] == "x2"
    assert table["segments"]  # the worst segments stay beside them
    page = result.artifacts["degradation_report"].content
    assert "Features behind the errors" in page and "Worst segments" in page
