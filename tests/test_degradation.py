"""Performance degradation: realised metrics against scikit-learn, estimation where its
assumptions hold, and the evaluator end to end through mlflow.models.evaluate."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import binary_frame, multiclass_frame, regression_frame, sigmoid
from mlflow.exceptions import MlflowException
from sklearn import metrics as skm

import mlflow_observe as mo
from mlflow_observe.core.performance.degradation import (
    DegradationError,
    compare_performance,
)
from mlflow_observe.core.performance.metrics import (
    classification_metrics,
    regression_metrics,
)


def _profile(frame):
    return mo.build_profile(frame, targets="label", predictions="prediction", probabilities=["p_1"])


def test_classification_metrics_equal_scikit_learn():
    frame = binary_frame(3000, seed=1)
    ours = classification_metrics(
        frame["label"],
        frame["prediction"],
        np.column_stack([1 - frame["p_1"], frame["p_1"]]),
        classes=[0, 1],
    )
    y, yhat, p = frame["label"], frame["prediction"], frame["p_1"]
    assert ours == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, yhat),
            "precision": skm.precision_score(y, yhat),
            "recall": skm.recall_score(y, yhat),
            "f1": skm.f1_score(y, yhat),
            "roc_auc": skm.roc_auc_score(y, p),
            "log_loss": skm.log_loss(y, np.c_[1 - p, p]),
        }
    )
    rng = np.random.default_rng(2)
    proba = rng.dirichlet([1, 1, 1], 2000)
    labels = np.array(["a", "b", "c"])[[rng.choice(3, p=row) for row in proba]]
    predicted = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    multi = classification_metrics(labels, predicted, proba, classes=["a", "b", "c"])
    assert multi == pytest.approx(
        {
            "accuracy": skm.accuracy_score(labels, predicted),
            "precision": skm.precision_score(labels, predicted, average="macro"),
            "recall": skm.recall_score(labels, predicted, average="macro"),
            "f1": skm.f1_score(labels, predicted, average="macro"),
            "roc_auc": skm.roc_auc_score(labels, proba, multi_class="ovr"),
            "log_loss": skm.log_loss(labels, proba),
        }
    )


def test_regression_metrics_equal_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.normal(5, 2, 1000)
    yhat = y + rng.normal(0, 0.5, 1000)
    ours = regression_metrics(y, yhat)
    assert ours == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y, yhat),
            "rmse": np.sqrt(skm.mean_squared_error(y, yhat)),
            "r2": skm.r2_score(y, yhat),
            "mape": skm.mean_absolute_percentage_error(y, yhat),
        }
    )
    with_zero = regression_metrics([0.0, 2.0], [1.0, 3.0])
    assert with_zero["mape"] == 0.5  # the zero target is left out, not divided by


def test_estimation_tracks_realised_under_covariate_shift():
    baseline = _profile(binary_frame(5000, seed=10))
    covered, gaps = 0, []
    for seed in range(20):
        window = binary_frame(4000, seed=100 + seed, shift=0.8)
        realised = compare_performance(
            baseline.performance,
            y_true=window["label"],
            y_pred=window["prediction"],
            proba=window["p_1"],
        )
        estimated = compare_performance(
            baseline.performance,
            y_pred=window["prediction"],
            proba=window["p_1"],
            random_state=seed,
        )
        for name in ("accuracy", "roc_auc"):
            truth, guess = realised.metric(name).value, estimated.metric(name)
            gaps.append(abs(truth - guess.value))
            covered += guess.band_low <= truth <= guess.band_high
    assert max(gaps) < 0.03
    assert covered >= 28  # of 40: the band covers the realised value in most windows


def test_concept_shift_is_caught_once_labels_arrive():
    baseline = _profile(binary_frame(5000, seed=10))
    window = binary_frame(4000, seed=7, flip_region=True)
    realised = compare_performance(
        baseline.performance,
        y_true=window["label"],
        y_pred=window["prediction"],
        proba=window["p_1"],
    )
    estimated = compare_performance(
        baseline.performance, y_pred=window["prediction"], proba=window["p_1"]
    )
    assert realised.degraded and realised.metric("accuracy").degraded
    assert not estimated.degraded  # the estimate cannot see a concept shift


def test_no_false_degradation_and_a_real_drop_is_flagged():
    baseline = _profile(binary_frame(5000, seed=10))
    for seed in range(20):
        calm = binary_frame(3000, seed=200 + seed)
        result = compare_performance(
            baseline.performance, y_true=calm["label"], y_pred=calm["prediction"], proba=calm["p_1"]
        )
        assert not result.degraded, [m for m in result.metric_results if m.degraded]
    noisy = binary_frame(3000, seed=300)
    rng = np.random.default_rng(0)
    x1 = noisy["x1"] + rng.normal(0, 1.5, len(noisy))  # the model now sees a noisy feature
    noisy["p_1"] = sigmoid(2 * x1 - noisy["x2"])
    noisy["prediction"] = (noisy["p_1"] > 0.5).astype(int)
    dropped = compare_performance(
        baseline.performance, y_true=noisy["label"], y_pred=noisy["prediction"], proba=noisy["p_1"]
    )
    assert dropped.degraded and dropped.metric("roc_auc").degraded


def test_bad_input_findings_and_errors():
    baseline = _profile(binary_frame(3000, seed=10))
    window = binary_frame(500, seed=4)
    window.loc[:10, "label"] = 2
    result = compare_performance(
        baseline.performance,
        y_true=window["label"],
        y_pred=window["prediction"],
        proba=window["p_1"],
    )
    assert any("never saw: [2]" in f for f in result.findings)
    single = window.assign(label=1)
    one_class = compare_performance(
        baseline.performance,
        y_true=single["label"],
        y_pred=single["prediction"],
        proba=single["p_1"],
    )
    assert "roc_auc" not in [m.metric for m in one_class.metric_results]
    assert any("ROC AUC is undefined" in f for f in one_class.findings)
    without_labels = mo.build_profile(window.drop(columns=["label"]))
    with pytest.raises(DegradationError, match="recorded without labels"):
        compare_performance(without_labels.performance, y_pred=window["prediction"])
    with pytest.raises(DegradationError, match="no probability columns"):
        compare_performance(baseline.performance, y_pred=window["prediction"])


@pytest.mark.slow
def test_evaluator_end_to_end_with_and_without_labels(tracking_uri):
    with mlflow.start_run() as training:
        mo.log_baseline(
            binary_frame(4000, seed=10),
            targets="label",
            predictions="prediction",
            probabilities=["p_1"],
        )
    window = binary_frame(3000, seed=5, flip_region=True)
    with mlflow.start_run() as run:
        realised = mlflow.models.evaluate(
            data=window,
            predictions="prediction",
            targets="label",
            model_type="classifier",
            evaluators="degradation",
            evaluator_config={"baseline": training.info.run_id},
        )
    assert realised.metrics["degradation/degraded"] == 1.0
    assert realised.metrics["degradation/accuracy"] == pytest.approx(
        skm.accuracy_score(window["label"], window["prediction"])
    )
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.tags["observe.degradation.status"] == "degraded"
    assert {"degradation_table.json", "degradation_report.html", "degradation_plot.png"} <= {
        a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)
    }
    estimated = mo.evaluate_degradation(
        window.drop(columns=["label"]), baseline=training.info.run_id
    )
    assert "degradation/estimated_accuracy" in estimated.metrics
    assert estimated.metrics["degradation/degraded"] == 0.0
    assert all(np.isfinite(v) for v in estimated.metrics.values())
    assert "no concept drift" in estimated.artifacts["degradation_report"].content
    with pytest.raises(MlflowException, match="recorded without labels"):
        with mlflow.start_run() as bare:
            mo.log_baseline(window.drop(columns=["label"]))
        mo.evaluate_degradation(window, baseline=bare.info.run_id)


def test_segments_find_the_region_that_got_worse(tracking_uri):
    baseline = binary_frame(5000, seed=10)
    window = binary_frame(6000, seed=11)
    rng = np.random.default_rng(1)
    window["country"] = rng.choice(
        ["fr", "de", "es", "tiny"], len(window), p=[0.45, 0.3, 0.24, 0.01]
    )
    broken = window["country"] == "de"
    window.loc[broken, "label"] = 1 - window.loc[broken, "label"]  # the model fails in "de"
    with mlflow.start_run() as training:
        mo.log_baseline(baseline, targets="label", predictions="prediction", probabilities=["p_1"])
    result = mo.evaluate_degradation(
        window, baseline=training.info.run_id, segment_by=["country"], min_segment_size=200
    )
    table = result.artifacts["degradation_table"].content
    local = mlflow.artifacts.download_artifacts(
        run_id=result._run_id, artifact_path="degradation_table.json"
    )
    import json
    from pathlib import Path

    segments = json.loads(Path(local).read_text())["segments"]
    assert segments[0]["value"] == "de" and segments[0]["degraded"]
    assert {s["value"]: s["degraded"] for s in segments} == {
        "de": True,
        "fr": False,
        "es": False,
    }  # "tiny" pooled into (other), too small: skipped
    assert result.metrics["degradation/n_degraded_segments"] == 1.0
    assert "Worst segments" in result.artifacts["degradation_report"].content
    assert table  # the overall metrics are still there


def test_direct_loss_estimation_for_regressors(tracking_uri):
    with mlflow.start_run() as training:
        mo.log_baseline(regression_frame(5000, seed=1), targets="target", predictions="prediction")
    profile = mo.load_baseline(training.info.run_id)
    assert profile.performance.task == "regression"
    assert profile.performance.loss_features == ("x1", "x2")
    for seed, scale in ((2, 1.0), (3, 1.3)):  # calm, then larger errors from a wider x2
        window = regression_frame(4000, seed=seed, noise_scale=scale)
        realised = regression_metrics(window["target"], window["prediction"])
        estimated = compare_performance(
            profile.performance, y_pred=window["prediction"], features=window
        )
        assert abs(estimated.metric("mae").value - realised["mae"]) < 0.1 * realised["mae"]
    assert estimated.degraded and estimated.metric("mae").degraded  # the wider window
    result = mo.evaluate_degradation(window.drop(columns=["target"]), baseline=training.info.run_id)
    assert result.metrics["degradation/estimated_mae"] == pytest.approx(
        estimated.metric("mae").value
    )


def test_direct_loss_estimation_tracks_a_known_error_shift():
    """The errors grow with |x2|: a wider x2 (up to +80%) or a window of large |x2| only
    moves MAE and RMSE, and the estimate follows within 5% (measured: at most 3.4%)."""
    reference = regression_frame(5000, seed=1)
    performance = mo.build_profile(
        reference, targets="target", predictions="prediction"
    ).performance
    large = regression_frame(20_000, seed=9)
    windows = [
        regression_frame(4000, seed=2 + i, noise_scale=s) for i, s in enumerate([1, 1.3, 1.8])
    ]
    windows.append(large[large["x2"].abs() > 0.7].head(4000))  # covariate shift, same range
    estimates = []
    for window in windows:
        realised = regression_metrics(window["target"], window["prediction"])
        estimated = compare_performance(performance, y_pred=window["prediction"], features=window)
        for name in ("mae", "rmse"):
            assert estimated.metric(name).value == pytest.approx(realised[name], rel=0.05)
        estimates.append(estimated.metric("mae").value)
    assert estimates[0] < estimates[1] < estimates[2]  # the shift, in order
    assert estimates[1] > 1.2 * performance.metrics["mae"]


def test_exported_loss_models_predict_as_scikit_learn():
    """The trees stored in the profile give scikit-learn's own predictions, row by row, on
    whole-number features (values on both sides of every split), NaN and values outside
    the reference's range."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from mlflow_observe.core.performance.dle import (
        LOSS_MODEL,
        estimate_regression_performance,
        fit_loss_models,
    )

    rng = np.random.default_rng(3)
    features = np.column_stack([rng.integers(0, 5, 600), rng.normal(size=600)]).astype(float)
    features[::37, 1] = np.nan
    y_pred = 0.5 * features[:, 0]
    y_true = y_pred + rng.normal(0, 1 + features[:, 0], 600)
    models = fit_loss_models(features, y_true, y_pred)
    inputs = np.nan_to_num(np.column_stack([features, y_pred]))
    error = y_true - y_pred
    window = np.vstack([features[:40], [[9.0, 8.0], [-3.0, np.nan]]])
    window_inputs = np.nan_to_num(np.column_stack([window, 0.5 * window[:, 0]]))
    for name, target in (("absolute", np.abs(error)), ("squared", error**2)):
        with threadpool_limits(limits=1, user_api="openmp"):  # as the package fits them
            model = HistGradientBoostingRegressor(**LOSS_MODEL, random_state=0)
            model.fit(inputs, target)
        expected = np.clip(model.predict(window_inputs), 0, None)
        metric = "mae" if name == "absolute" else "rmse"
        got = [
            estimate_regression_performance(models, row[None, :], [y], n_boot=1)[metric]["value"]
            for row, y in zip(window, 0.5 * window[:, 0], strict=True)
        ]
        if metric == "rmse":
            expected = np.sqrt(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_loss_models_and_the_calibration_check_on_degenerate_inputs():
    """One row, constant features, infinite and missing values: the loss models answer
    what the rows say (no split to learn: the mean error), and the calibration check
    answers without crashing."""
    from mlflow_observe.core.performance.cbpe import calibration_helps
    from mlflow_observe.core.performance.dle import (
        estimate_regression_performance,
        fit_loss_models,
    )

    one = fit_loss_models(np.zeros((1, 2)), [3.0], [1.0])
    single = estimate_regression_performance(one, np.zeros((4, 2)), np.ones(4))
    assert single["mae"]["value"] == pytest.approx(2.0)
    assert single["rmse"]["value"] == pytest.approx(2.0)
    y_true = np.arange(30, dtype=float)
    flat = fit_loss_models(np.ones((30, 2)), y_true, np.zeros(30))
    estimate = estimate_regression_performance(flat, np.ones((5, 2)), np.zeros(5))
    assert estimate["mae"]["value"] == pytest.approx(y_true.mean())
    assert estimate["rmse"]["value"] == pytest.approx(np.sqrt(np.mean(y_true**2)))
    rng = np.random.default_rng(0)
    odd = rng.normal(size=(100, 2))
    odd[0, 0], odd[1, 1], odd[2, 0] = np.inf, np.nan, -np.inf
    models = fit_loss_models(odd, rng.normal(size=100), np.zeros(100))
    values = estimate_regression_performance(models, odd[:5], np.zeros(5))
    assert all(np.isfinite(v["value"]) and v["value"] >= 0 for v in values.values())

    scores = rng.random(200)
    scores[3] = np.nan
    assert calibration_helps(scores, scores > 0.5) is False  # undecidable: kept as they are
    # A constant 0.5 where a third are positive: the curve moves it to 1/3.
    assert calibration_helps(np.full(300, 0.5), np.arange(300) % 3 == 0) is True


def test_multiclass_estimation_tracks_realised_under_covariate_shift():
    baseline = mo.build_profile(
        multiclass_frame(6000, seed=1),
        targets="label",
        predictions="prediction",
        probabilities=["p_a", "p_b", "p_c"],
    )
    for seed in range(3):
        window = multiclass_frame(4000, seed=10 + seed, shift=0.5)
        proba = window[["p_a", "p_b", "p_c"]]
        realised = compare_performance(
            baseline.performance, y_true=window["label"], y_pred=window["prediction"], proba=proba
        )
        estimated = compare_performance(
            baseline.performance, y_pred=window["prediction"], proba=proba
        )
        for name in ("accuracy", "f1", "roc_auc"):
            assert abs(realised.metric(name).value - estimated.metric(name).value) < 0.03


def test_calibration_is_kept_where_it_helps_on_held_out_rows():
    """Scores that overstate the positive class (the square root of a calibrated one) are
    always calibrated; a small reference of calibrated scores mostly keeps them as they
    are (an isotonic curve on 250 rows is a coarse staircase)."""
    from mlflow_observe.core.performance.cbpe import calibration_helps

    identity = ((0.0, 1.0), (0.0, 1.0))
    kept = 0
    for seed in range(10):
        frame = binary_frame(250, seed=seed)
        p, label = frame["p_1"].to_numpy(), frame["label"].to_numpy() == 1
        assert calibration_helps(np.sqrt(p), label, random_state=seed)
        kept += not calibration_helps(p, label, random_state=seed)
    assert kept >= 6  # measured: 8 of 10
    assert not calibration_helps([0.2, 0.9, 0.4], [False, True, False])  # too few of a class
    assert not calibration_helps(np.linspace(0, 1, 50), np.ones(50, dtype=bool))  # one class

    reference = binary_frame(250, seed=1)
    performance = _profile(reference).performance
    assert performance.calibration == (identity,)
    window = binary_frame(2000, seed=5, shift=0.5)
    estimated = compare_performance(performance, y_pred=window["prediction"], proba=window[["p_1"]])
    p, chosen = window["p_1"].to_numpy(), window["prediction"].to_numpy() == 1
    # Raw probabilities: the expected precision is their mean over the predicted positives.
    assert estimated.metric("precision").value == pytest.approx(p[chosen].mean())
    biased = reference.assign(p_1=np.sqrt(reference["p_1"]))
    assert _profile(biased).performance.calibration != (identity,)


def _expected_auc_by_pairs(p, scores):
    """Sum over ordered pairs of rows of P(first positive) P(second negative), counted 1
    when the first scores higher and 1/2 on a tie (a row with itself too), over the
    expected numbers of positives and negatives."""
    p, scores = np.asarray(p), np.asarray(scores)
    higher = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
    return float((p[:, None] * (1 - p[None, :]) * higher).sum() / (p.sum() * (1 - p).sum()))


def test_expected_roc_auc_ranks_rows_by_the_models_scores():
    """The expected ROC AUC ranks rows by the model's scores, as the realised one does,
    against the pairwise definition. Binary: a non-decreasing calibration only ties rows,
    and the order within a tie of equal probabilities changes nothing. Multiclass: the
    renormalised probabilities can reorder a class's rows, and the ranking matters."""
    from mlflow_observe.core.performance.cbpe import (
        estimate_binary_performance,
        estimate_multiclass_performance,
    )

    rng = np.random.default_rng(2)
    scores = np.round(rng.random(300), 2)  # some ties
    calibrated = np.round(scores * 4) / 4  # a staircase of five values
    chosen = scores > 0.5
    got = estimate_binary_performance(calibrated, chosen, scores=scores)["roc_auc"]["value"]
    assert got == pytest.approx(_expected_auc_by_pairs(calibrated, scores), abs=1e-12)
    alone = estimate_binary_performance(calibrated, chosen)["roc_auc"]["value"]
    assert alone == pytest.approx(got, abs=1e-12)

    raw = rng.dirichlet(np.ones(3), 300)
    staircase = np.round(raw * 4) / 4 + 1e-3
    staircase /= staircase.sum(axis=1, keepdims=True)
    ranked = estimate_multiclass_performance(staircase, raw.argmax(1), scores=raw)
    macro = np.mean([_expected_auc_by_pairs(staircase[:, c], raw[:, c]) for c in range(3)])
    assert ranked["roc_auc"]["value"] == pytest.approx(macro, abs=1e-12)
    by_itself = estimate_multiclass_performance(staircase, raw.argmax(1))["roc_auc"]["value"]
    assert abs(by_itself - macro) > 1e-3


# One 0/1 column in every dtype that denotes the same two classes.
DTYPES = {
    "int": lambda s: s.astype(np.int64),
    "float": lambda s: s.astype(float),
    "bool": lambda s: s.astype(bool),
    "str": lambda s: s.astype(str),
    "Int64": lambda s: s.astype("Int64"),
    "boolean": lambda s: s.astype(bool).astype("boolean"),
    "string": lambda s: s.astype(str).astype("string"),
    "category": lambda s: s.astype("category"),
    "bool_text": lambda s: s.astype(bool).astype(str),
}
PAIRS = sorted(
    {(d, "int") for d in DTYPES} | {("int", d) for d in DTYPES} | {(d, d) for d in DTYPES}
)


def _as_dtypes(frame, label_dtype, prediction_dtype):
    return frame.assign(
        label=DTYPES[label_dtype](frame["label"]),
        prediction=DTYPES[prediction_dtype](frame["prediction"]),
    )


@pytest.fixture(scope="module")
def int_int_answer():
    reference, window = binary_frame(1500, seed=10), binary_frame(800, seed=11, shift=0.3)
    profile = _profile(reference)
    return reference, window, profile, _answers(profile, window)


def _answers(profile, window):
    from mlflow_observe.core.performance.streamed import StreamedPerformance

    realised = compare_performance(
        profile.performance,
        y_true=window["label"],
        y_pred=window["prediction"],
        proba=window["p_1"],
    )
    estimated = compare_performance(
        profile.performance, y_pred=window["prediction"], proba=window["p_1"]
    )
    streamed = StreamedPerformance(profile.performance, predictions="prediction", targets="label")
    unlabelled = StreamedPerformance(profile.performance, predictions="prediction")
    for start in range(0, len(window), 300):
        streamed.update(window.iloc[start : start + 300])
        unlabelled.update(window.drop(columns=["label"]).iloc[start : start + 300])
    return {
        "baseline": profile.performance.metrics,
        "intervals": profile.performance.intervals,
        "realised": realised.metrics(),
        "estimated": estimated.metrics(),
        "streamed": streamed.result().metrics(),
        "streamed_estimated": unlabelled.result().metrics(),
        "findings": realised.findings,
    }


@pytest.mark.parametrize(("label_dtype", "prediction_dtype"), PAIRS)
def test_every_dtype_pair_gives_the_int_int_answer(int_int_answer, label_dtype, prediction_dtype):
    reference, window, _, expected = int_int_answer
    profile = _profile(_as_dtypes(reference, label_dtype, prediction_dtype))
    assert profile.performance.task == "classification"
    assert profile.performance.classes == (0, 1)
    # The window in the other orientation: the baseline's dtypes need not be the window's.
    got = _answers(profile, _as_dtypes(window, prediction_dtype, label_dtype))
    assert got == expected
    assert expected["estimated"]["degradation/estimated_accuracy"] == pytest.approx(
        expected["realised"]["degradation/accuracy"], abs=0.03
    )


@pytest.mark.parametrize("dtype", ["str", "category", "string", "object"])
def test_text_classes_in_any_dtype_give_the_same_answer(dtype):
    names = np.array(["no", "yes"])
    reference, window = binary_frame(1500, seed=10), binary_frame(800, seed=11)

    def as_text(frame, kind):
        label, prediction = names[frame["label"]], names[frame["prediction"]]
        cast = {"str": str, "category": "category", "string": "string", "object": object}[kind]
        return frame.assign(
            label=pd.Series(label).astype(cast), prediction=pd.Series(prediction).astype(cast)
        )

    expected = _answers(_profile(as_text(reference, "str")), as_text(window, "str"))
    profile = _profile(as_text(reference, dtype))
    assert profile.performance.classes == ("no", "yes")
    assert _answers(profile, as_text(window, "str" if dtype != "str" else "category")) == expected


def test_float_labels_with_probabilities_are_binary_classification():
    """The issue's case: 0.0/1.0 labels, int predictions, a probability column."""
    reference, window = binary_frame(3000, seed=10), binary_frame(1000, seed=12)
    floats = reference.assign(label=reference["label"].astype(float))
    for task in (None, "classification"):
        profile = mo.build_profile(
            floats, targets="label", predictions="prediction", probabilities=["p_1"], task=task
        )
        assert profile.performance.task == "classification"
        estimated = compare_performance(
            profile.performance, y_pred=window["prediction"], proba=window["p_1"]
        )
        truth = skm.accuracy_score(window["label"], window["prediction"])
        assert estimated.metric("accuracy").value == pytest.approx(truth, abs=0.03)
        assert estimated.metric("precision").value > 0.7
        assert not estimated.degraded
    # Without probabilities, float 0/1 labels whose predictions are among them: classification.
    bare = mo.build_profile(floats, targets="label", predictions="prediction")
    assert bare.performance.task == "classification"
    # A float target with continuous predictions stays a regression.
    regression = mo.build_profile(
        floats.assign(prediction=floats["p_1"]), targets="label", predictions="prediction"
    )
    assert regression.performance.task == "regression"


def test_labels_and_predictions_that_cannot_be_the_same_classes_are_refused():
    frame = binary_frame(500, seed=1)
    frame["prediction"] = np.where(frame["prediction"] == 1, "yes", "no")
    with pytest.raises(mo.ProfileError) as caught:
        mo.build_profile(frame, targets="label", predictions="prediction", probabilities=["p_1"])
    message = str(caught.value)
    assert "'label' has [0, 1]" in message and "'prediction' has ['no', 'yes']" in message


def test_a_moved_label_distribution_is_reported():
    baseline = _profile(binary_frame(5000, seed=10))
    calm = binary_frame(3000, seed=20)
    calm_result = compare_performance(
        baseline.performance, y_true=calm["label"], y_pred=calm["prediction"], proba=calm["p_1"]
    )
    assert not any("label distribution moved" in f for f in calm_result.findings)
    shifted = binary_frame(3000, seed=21, shift=0.8)  # more positives
    result = compare_performance(
        baseline.performance,
        y_true=shifted["label"],
        y_pred=shifted["prediction"],
        proba=shifted["p_1"],
    )
    assert any("label distribution moved" in f for f in result.findings)


def test_performance_plot_when_a_value_lies_outside_its_interval():
    from mlflow_observe.core.performance.degradation import (
        DegradationResult,
        MetricDegradation,
    )
    from mlflow_observe.report.plots import figure_to_png, plot_performance

    # A perfect window: the bootstrap interval [0.99, 0.998] does not contain 1.0.
    metric = MetricDegradation(
        "accuracy", "estimated", 0.995, 0.99, 0.998, 1.0, 0.999, 0.9995, 0.005, 0.005, 0.01, False
    )
    png = figure_to_png(
        plot_performance(DegradationResult("classification", "estimated", [metric], False, 240, []))
    )
    assert png[:4] == b"\x89PNG"


def test_results_offer_metrics_and_records_and_the_old_name_warns():
    from mlflow_observe.core.performance.degradation import compare_segments
    from mlflow_observe.core.protocol import ResultPart

    baseline = _profile(binary_frame(3000, seed=11))
    window = binary_frame(2000, seed=12)
    window.loc[window.index[:1000], "prediction"] = 1 - window["prediction"].iloc[:1000]
    result = compare_performance(
        baseline.performance,
        y_true=window["label"],
        y_pred=window["prediction"],
        proba=window["p_1"],
    )
    assert isinstance(result, ResultPart)
    metrics = result.metrics()
    accuracy = skm.accuracy_score(window["label"], window["prediction"])
    assert metrics["degradation/accuracy"] == pytest.approx(accuracy)
    assert metrics["degradation/degraded"] == 1.0
    with pytest.warns(DeprecationWarning, match=r"use DegradationResult.metrics\(\)"):
        assert result.mlflow_metrics() == metrics
    assert [r["key"] for r in result.to_records()] == [m.key for m in result.metric_results]
    # the first half (flipped predictions) against the second: each segment's own metrics
    half = pd.DataFrame({"half": np.where(np.arange(2000) < 1000, "flipped", "kept")})
    segments = compare_segments(
        baseline.performance,
        half,
        y_true=window["label"],
        y_pred=window["prediction"],
        proba=window["p_1"],
    )
    flipped = next(s for s in segments if s.value == "flipped")
    assert isinstance(flipped, ResultPart)
    rows = window.iloc[:1000]
    alone = compare_performance(
        baseline.performance, y_true=rows["label"], y_pred=rows["prediction"], proba=rows["p_1"]
    )
    assert flipped.metrics() == alone.metrics()
    (record,) = flipped.to_records()
    assert record["degraded"] and record["n_rows"] == 1000
    assert record["metrics"] == alone.to_records()


# -- production-shaped windows ------------------------------------------------------------------


def _strict_json(path):
    import json

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    with open(path) as stream:
        return json.load(stream, parse_constant=refuse)


def _streamed(performance, window, batch=250, targets="label"):
    from mlflow_observe.core.performance.streamed import StreamedPerformance

    counted = StreamedPerformance(performance, predictions="prediction", targets=targets)
    for start in range(0, len(window), batch):
        counted.update(window.iloc[start : start + batch])
    return counted.result()


def test_rows_without_labels_are_judged_as_unlabelled(tracking_uri):
    reference, window = binary_frame(4000, seed=10), binary_frame(2000, seed=13)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    profile = _profile(reference)
    arrived = np.random.default_rng(3).random(len(window)) < 0.75
    partial = window.assign(label=window["label"].where(arrived))  # float, NaN: not arrived
    truth = skm.accuracy_score(window["label"][arrived], window["prediction"][arrived])
    unlabelled_only = compare_performance(
        profile.performance,
        y_pred=window["prediction"][~arrived],
        proba=window["p_1"][~arrived],
    )
    in_memory = compare_performance(
        profile.performance,
        y_true=partial["label"],
        y_pred=partial["prediction"],
        proba=partial["p_1"],
    )
    streamed = _streamed(profile.performance, partial)
    logged = mo.evaluate_degradation(partial, baseline=training.info.run_id)
    for result in (in_memory.metrics(), streamed.metrics(), logged.metrics):
        assert result["degradation/accuracy"] == pytest.approx(truth, abs=1e-12)
        assert result["degradation/n_labelled"] == arrived.sum()
        assert result["degradation/n_unlabelled"] == (~arrived).sum()
        assert result["degradation/degraded"] == 0.0
    assert in_memory.metric("accuracy", "estimated").value == pytest.approx(
        unlabelled_only.metric("accuracy").value
    )
    assert streamed.metric("accuracy", "estimated").value == pytest.approx(
        unlabelled_only.metric("accuracy").value, abs=1e-9
    )
    assert {(m.kind, m.n_rows) for m in in_memory.metric_results} == {
        ("realised", arrived.sum()),
        ("estimated", (~arrived).sum()),
    }
    assert any("have no label yet" in f for f in in_memory.findings)
    local = mlflow.artifacts.download_artifacts(
        run_id=logged._run_id, artifact_path="degradation_table.json"
    )
    kinds = {(r["kind"], r["n_rows"]) for r in _strict_json(local)["metrics"]}
    assert kinds == {("realised", arrived.sum()), ("estimated", (~arrived).sum())}


def test_the_cli_judges_empty_labels_as_unlabelled(tracking_uri, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys

    reference, window = binary_frame(4000, seed=10), binary_frame(2000, seed=14)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    arrived = np.arange(len(window)) % 4 != 0  # 25% empty
    window = window.assign(label=window["label"].astype("Int64").where(arrived))
    path = tmp_path / "window.csv"
    window.to_csv(path, index=False)  # empty cells where no label arrived
    done = subprocess.run(
        [shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))]
        + ["degradation", "-b", training.info.run_id]
        + ["-d", str(path), "--output", "json", "--fail-on-degradation"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    truth = skm.accuracy_score(window["label"][arrived].astype(int), window["prediction"][arrived])
    assert metrics["degradation/accuracy"] == pytest.approx(truth)
    assert metrics["degradation/n_unlabelled"] == 500


def test_undefined_metrics_are_left_out_and_never_decide():
    baseline = _profile(binary_frame(3000, seed=10))
    negatives = pd.DataFrame({"label": np.zeros(300, int), "prediction": np.zeros(300, int)})
    negatives["p_1"] = np.random.default_rng(0).uniform(0.0, 0.3, 300)
    results = [
        compare_performance(
            baseline.performance,
            y_true=negatives["label"],
            y_pred=negatives["prediction"],
            proba=negatives["p_1"],
        ),
        _streamed(baseline.performance, negatives, batch=100),
    ]
    for result in results:
        metrics = result.metrics()
        assert metrics["degradation/accuracy"] == 1.0
        assert not any(
            k.startswith(("degradation/precision", "degradation/recall")) for k in metrics
        )
        assert not any(k.startswith(("degradation/f1", "degradation/roc_auc")) for k in metrics)
        assert metrics["degradation/degraded"] == 0.0
        assert any(
            "precision: left out, undefined" in f and "predicted positive" in f
            for f in result.findings
        )
        assert any("recall: left out, undefined" in f for f in result.findings)
    # No row predicted positive, some actually positive: recall and F1 are a true 0.
    missed = negatives.assign(label=np.r_[np.ones(30, int), np.zeros(270, int)])
    result = compare_performance(
        baseline.performance, y_true=missed["label"], y_pred=missed["prediction"]
    )
    assert result.metric("recall").value == 0.0 and result.metric("recall").degraded
    assert "precision" not in [m.metric for m in result.metric_results]


def test_invalid_probabilities_are_an_integrity_finding_not_a_crash(tracking_uri):
    reference, window = binary_frame(4000, seed=10), binary_frame(1000, seed=15)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    profile = _profile(reference)
    broken = window.copy()
    broken.loc[[3, 50, 700], "p_1"] = [np.nan, 5.0, np.inf]
    clean = window.drop(index=[3, 50, 700])
    for labels in (True, False):
        drop = [] if labels else ["label"]
        got = compare_performance(
            profile.performance,
            y_true=broken["label"] if labels else None,
            y_pred=broken["prediction"],
            proba=broken["p_1"],
        )
        streamed = _streamed(profile.performance, broken.drop(columns=drop))
        assert got.n_invalid_probabilities == streamed.n_invalid_probabilities == 3
        assert any("3 of 1000 rows have probabilities" in f for f in got.findings)
        assert not got.degraded and not streamed.degraded
        assert all(np.isfinite(v) for v in got.metrics().values())
        if labels:
            expected = classification_metrics(
                clean["label"],
                clean["prediction"],
                np.column_stack([1 - clean["p_1"], clean["p_1"]]),
                classes=[0, 1],
            )
            assert got.metric("roc_auc").value == pytest.approx(expected["roc_auc"])
            assert got.metric("log_loss").value == pytest.approx(expected["log_loss"])
            assert got.metric("accuracy").value == skm.accuracy_score(
                broken["label"], broken["prediction"]
            )  # labels and predictions are fine: every row counts
        else:
            reference_estimate = compare_performance(
                profile.performance, y_pred=clean["prediction"], proba=clean["p_1"]
            )
            assert got.metric("accuracy").value == reference_estimate.metric("accuracy").value
            assert got.metric("accuracy").n_rows == 997
        logged = mo.evaluate_degradation(broken.drop(columns=drop), baseline=training.info.run_id)
        assert logged.metrics["degradation/n_invalid_probabilities"] == 3
        local = mlflow.artifacts.download_artifacts(
            run_id=logged._run_id, artifact_path="degradation_table.json"
        )
        assert _strict_json(local)["metrics"]  # valid JSON, no NaN


def test_the_evaluator_gives_the_int_answer_for_other_dtypes(tracking_uri):
    reference, window = binary_frame(3000, seed=10), binary_frame(1500, seed=16, shift=0.2)
    answers = []
    for label_dtype, prediction_dtype in (("int", "int"), ("float", "str"), ("boolean", "bool")):
        with mlflow.start_run() as training:
            mo.log_baseline(
                _as_dtypes(reference, label_dtype, prediction_dtype),
                targets="label",
                predictions="prediction",
                probabilities=["p_1"],
            )
        shown = _as_dtypes(window, prediction_dtype, label_dtype)
        with mlflow.start_run():
            realised = mlflow.models.evaluate(
                data=shown,
                predictions="prediction",
                targets="label",
                model_type="classifier",
                evaluators="degradation",
                evaluator_config={"baseline": training.info.run_id},
            )
        estimated = mo.evaluate_degradation(
            shown.drop(columns=["label"]), baseline=training.info.run_id
        )
        answers.append((realised.metrics, estimated.metrics))
    assert answers[1] == answers[0] and answers[2] == answers[0]
    assert answers[0][1]["degradation/degraded"] == 0.0
