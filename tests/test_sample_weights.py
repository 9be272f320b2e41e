"""Rows kept by load shedding count their sample_weight: profiles, tests, performance, the log.

The known truth: a full window whose burst (another distribution) was kept at rate
1/4 and weighted 4. Weighted counts must give the full window's histogram, mean,
category shares and accuracy (checked against numpy, pandas and scikit-learn), the
unweighted ones must not; and calm windows sampled with weights must not alarm more
often than unweighted ones (Kish's effective sample size keeps the tests calibrated).
"""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame
from sklearn import metrics as skm

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.univariate import compare_profiles
from mlflow_observe.core.performance.cbpe import (
    estimate_binary_performance,
    estimate_multiclass_performance,
)
from mlflow_observe.core.performance.degradation import compare_performance
from mlflow_observe.core.performance.metrics import classification_metrics, regression_metrics
from mlflow_observe.core.profile.data_profile import DataProfile, build_profile
from mlflow_observe.core.stats import chi_square, ks_binned, proportions_ztest
from mlflow_observe.core.weights import WeightError, check_weights, effective_size

BURST_RATE = 4


def _shed_window(seed=0, n_calm=20_000, n_burst=8_000):
    """The full window, and what a writer shedding the burst at 1/4 kept of it, with weights."""
    rng = np.random.default_rng(seed)
    calm = make_frame(n_calm, seed=seed)
    burst = make_frame(n_burst, seed=seed + 1, shift=3.0, category_p=(0.1, 0.1, 0.8))
    calm["label"] = rng.integers(0, 2, n_calm)
    burst["label"] = rng.integers(0, 2, n_burst)
    # Right 90% of the time on calm traffic, 50% on the burst.
    calm["prediction"] = np.where(rng.random(n_calm) < 0.9, calm["label"], 1 - calm["label"])
    burst["prediction"] = np.where(rng.random(n_burst) < 0.5, burst["label"], 1 - burst["label"])
    full = pd.concat([calm, burst], ignore_index=True)
    kept_burst = burst[rng.random(n_burst) < 1 / BURST_RATE]
    kept = pd.concat([calm, kept_burst], ignore_index=True)
    weights = np.concatenate([np.ones(n_calm), np.full(len(kept_burst), float(BURST_RATE))])
    return full, kept, weights


@pytest.fixture(scope="module")
def shed():
    full, kept, weights = _shed_window()
    baseline = build_profile(make_frame(5000, seed=42), sample_size=100)
    window = baseline.empty_like()
    window.update(kept[list(baseline.columns)], weights=weights)
    unweighted = baseline.empty_like()
    unweighted.update(kept[list(baseline.columns)])
    truth = baseline.empty_like()
    truth.update(full[list(baseline.columns)])
    return {
        "full": full,
        "kept": kept,
        "weights": weights,
        "baseline": baseline,
        "window": window,
        "unweighted": unweighted,
        "truth": truth,
    }


def _cell_edges(grid):
    # The profile's cells: [x < g_0], [g_0, g_1), ..., [g_m, nextafter(g_m)), [x > g_m].
    return np.concatenate([[-1e300], grid, [np.nextafter(grid[-1], np.inf)], [1e300]])


def test_weighted_histogram_mean_and_variance_are_numpy_weighted_ones(shed):
    column, kept, w = shed["window"].columns["num_a"], shed["kept"], shed["weights"]
    expected, _ = np.histogram(kept["num_a"], bins=_cell_edges(column.grid), weights=w)
    np.testing.assert_allclose(column.counts, expected, rtol=1e-12)
    sums, _ = np.histogram(kept["num_a"], bins=_cell_edges(column.grid), weights=w * kept["num_a"])
    np.testing.assert_allclose(column.sums, sums, rtol=1e-9, atol=1e-9)
    assert column.mean == pytest.approx(np.average(kept["num_a"], weights=w), rel=1e-12)
    variance = np.cov(kept["num_a"], aweights=w, ddof=0)
    assert column.std == pytest.approx(np.sqrt(variance), rel=1e-10)
    assert column.count == pytest.approx(w.sum())
    assert column.n_effective == pytest.approx(effective_size(w))
    assert shed["window"].n_rows == pytest.approx(w.sum())
    assert shed["window"].n_logged == len(kept)


def test_weighted_counts_stand_for_the_full_window_and_unweighted_ones_do_not(shed):
    full = shed["full"]
    window, unweighted, truth = shed["window"], shed["unweighted"], shed["truth"]
    # The mean: within sampling noise of the full window's; unweighted, a third of the burst.
    assert abs(window.columns["num_a"].mean - full["num_a"].mean()) < 0.03
    assert abs(unweighted.columns["num_a"].mean - full["num_a"].mean()) > 0.4

    def shares(profile, name):
        counts = profile.columns[name].coarse_counts() if name == "num_a" else None
        counts = profile.columns[name].counts if counts is None else counts
        return counts / counts.sum()

    for name in ("num_a", "cat"):
        weighted_gap = np.abs(shares(window, name) - shares(truth, name)).sum() / 2
        unweighted_gap = np.abs(shares(unweighted, name) - shares(truth, name)).sum() / 2
        assert weighted_gap < 0.02, name
        assert unweighted_gap > 0.08, name
    # Category shares are the pandas weighted shares of the kept rows.
    kept, w = shed["kept"], shed["weights"]
    expected = pd.Series(w).groupby(kept["cat"].to_numpy()).sum()
    cat = window.columns["cat"]
    assert dict(zip(cat.categories, cat.counts, strict=True)) == pytest.approx(expected.to_dict())
    assert window.n_rows == pytest.approx(len(full), rel=0.03)
    # The window compared with its full truth: weighted, no drift; unweighted, the burst hides.
    assert not compare_profiles(truth, window).drifted_columns
    assert "num_a" in compare_profiles(truth, unweighted).drifted_columns


def test_weighted_accuracy_matches_scikit_learn_and_the_full_window(shed):
    full, kept, w = shed["full"], shed["kept"], shed["weights"]
    ours = classification_metrics(
        kept["label"], kept["prediction"], classes=[0, 1], sample_weight=w
    )
    assert ours["accuracy"] == pytest.approx(
        skm.accuracy_score(kept["label"], kept["prediction"], sample_weight=w), rel=1e-12
    )
    truth = skm.accuracy_score(full["label"], full["prediction"])
    assert abs(ours["accuracy"] - truth) < 0.01
    unweighted = skm.accuracy_score(kept["label"], kept["prediction"])
    assert abs(unweighted - truth) > 0.04


def test_weighted_classification_metrics_are_scikit_learns():
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n)
    proba = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    proba = np.round(proba, 2)  # ties, which ROC AUC counts half
    pred = (proba > 0.5).astype(int)
    w = rng.choice([1.0, 2.0, 4.0, 8.0], n)
    ours = classification_metrics(
        y, pred, np.column_stack([1 - proba, proba]), classes=[0, 1], sample_weight=w
    )
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, sample_weight=w))
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, sample_weight=w))
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, sample_weight=w))
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, sample_weight=w))
    assert ours["log_loss"] == pytest.approx(
        skm.log_loss(y, np.column_stack([1 - proba, proba]), sample_weight=w)
    )
    # Multiclass: macro averages and one-vs-rest ROC AUC.
    y3 = rng.integers(0, 3, n)
    scores = rng.dirichlet([1, 1, 1], n) + np.eye(3)[y3] * 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    pred3 = scores.argmax(axis=1)
    ours3 = classification_metrics(y3, pred3, scores, classes=[0, 1, 2], sample_weight=w)
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        assert ours3[name] == pytest.approx(fn(y3, pred3, average="macro", sample_weight=w))
    assert ours3["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y3, scores, multi_class="ovr", average="macro", sample_weight=w)
    )
    assert ours3["log_loss"] == pytest.approx(skm.log_loss(y3, scores, sample_weight=w))


def test_weighted_regression_metrics_are_scikit_learns():
    rng = np.random.default_rng(4)
    y = rng.normal(5, 2, 2000)
    pred = y + rng.normal(0.3, 1, 2000)
    w = rng.choice([1.0, 4.0], 2000)
    ours = regression_metrics(y, pred, sample_weight=w)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w))
    assert ours["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred, sample_weight=w)))
    assert ours["r2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=w))
    assert ours["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y, pred, sample_weight=w)
    )
    assert ours != regression_metrics(y, pred)


def test_equal_weights_change_no_metric_and_unweighted_results_are_unchanged():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    pred = (p > 0.5).astype(int)
    proba = np.column_stack([1 - p, p])
    plain = classification_metrics(y, pred, proba, classes=[0, 1])
    weighted = classification_metrics(
        y, pred, proba, classes=[0, 1], sample_weight=np.full(500, 3.0)
    )
    assert weighted == pytest.approx(plain)
    estimate = estimate_binary_performance(p, pred == 1)
    ones = estimate_binary_performance(p, pred == 1, sample_weight=np.ones(500))
    assert ones.keys() == estimate.keys()
    for name, band in estimate.items():
        assert ones[name] == pytest.approx(band), name


def test_cbpe_weighted_estimates_the_full_windows_performance():
    """Calibrated probabilities: the burst is uncertain (p near 0.5), the calm rows are sure."""
    rng = np.random.default_rng(6)
    calm_p = rng.choice([0.05, 0.95], 20_000)
    burst_p = rng.uniform(0.4, 0.6, 8000)
    full_p = np.concatenate([calm_p, burst_p])
    kept = rng.random(8000) < 0.25
    kept_p = np.concatenate([calm_p, burst_p[kept]])
    w = np.concatenate([np.ones(20_000), np.full(int(kept.sum()), 4.0)])
    truth = estimate_binary_performance(full_p, full_p > 0.5)
    weighted = estimate_binary_performance(kept_p, kept_p > 0.5, sample_weight=w)
    unweighted = estimate_binary_performance(kept_p, kept_p > 0.5)
    for name in ("accuracy", "roc_auc", "f1"):
        assert abs(weighted[name]["value"] - truth[name]["value"]) < 0.01, name
    assert abs(unweighted["accuracy"]["value"] - truth["accuracy"]["value"]) > 0.04
    assert weighted["accuracy"]["band_low"] <= weighted["accuracy"]["value"]
    assert weighted["accuracy"]["value"] <= weighted["accuracy"]["band_high"]
    # Multiclass: the same with three classes (the expected accuracy is the weighted mean).
    probs = rng.dirichlet([1, 1, 1], 3000)
    w3 = rng.choice([1.0, 4.0], 3000)
    multi = estimate_multiclass_performance(probs, probs.argmax(axis=1), sample_weight=w3)
    expected = np.average(probs.max(axis=1), weights=w3)
    assert multi["accuracy"]["value"] == pytest.approx(expected)


@pytest.mark.slow
def test_compare_performance_weighs_rows_and_reports_what_they_stand_for(shed):
    full, kept, w = shed["full"], shed["kept"], shed["weights"]
    reference = build_profile(
        full.iloc[:20_000].assign(p=np.where(full["prediction"].iloc[:20_000] == 1, 0.8, 0.2)),
        targets="label",
        predictions="prediction",
        probabilities=["p"],
    ).performance
    weighted = compare_performance(
        reference, y_true=kept["label"], y_pred=kept["prediction"], sample_weight=w
    )
    plain = compare_performance(reference, y_true=kept["label"], y_pred=kept["prediction"])
    truth = skm.accuracy_score(full["label"], full["prediction"])
    assert weighted.metric("accuracy").value == pytest.approx(
        skm.accuracy_score(kept["label"], kept["prediction"], sample_weight=w)
    )
    assert abs(weighted.metric("accuracy").value - truth) < 0.01
    assert weighted.metrics()["degradation/rows_represented"] == pytest.approx(w.sum())
    assert plain.metrics()["degradation/rows_represented"] == len(kept)
    assert weighted.degraded and plain.degraded  # the burst costs 11 points of accuracy
    with pytest.raises(WeightError, match="finite numbers > 0"):
        compare_performance(
            reference,
            y_true=kept["label"],
            y_pred=kept["prediction"],
            sample_weight=np.where(np.arange(len(kept)) == 3, -1.0, w),
        )


def test_kish_effective_size_is_the_tests_n():
    counts = np.array([30.0, 50.0, 20.0])
    current = np.array([25.0, 55.0, 20.0]) * 4  # 100 rows, each weighing 4
    by_rows = chi_square(counts, current / 4)
    by_kish = chi_square(counts, current, n_current=100)
    assert by_kish.pvalue == pytest.approx(by_rows.pvalue)
    assert chi_square(counts, current).pvalue < by_kish.pvalue  # the overconfident answer
    z_rows = proportions_ztest([30, 70], [40, 60])
    assert proportions_ztest([30, 70], [160, 240], n_current=100).pvalue == pytest.approx(
        z_rows.pvalue
    )
    ks_rows = ks_binned([10, 20, 30, 40], [20, 20, 30, 30])
    assert ks_binned([10, 20, 30, 40], [80, 80, 120, 120], n_current=100).pvalue == pytest.approx(
        ks_rows.pvalue
    )
    assert effective_size([1.0, 1.0, 4.0, 4.0]) == pytest.approx(100 / 34)
    with pytest.raises(ValueError, match="finite and > 0"):
        ks_binned([1, 2], [2, 1], n_current=0)


def _calm_flags(seed, *, weighted):
    """A calm window of 2,000 logged rows, half of them standing for 4 rows each (or not)."""
    baseline = build_profile(make_frame(20_000, seed=1000), sample_size=0)
    rows = make_frame(2000, seed=seed)
    window = baseline.empty_like()
    weights = np.where(np.arange(2000) % 2 == 0, 1.0, 4.0) if weighted else None
    window.update(rows, weights=weights)
    result = compare_profiles(baseline, window)
    pvalues = [c.pvalue for c in result.columns if c.pvalue is not None]
    return result.dataset_drift, sum(p < 0.05 for p in pvalues), len(pvalues)


@pytest.mark.slow
def test_calm_windows_sampled_with_weights_alarm_no_more_than_unweighted_ones():
    seeds = range(40)
    weighted = [_calm_flags(s, weighted=True) for s in seeds]
    unweighted = [_calm_flags(s, weighted=False) for s in seeds]
    n_tests = sum(t for _, _, t in weighted)
    weighted_rejections = sum(r for _, r, _ in weighted)
    unweighted_rejections = sum(r for _, r, _ in unweighted)
    # About 5% of calm tests reject (sd ~ 1.7% over 160 tests); the binned KS is conservative.
    assert weighted_rejections / n_tests <= 0.10
    assert weighted_rejections <= unweighted_rejections + 4
    assert sum(d for d, _, _ in weighted) <= sum(d for d, _, _ in unweighted) + 2
    assert sum(d for d, _, _ in weighted) <= 4


def _counted(baseline, seed):
    window = baseline.empty_like()
    window.update(make_frame(2000, seed=seed))
    return window.columns["num_a"].counts


@pytest.mark.slow
def test_the_sum_of_weights_as_n_would_be_overconfident():
    """What Kish's n prevents: with the weights' sum as n, calm windows alarm far too often."""
    baseline = build_profile(make_frame(20_000, seed=1000), sample_size=0)
    kish, naive = 0, 0
    for seed in range(40):
        window = baseline.empty_like()
        window.update(make_frame(2000, seed=seed), weights=np.full(2000, 16.0))
        ref, cur = baseline.columns["num_a"], window.columns["num_a"]
        kish += ks_binned(ref.counts, cur.counts, n_current=cur.n_effective).pvalue < 0.05
        naive += ks_binned(ref.counts, cur.counts).pvalue < 0.05
    unweighted = sum(
        ks_binned(baseline.columns["num_a"].counts, _counted(baseline, seed)).pvalue < 0.05
        for seed in range(40)
    )
    assert kish == unweighted  # equal weights: Kish's n is the rows, the p-values are the same
    assert naive >= kish + 8


def test_merged_weighted_and_unweighted_parts_equal_the_whole():
    baseline = build_profile(make_frame(3000, seed=7))
    rows = make_frame(1000, seed=8)
    weights = np.where(np.arange(1000) < 500, 1.0, 2.0)
    whole = baseline.empty_like()
    whole.update(rows, weights=weights)
    first, second = baseline.empty_like(), baseline.empty_like()
    first.update(rows.iloc[:500])  # all weights 1: counted unweighted
    second.update(rows.iloc[500:], weights=weights[500:])
    for merged in (first + second, second + first):
        assert merged.n_rows == whole.n_rows == 1500.0
        assert merged.n_logged == 1000
        assert merged.weight_sq == pytest.approx(whole.weight_sq)
        for name, column in whole.columns.items():
            np.testing.assert_allclose(merged.columns[name].counts, column.counts)
            assert merged.columns[name].n_effective == pytest.approx(column.n_effective)
        assert merged.columns["num_a"].mean == pytest.approx(whole.columns["num_a"].mean)
        assert merged.columns["num_a"].m2 == pytest.approx(whole.columns["num_a"].m2)
    # Updated in turn (an unweighted part first), the counts promote to weighted ones.
    streamed = baseline.empty_like()
    streamed.update(rows.iloc[:500])
    streamed.update(rows.iloc[500:], weights=weights[500:])
    np.testing.assert_allclose(streamed.columns["cat"].counts, whole.columns["cat"].counts)
    assert streamed.columns["num_a"].n_effective == pytest.approx(
        whole.columns["num_a"].n_effective
    )


def test_a_weighted_window_profile_round_trips_through_json():
    baseline = build_profile(make_frame(2000, seed=9))
    window = baseline.empty_like()
    rows = make_frame(300, seed=10)
    rows.loc[::7, "num_a"] = np.nan
    rows.loc[::11, "cat"] = None
    rows.loc[::13, "cat"] = "purple"  # unseen
    window.update(rows, weights=np.linspace(1.0, 8.0, 300))
    again = DataProfile.from_json(window.to_json())
    assert again.to_dict() == json.loads(window.to_json())
    assert again.n_rows == pytest.approx(window.n_rows) and again.n_logged == 300
    assert again.columns["cat"].unseen_examples == pytest.approx(
        window.columns["cat"].unseen_examples
    )
    assert (
        compare_profiles(baseline, again).metrics() == compare_profiles(baseline, window).metrics()
    )


def test_unweighted_profiles_and_results_are_unchanged_by_an_all_ones_weight_column():
    baseline = build_profile(make_frame(3000, seed=11))
    rows = make_frame(800, seed=12, shift=0.2)
    plain = compare(baseline, rows, n_jobs=1)
    ones = compare(baseline, rows.assign(sample_weight=1.0), weights="sample_weight", n_jobs=1)
    assert ones.current.to_json() == plain.current.to_json()
    assert ones.metrics() == plain.metrics()
    assert "n_logged" not in plain.current.to_dict()
    assert all("weight_sq" not in c for c in plain.current.to_dict()["columns"])
    assert plain.metrics()["drift/rows_represented"] == plain.metrics()["drift/rows_logged"] == 800
    # Null weights count 1 (rows logged before sampling was recorded).
    nulls = compare(baseline, rows.assign(sample_weight=np.nan), weights="sample_weight", n_jobs=1)
    assert nulls.metrics() == plain.metrics()


@pytest.mark.parametrize(
    "weights, match",
    [
        ([1.0, 0.0, 1.0], "1 of 3 are not"),
        ([1.0, -2.0, np.inf], "2 of 3 are not"),
        ([np.nan, 1.0, 1.0], r"e\.g\. nan"),
        ([1.0, 1.0], "2 row weights for 3 rows"),
        (["a", "b", "c"], "must be numbers"),
    ],
)
def test_bad_weights_are_refused_by_name(weights, match):
    profile = build_profile(make_frame(100, seed=0)).empty_like()
    with pytest.raises(WeightError, match=match):
        profile.update(make_frame(3, seed=1), weights=weights)
    assert profile.n_rows == 0  # nothing half-counted


def test_a_weight_column_that_is_not_numbers_is_refused_not_counted_as_a_feature():
    baseline = build_profile(make_frame(1000, seed=13))
    rows = make_frame(50, seed=14).assign(sample_weight=["4"] * 49 + ["oops"])
    with pytest.raises(WeightError, match="1 of 50"):
        compare(baseline, rows, weights="sample_weight")
    good = compare(baseline, rows.iloc[:49], weights="sample_weight")
    assert good.current.n_rows == 196.0
    assert "sample_weight" not in good.current.columns
    assert not good.integrity.findings or all(
        f.column != "sample_weight" for f in good.integrity.findings
    )


def test_empty_and_one_row_weighted_windows():
    baseline = build_profile(make_frame(1000, seed=15))
    window = baseline.empty_like()
    window.update(make_frame(0, seed=16), weights=np.array([]))
    assert window.n_rows == 0
    window.update(make_frame(1, seed=17), weights=[8.0])
    assert window.n_rows == 8.0 and window.n_logged == 1
    assert window.columns["num_a"].n_effective == pytest.approx(1.0)
    result = compare_profiles(baseline, window)
    assert result.n_current == 8 and result.n_current_logged == 1
    assert check_weights(np.array([2], dtype=np.int8), 1).dtype == np.float64


# -- end to end: the real writer sheds load, the readers weigh the rows back -------------


def _shedding_writer(log_dir, **kwargs):
    from mlflow_observe.logs.writer import PredictionLogWriter

    # The writer sleeps through the burst (no flush by size or time): a 200-row queue meets
    # thousands of one-row calls, so it keeps calls at a halving rate and records it.
    return PredictionLogWriter(
        str(log_dir), max_queue_rows=200, flush_rows=10**9, spool_seconds=3600, **kwargs
    )


@pytest.mark.slow
def test_evaluate_drift_on_a_shed_log_counts_the_rows_it_stands_for(tmp_path, tracking_uri):
    import mlflow

    import mlflow_observe as mo
    from mlflow_observe.logs.reader import iter_log_batches, read_logs

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=3000), "plan": rng.choice(["a", "b"], 3000)})
    with mlflow.start_run() as training:
        mo.log_baseline(reference)
    writer = _shedding_writer(tmp_path / "log")
    for i in range(3000):
        writer.submit(
            pd.DataFrame({"x": [rng.normal()], "plan": [rng.choice(["a", "b"])]}),
            [i],
            latency_seconds=0.0,
        )
    writer.close()
    assert writer.stats()["rows_sampled_out"] > 0
    logs = read_logs(str(tmp_path / "log"))
    weights = logs["sample_weight"]
    assert weights.max() > 1 and len(logs) < 3000
    with mlflow.start_run() as run:
        whole = mo.evaluate_drift(logs, baseline=training.info.run_id)
    assert whole.metrics["drift/rows_logged"] == len(logs)
    assert whole.metrics["drift/rows_represented"] == pytest.approx(weights.sum())
    assert 2000 < whole.metrics["drift/rows_represented"] < 4000  # Horvitz-Thompson, ~3000
    assert whole.metrics["integrity/n_extra_columns"] == 0.0  # sample_weight is no feature
    table = mlflow.MlflowClient().download_artifacts(run.info.run_id, "drift_table.json")
    with open(table) as file:
        records = {r["column"]: r for r in json.load(file)}
    assert set(records) == {"x", "plan"}  # the weights are not compared as a feature
    assert records["x"]["n_current"] == weights.sum()  # the column's weighted count
    streamed = mo.evaluate_drift(
        iter_log_batches(str(tmp_path / "log"), batch_size=100), baseline=training.info.run_id
    )
    assert streamed.metrics == pytest.approx(whole.metrics)


@pytest.mark.slow
def test_monitor_on_a_shed_log_reports_rows_logged_and_represented(tmp_path, tracking_uri):
    import mlflow
    from helpers import DAY, customers, log_version

    import mlflow_observe as mo
    from mlflow_observe.logs.reader import read_logs

    mlflow.set_experiment("training")
    model, version = log_version(customers(2000, seed=0))
    writer = _shedding_writer(
        tmp_path / "log",
        model_name="churn",
        model_version=str(version),
        max_event_age_days=None,
        probabilities=lambda x: pd.DataFrame(model.predict_proba(x), columns=model.classes_),
    )
    rows = customers(2000, seed=1)
    for i in range(len(rows)):
        part = rows.iloc[[i]]
        writer.submit(
            part,
            model.predict(part),
            latency_seconds=0.0,
            event_time=(DAY + pd.Timedelta(seconds=10 * i)).isoformat(),
        )
    writer.close()
    logs = read_logs(str(tmp_path / "log"))
    assert logs["sample_weight"].max() > 1
    result = mo.monitor(
        f"models:/churn/{version}",
        str(tmp_path / "log"),
        window="1d",
        since=DAY.isoformat(),
        until=(DAY + pd.Timedelta(days=1)).isoformat(),
        min_rows=1,
        experiment_name="monitoring",
        drift_options={"log_plots": False},
    )
    [window] = result.windows
    assert window.status == "evaluated", window.notes
    metrics = window.metrics
    represented = logs["sample_weight"].sum()
    assert metrics["traffic/rows"] == len(logs)
    assert metrics["traffic/rows_represented"] == pytest.approx(represented)
    assert metrics["drift/rows_logged"] == len(logs)
    assert metrics["drift/rows_represented"] == pytest.approx(represented)
    assert metrics["degradation/rows_represented"] == pytest.approx(represented)
    logged = mlflow.MlflowClient().get_run(window.run_id).data.metrics
    assert logged["traffic/rows_represented"] == pytest.approx(represented)


# -- degradation counted batch by batch weighs rows as in memory -----------------------


def _weights_for(n, seed):
    """The first third unweighted (1), the rest sampled at 1/2 to 1/8: counts promote."""
    rng = np.random.default_rng(seed)
    return np.where(np.arange(n) < n // 3, 1.0, rng.choice([2.0, 4.0, 8.0], n))


def _streamed_weighted(performance, frame, weights, *, targets, batch_size=97):
    from mlflow_observe.core.performance.streamed import StreamedPerformance

    counted = StreamedPerformance(performance, predictions="prediction", targets=targets)
    for start in range(0, len(frame), batch_size):
        part = weights[start : start + batch_size]
        counted.update(
            frame.iloc[start : start + batch_size],
            weights=None if np.all(part == 1.0) else part,
        )
    return counted.result()


def _same_result(streamed, memory, *, auc_tolerance=1e-3):
    assert streamed.kind == memory.kind and streamed.n_rows == memory.n_rows
    assert streamed.n_represented == pytest.approx(memory.n_represented)
    assert streamed.findings == memory.findings
    assert streamed.degraded == memory.degraded
    for s, m in zip(streamed.metric_results, memory.metric_results, strict=True):
        assert s.metric == m.metric
        tolerance = auc_tolerance if s.metric == "roc_auc" else 1e-9
        assert s.value == pytest.approx(m.value, rel=1e-9, abs=tolerance), s.metric
        assert s.margin == pytest.approx(m.margin, rel=1e-9), s.metric


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_streamed_degradation_weighs_rows_as_in_memory(task):
    from helpers import binary_frame, multiclass_frame, regression_frame

    if task == "binary":
        reference, window = binary_frame(3000, seed=1), binary_frame(1500, seed=2, flip_region=True)
        names, targets = ["p_1"], "label"
    elif task == "multiclass":
        reference, window = (
            multiclass_frame(3000, seed=1),
            multiclass_frame(1200, seed=2, shift=0.4),
        )
        names, targets = ["p_a", "p_b", "p_c"], "label"
    else:
        reference, window = regression_frame(3000, seed=1), regression_frame(1000, seed=2)
        names, targets = [], "target"
    performance = build_profile(
        reference, targets=targets, predictions="prediction", probabilities=names or None
    ).performance
    weights = _weights_for(len(window), seed=3)

    def in_memory(frame, y_true):
        return compare_performance(
            performance,
            y_true=y_true,
            y_pred=frame["prediction"].to_numpy(),
            proba=frame[names].to_numpy(dtype=float) if names else None,
            features=frame,
            sample_weight=weights,
        )

    memory = in_memory(window, window[targets].to_numpy())
    _same_result(_streamed_weighted(performance, window, weights, targets=targets), memory)
    unweighted = compare_performance(
        performance,
        y_true=window[targets].to_numpy(),
        y_pred=window["prediction"].to_numpy(),
        proba=window[names].to_numpy(dtype=float) if names else None,
    )
    assert memory.metric_results[0].value != unweighted.metric_results[0].value
    unlabelled = window.drop(columns=[targets])
    estimated = _streamed_weighted(performance, unlabelled, weights, targets=None)
    _same_result(estimated, in_memory(unlabelled, None))
    assert estimated.kind == "estimated"


@pytest.mark.slow
def test_evaluate_degradation_over_weighted_batches_equals_in_memory(tracking_uri):
    import mlflow
    from helpers import binary_frame

    import mlflow_observe as mo

    reference, window = binary_frame(3000, seed=1), binary_frame(2000, seed=2, flip_region=True)
    window["sample_weight"] = _weights_for(len(window), seed=4)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    streamed = mo.evaluate_degradation(
        (window.iloc[i : i + 300] for i in range(0, len(window), 300)),
        baseline=training.info.run_id,
    )
    in_memory = mo.evaluate_degradation(window, baseline=training.info.run_id)
    assert streamed.metrics.keys() == in_memory.metrics.keys()
    for key, value in in_memory.metrics.items():
        tolerance = 1e-3 if "roc_auc" in key else 1e-9
        assert streamed.metrics[key] == pytest.approx(value, rel=1e-9, abs=tolerance), key
    represented = window["sample_weight"].sum()
    assert in_memory.metrics["degradation/rows_represented"] == pytest.approx(represented)
    truth = skm.accuracy_score(
        window["label"], window["prediction"], sample_weight=window["sample_weight"]
    )
    assert in_memory.metrics["degradation/accuracy"] == pytest.approx(truth)


def test_segments_are_counted_with_their_rows_weights():
    from mlflow_observe.core.drift.options import DriftOptions

    baseline = build_profile(make_frame(3000, seed=30))
    rows = make_frame(1200, seed=31).assign(
        region=np.where(np.arange(1200) < 600, "north", "south")
    )
    rows["sample_weight"] = np.where(rows["region"] == "south", 4.0, 1.0)
    options = DriftOptions(segment_by=["region"], min_segment_size=100)
    result = compare(baseline, rows, options, weights="sample_weight", n_jobs=1)
    sizes = {s.value: s.n_rows for s in result.segments}
    assert sizes == {"north": 600, "south": 2400}
    south = baseline.empty_like()
    south.update(
        rows[rows["region"] == "south"].drop(columns=["sample_weight"]), weights=[4.0] * 600
    )
    ours = next(s for s in result.segments if s.value == "south").drift.metrics()
    assert ours == compare_profiles(baseline, south, present_columns=list(south.columns)).metrics()


def test_reports_show_the_rows_logged_and_the_rows_they_stand_for():
    from mlflow_observe.core.drift.options import DriftOptions
    from mlflow_observe.report.html import render_degradation_report, render_report

    baseline = build_profile(make_frame(2000, seed=40))
    rows = make_frame(500, seed=41).assign(sample_weight=np.where(np.arange(500) < 100, 4.0, 1.0))
    comparison = compare(baseline, rows, weights="sample_weight", n_jobs=1)
    page = render_report(
        comparison, baseline=baseline, options=DriftOptions(), baseline_label="b", plots={}
    )
    assert "current rows logged / represented" in page and "500 / 800" in page
    plain = compare(baseline, rows.drop(columns=["sample_weight"]), n_jobs=1)
    page = render_report(
        plain, baseline=baseline, options=DriftOptions(), baseline_label="b", plots={}
    )
    assert "represented" not in page
    full, kept, w = _shed_window(n_calm=2000, n_burst=800)
    performance = build_profile(full, targets="label", predictions="prediction").performance
    result = compare_performance(
        performance, y_true=kept["label"], y_pred=kept["prediction"], sample_weight=w
    )
    page = render_degradation_report(result, baseline_label="b")
    assert f"standing for {w.sum():,.0f} rows of traffic" in page


def test_degradation_segments_weigh_their_rows():
    from mlflow_observe.core.performance.degradation import compare_segments

    full, kept, w = _shed_window(n_calm=4000, n_burst=1600)
    performance = build_profile(full, targets="label", predictions="prediction").performance
    segments = compare_segments(
        performance,
        kept[["cat"]],
        y_true=kept["label"].to_numpy(),
        y_pred=kept["prediction"].to_numpy(),
        min_size=50,
        sample_weight=w,
    )
    for segment in segments:
        rows = (kept["cat"] == segment.value).to_numpy()
        expected = skm.accuracy_score(
            kept["label"][rows], kept["prediction"][rows], sample_weight=w[rows]
        )
        assert segment.result.metric("accuracy").value == pytest.approx(expected), segment.value
        assert segment.result.n_represented == pytest.approx(w[rows].sum())


def test_a_bad_weight_in_a_log_frame_is_a_clear_error_from_the_evaluators(tracking_uri):
    import mlflow
    from mlflow.exceptions import MlflowException

    import mlflow_observe as mo

    reference = make_frame(1000, seed=50).assign(label=0, prediction=0)
    with mlflow.start_run() as training:
        mo.log_baseline(reference, targets="label", predictions="prediction")
    window = make_frame(200, seed=51).assign(label=0, prediction=0, sample_weight=2.0)
    window.loc[7, "sample_weight"] = -1.0
    for evaluate in (mo.evaluate_drift, mo.evaluate_degradation):
        with pytest.raises(MlflowException, match="Row weights must be finite numbers > 0; 1 of"):
            evaluate(window, baseline=training.info.run_id)
