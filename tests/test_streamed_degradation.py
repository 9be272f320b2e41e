"""Degradation counted batch by batch equals degradation in memory: counts exactly,
ROC AUC to its binning bound, estimation bands to their sampling."""

import numpy as np
import pandas as pd
import pytest
from helpers import binary_frame, multiclass_frame, regression_frame

import mlflow_observe as mo
from mlflow_observe.core.performance.degradation import compare_performance
from mlflow_observe.core.performance.streamed import StreamedPerformance

# Scores falling in one of 10,000 bins count as ties: a bounded, tiny error on ROC AUC.
AUC_TOLERANCE = 1e-3
EXACT = {"accuracy", "precision", "recall", "f1"}


def _streamed(
    performance, frame, batch_size, *, predictions="prediction", targets="label", sample_size=20_000
):
    counted = StreamedPerformance(
        performance, predictions=predictions, targets=targets, sample_size=sample_size
    )
    for start in range(0, len(frame), batch_size):
        counted.update(frame.iloc[start : start + batch_size])
    return counted.result()


def _in_memory(performance, frame, *, probabilities, targets="label", features=None):
    return compare_performance(
        performance,
        y_true=None if targets is None else frame[targets].to_numpy(),
        y_pred=frame["prediction"].to_numpy(),
        proba=frame[probabilities].to_numpy(dtype=float) if probabilities else None,
        features=features,
    )


def _assert_same(streamed, memory, *, band_tolerance=None):
    assert streamed.kind == memory.kind and streamed.n_rows == memory.n_rows
    assert [m.metric for m in streamed.metric_results] == [m.metric for m in memory.metric_results]
    assert streamed.findings == memory.findings
    assert streamed.degraded == memory.degraded
    for s, m in zip(streamed.metric_results, memory.metric_results, strict=True):
        if s.metric in EXACT and s.kind == "realised":
            assert s.value == pytest.approx(m.value, rel=1e-12, abs=1e-12), s.metric
        elif s.metric == "roc_auc":
            assert s.value == pytest.approx(m.value, abs=AUC_TOLERANCE), s.metric
        else:
            assert s.value == pytest.approx(m.value, rel=1e-9, abs=1e-9), s.metric
        if band_tolerance is not None and m.band_low is not None:
            assert s.band_low == pytest.approx(m.band_low, abs=band_tolerance), s.metric
            assert s.band_high == pytest.approx(m.band_high, abs=band_tolerance), s.metric


# One row at a time is the slow end of the range (seconds per thousand rows).
@pytest.mark.parametrize("batch_size", [pytest.param(1, marks=pytest.mark.slow), 7, 256, 10_000])
def test_binary_realised_and_estimated(batch_size):
    reference, window = binary_frame(3000, seed=1), binary_frame(1500, seed=2, flip_region=True)
    performance = mo.build_profile(
        reference, targets="label", predictions="prediction", probabilities=["p_1"]
    ).performance
    realised = _streamed(performance, window, batch_size)
    _assert_same(realised, _in_memory(performance, window, probabilities=["p_1"]))
    assert realised.degraded
    unlabelled = window.drop(columns=["label"])
    estimated = _streamed(performance, unlabelled, batch_size, targets=None)
    memory = _in_memory(performance, unlabelled, probabilities=["p_1"], targets=None)
    # The whole window fits in the sample: the bands are the in-memory ones.
    _assert_same(estimated, memory, band_tolerance=AUC_TOLERANCE)


@pytest.mark.parametrize("batch_size", [pytest.param(1, marks=pytest.mark.slow), 13, 4096])
def test_multiclass_with_unseen_labels(batch_size):
    reference, window = multiclass_frame(3000, seed=1), multiclass_frame(1200, seed=2, shift=0.4)
    window.loc[window.index[:5], "label"] = "z"  # a class the baseline never saw
    names = ["p_a", "p_b", "p_c"]
    performance = mo.build_profile(
        reference, targets="label", predictions="prediction", probabilities=names
    ).performance
    streamed = _streamed(performance, window, batch_size)
    memory = _in_memory(performance, window, probabilities=names)
    _assert_same(streamed, memory)
    assert any("never saw" in f for f in streamed.findings)
    assert "log_loss" not in {
        m.metric for m in streamed.metric_results
    }  # as in memory: unseen labels
    unlabelled = window.drop(columns=["label"])
    _assert_same(
        _streamed(performance, unlabelled, batch_size, targets=None),
        _in_memory(performance, unlabelled, probabilities=names, targets=None),
        band_tolerance=AUC_TOLERANCE,
    )


@pytest.mark.parametrize("batch_size", [1, 100, 5000])
def test_regression_realised_and_estimated(batch_size):
    reference, window = (
        regression_frame(3000, seed=1),
        regression_frame(1000, seed=2, noise_scale=1.3),
    )
    performance = mo.build_profile(
        reference, targets="target", predictions="prediction"
    ).performance
    _assert_same(
        _streamed(performance, window, batch_size, targets="target"),
        _in_memory(performance, window, probabilities=None, targets="target"),
    )
    unlabelled = window.drop(columns=["target"])
    _assert_same(
        _streamed(performance, unlabelled, batch_size, targets=None),
        _in_memory(performance, unlabelled, probabilities=None, targets=None, features=unlabelled),
        band_tolerance=1e-9,
    )


def test_a_window_larger_than_the_sample():
    """Counts stay exact when the sample holds a tenth of the window; the bands come
    from the sample, narrowed to the window, and stay close to the in-memory ones."""
    reference, window = binary_frame(4000, seed=1), binary_frame(20_000, seed=3)
    performance = mo.build_profile(
        reference, targets="label", predictions="prediction", probabilities=["p_1"]
    ).performance
    _assert_same(
        _streamed(performance, window, 999, sample_size=2000),
        _in_memory(performance, window, probabilities=["p_1"]),
    )
    unlabelled = window.drop(columns=["label"])
    streamed = _streamed(performance, unlabelled, 999, targets=None, sample_size=2000)
    memory = _in_memory(performance, unlabelled, probabilities=["p_1"], targets=None)
    _assert_same(streamed, memory)  # estimated values are exact sums
    for s, m in zip(streamed.metric_results, memory.metric_results, strict=True):
        width, memory_width = s.band_high - s.band_low, m.band_high - m.band_low
        assert width == pytest.approx(memory_width, rel=0.35), s.metric


def test_labels_that_never_arrive_mean_estimation():
    reference, window = binary_frame(3000, seed=1), binary_frame(800, seed=2)
    window["label"] = np.nan
    performance = mo.build_profile(
        reference, targets="label", predictions="prediction", probabilities=["p_1"]
    ).performance
    assert _streamed(performance, window, 100).kind == "estimated"


def test_memory_is_bounded_by_the_sample():
    reference = binary_frame(2000, seed=1)
    performance = mo.build_profile(
        reference, targets="label", predictions="prediction", probabilities=["p_1"]
    ).performance
    counted = StreamedPerformance(
        performance, predictions="prediction", targets="label", sample_size=500
    )
    for seed in range(10):
        counted.update(binary_frame(1000, seed=seed))
    assert counted.n_rows == 10_000 and len(counted._sample) == 500
    assert isinstance(counted.result().metric_results[0].value, float)
    assert pd.notna(counted.result().metric("roc_auc").value)


def _log_folder(folder, frame):
    """The window as a prediction log: two days, two files."""
    frame = frame.copy()
    frame.insert(
        0,
        "timestamp",
        pd.Timestamp("2026-11-24", tz="UTC")
        + pd.to_timedelta(np.arange(len(frame)) * 60, unit="s"),
    )
    half = len(frame) // 2
    for day, part in (("2026-11-24", frame.iloc[:half]), ("2026-11-25", frame.iloc[half:])):
        path = folder / f"date={day}"
        path.mkdir(parents=True)
        part.to_parquet(path / "part.parquet", index=False)


@pytest.mark.parametrize("labelled", [True, False])
def test_evaluate_degradation_over_scan_logs_equals_in_memory(tracking_uri, tmp_path, labelled):
    import mlflow

    reference, window = binary_frame(3000, seed=1), binary_frame(2000, seed=2, flip_region=True)
    if not labelled:
        window = window.drop(columns=["label"])
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    _log_folder(tmp_path / "log", window)
    streamed = mo.evaluate_degradation(
        mo.scan_logs(str(tmp_path / "log"), batch_size=300), baseline=training.info.run_id
    )
    in_memory = mo.evaluate_degradation(window, baseline=training.info.run_id)
    assert streamed.metrics.keys() == in_memory.metrics.keys()
    for key, value in in_memory.metrics.items():
        tolerance = AUC_TOLERANCE if "roc_auc" in key else 1e-9
        assert streamed.metrics[key] == pytest.approx(value, abs=tolerance), key
    stored = mlflow.get_run(streamed.run_id)
    assert stored.data.tags["observe.degradation.kind"] == ("realised" if labelled else "estimated")
    assert "degradation_table.json" in {
        a.path for a in mlflow.MlflowClient().list_artifacts(streamed.run_id)
    }


def test_a_streamed_window_of_no_rows_is_refused(tracking_uri):
    import mlflow

    with mlflow.start_run() as training:
        mo.log_baseline(
            binary_frame(1000, seed=1),
            targets="label",
            predictions="prediction",
            probabilities=["p_1"],
        )
    with pytest.raises(mo.EmptyWindowError):
        mo.evaluate_degradation(iter([]), baseline=training.info.run_id)
