"""Multivariate drift: known structure, measured false alarms, bad input, end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import mlflow_observe as mo
from mlflow_observe.core.drift.multivariate import (
    MIN_ROWS,
    WindowTooSmallError,
    domain_classifier_drift,
    reconstruction_drift,
)
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile

MULTIVARIATE_METRICS = (
    "drift/multivariate/domain_auc",
    "drift/multivariate/domain_drifted",
    "drift/multivariate/reconstruction_error",
    "drift/multivariate/reconstruction_drifted",
)


def correlated(n, *, rho, seed, missing=0.0):
    """``a`` and ``b`` standard normal with correlation ``rho``; two noise columns, two categorical.

    Every column's own distribution is the same whatever ``rho``.
    """
    rng = np.random.default_rng(seed)
    ab = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], n)
    frame = pd.DataFrame(
        {
            "a": ab[:, 0],
            "b": ab[:, 1],
            "noise_1": rng.normal(5.0, 2.0, n),
            "noise_2": rng.exponential(1.0, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
            "active": rng.random(n) < 0.3,
        }
    )
    if missing:
        frame.loc[rng.random(n) < missing, "noise_1"] = np.nan
        frame.loc[rng.random(n) < missing, "plan"] = None
    return frame


@pytest.fixture(scope="module")
def correlation_flip():
    """A window whose a-b correlation went from 0.8 to 0, through the whole comparison."""
    baseline = build_profile(correlated(5000, rho=0.8, seed=1))
    window = correlated(5000, rho=0.0, seed=2)
    return mo.compare(baseline, window, DriftOptions(multivariate=True))


def test_correlation_change_is_caught_by_both_detectors_and_by_no_column(correlation_flip):
    drift, multivariate = correlation_flip.drift, correlation_flip.multivariate
    # Univariate: every column keeps its distribution, so none drifts.
    assert drift.drifted_columns == []
    assert not drift.dataset_drift
    for name in ("a", "b"):
        assert drift.column(name).statistics["ks"]["pvalue"] > 0.01
        assert drift.column(name).statistics["wasserstein"]["statistic"] < 0.05
    # Multivariate: both alarm, far outside their limits.
    metrics = correlation_flip.metrics()
    assert metrics["drift/multivariate/domain_drifted"] == 1.0
    assert metrics["drift/multivariate/reconstruction_drifted"] == 1.0
    assert multivariate.domain.statistic > 0.65 > multivariate.domain.threshold
    assert multivariate.domain.threshold == multivariate.domain.band[1] > 0.5
    assert multivariate.domain.interval[0] > multivariate.domain.band[1]
    reconstruction = multivariate.reconstruction
    assert reconstruction.statistic > 2 * reconstruction.threshold
    assert reconstruction.interval[0] > reconstruction.threshold


def test_importances_rank_the_correlated_pair_first(correlation_flip):
    domain = correlation_flip.multivariate.domain
    assert set(domain.ranked_features[:2]) == {"a", "b"}
    others = [domain.importances[c] for c in domain.ranked_features[2:]]
    assert min(domain.importances["a"], domain.importances["b"]) > 10 * max(max(others), 0.001)
    assert list(domain.importances.values()) == sorted(domain.importances.values(), reverse=True)


@pytest.mark.slow
def test_false_alarm_rate_on_reference_distributed_windows():
    """Windows drawn from the reference's distribution: alarms over 20 seeds, per detector.

    The floors (``min_margin``, ``min_increase``) are off, so this measures the
    statistical calibration alone; the floors only raise the limits, so the
    defaults alarm at most as often.
    """
    domain_alarms, reconstruction_alarms, aucs = 0, 0, []
    for seed in range(20):
        reference = correlated(1500, rho=0.8, seed=1000 + seed, missing=0.05)
        window = correlated(600, rho=0.8, seed=2000 + seed, missing=0.05)
        domain = domain_classifier_drift(reference, window, min_margin=0.0, random_state=seed)
        reconstruction = reconstruction_drift(
            reference, window, min_increase=0.0, random_state=seed
        )
        domain_alarms += domain.drifted
        reconstruction_alarms += reconstruction.drifted
        aucs.append(domain.statistic)
    # Designed for about 0.1% each (alpha = 0.001); at most one alarm in 20 is allowed.
    assert domain_alarms <= 1, f"domain classifier: {domain_alarms} false alarms in 20"
    assert reconstruction_alarms <= 1, f"PCA: {reconstruction_alarms} false alarms in 20"
    assert abs(np.mean(aucs) - 0.5) < 0.02


def test_the_reference_itself_does_not_alarm():
    reference = correlated(3000, rho=0.8, seed=5)
    result = mo.compare(build_profile(reference), reference, DriftOptions(multivariate=True))
    assert result.metrics()["drift/multivariate/domain_drifted"] == 0.0
    assert result.metrics()["drift/multivariate/reconstruction_drifted"] == 0.0
    reconstruction = result.multivariate.reconstruction
    # Each left-out chunk, judged as a window of its own size, stays under its limit.
    sized = reconstruction_drift(reference, reference.iloc[:600])
    assert max(reconstruction.chunk_errors) < sized.threshold


def test_thresholds_come_from_reference_rows_left_out_of_the_fit():
    """A small, wide reference: rows scored by the PCA fitted on them look far too good.

    Calibrated on those in-sample errors, every fresh window from the reference
    distribution would alarm; calibrated on left-out chunks, none does.
    """
    from mlflow_observe.core.drift.multivariate.encoding import FeatureEncoding
    from mlflow_observe.core.drift.multivariate.reconstruction import (
        _components_for,
        _errors,
        _fit_pca,
    )

    in_sample_alarms, alarms = 0, 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        both = pd.DataFrame(rng.normal(size=(300, 30)), columns=[f"x{i}" for i in range(30)])
        reference, window = both.iloc[:150], both.iloc[150:]
        alarms += reconstruction_drift(reference, window, min_increase=0.0).drifted
        encoding = FeatureEncoding.fit(reference)
        x, is_indicator = encoding.indicators(reference)
        model = _fit_pca(x, is_indicator, _components_for(x, is_indicator, 0.9)[0])
        in_sample, fresh = _errors(model, x), _errors(model, encoding.indicators(window)[0])
        limit = in_sample.mean() + 3.09 * in_sample.std(ddof=1) * np.sqrt(2 / 150)
        in_sample_alarms += fresh.mean() > limit
    assert in_sample_alarms == 10  # the naive calibration fails on this data ...
    assert alarms <= 1  # ... the left-out one does not


def test_report_section_ranks_columns_and_escapes_names():
    from mlflow_observe.report.html import render_report

    reference = correlated(1000, rho=0.8, seed=1).rename(columns={"a": "<img src=x>"})
    window = correlated(1000, rho=0.0, seed=2).rename(columns={"a": "<img src=x>"})
    baseline = build_profile(reference)
    options = DriftOptions(multivariate=True)
    page = render_report(
        mo.compare(baseline, window, options),
        baseline=baseline,
        options=options,
        baseline_label="runs:/abc",
        plots={},
    )
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page
    section = page[page.index("Columns that separate the window") :]
    ranked = [section.index(name) for name in ("&lt;img src=x&gt;", "noise_1")]
    assert ranked == sorted(ranked)


def test_a_window_too_small_is_a_clear_error_with_the_minimum():
    reference = correlated(1000, rho=0.8, seed=1)
    window = reference.iloc[: MIN_ROWS - 1]
    with pytest.raises(
        WindowTooSmallError,
        match=r"at least 100 rows in the window sample; it "
        r"has 99\. Use a longer window",
    ):
        domain_classifier_drift(reference, window)
    with pytest.raises(WindowTooSmallError, match="at least 100 rows in the reference sample"):
        reconstruction_drift(window, reference)
    # Through the comparison, the detectors are left out with the reason; no metric, no NaN.
    with pytest.warns(RuntimeWarning, match="left out"):
        result = mo.compare(build_profile(reference), window, DriftOptions(multivariate=True))
    assert not set(MULTIVARIATE_METRICS) & set(result.metrics())
    records = [r for r in result.to_records() if r["role"] == "multivariate"]
    assert [r["status"] for r in records] == ["skipped", "skipped"]
    assert all("at least 100 rows in the window sample" in r["note"] for r in records)


def test_all_categorical_data_is_encoded_for_pca():
    def plans(n, *, tied, seed):
        rng = np.random.default_rng(seed)
        plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
        # Support tier follows the plan in the reference; independent of it in the window,
        # with the same shares of each tier either way.
        tier = {"basic": "email", "plus": "chat", "pro": "phone"}
        support = (
            np.array([tier[p] for p in plan])
            if tied
            else np.array([tier[p] for p in rng.permutation(plan)])
        )
        return pd.DataFrame(
            {"plan": plan, "support": support, "country": rng.choice(["fr", "de", "it", "es"], n)}
        )

    reference = plans(3000, tied=True, seed=1)
    calm = reconstruction_drift(reference, plans(1000, tied=True, seed=2))
    assert calm.n_dimensions == 3 + 3 + 4 and not calm.drifted
    changed = reconstruction_drift(reference, plans(1000, tied=False, seed=3))
    assert changed.drifted and changed.statistic > 2 * changed.threshold
    assert domain_classifier_drift(reference, plans(1000, tied=False, seed=3)).drifted


@pytest.mark.slow
def test_missing_and_unseen_values_are_handled():
    reference = correlated(2000, rho=0.8, seed=1, missing=0.1)
    window = correlated(1000, rho=0.8, seed=2, missing=0.1)
    window.loc[:9, "plan"] = "enterprise"  # a category the reference never had
    window.loc[10:19, "noise_2"] = np.inf
    assert not domain_classifier_drift(reference, window).drifted
    assert not reconstruction_drift(reference, window).drifted
    # A column that goes missing much more often is a change the classifier sees.
    window.loc[window.index[:500], "noise_1"] = np.nan
    result = domain_classifier_drift(reference, window)
    assert result.drifted and result.ranked_features[0] == "noise_1"


@pytest.mark.slow
def test_results_are_seeded_and_inputs_untouched():
    reference = correlated(800, rho=0.8, seed=1)
    window = correlated(400, rho=0.2, seed=2)
    before = window.copy()
    first, second = (
        domain_classifier_drift(reference, window),
        domain_classifier_drift(reference, window),
    )
    assert first == second
    assert reconstruction_drift(reference, window) == reconstruction_drift(reference, window)
    pd.testing.assert_frame_equal(window, before)


def test_parameters_are_validated_in_scikit_learn_wording():
    frame = correlated(200, rho=0.8, seed=1)
    with pytest.raises(
        ValueError,
        match=r"The 'n_splits' parameter of domain_classifier_drift "
        r"must be an int >= 2 and <= 20\. Got 1 instead\.",
    ):
        domain_classifier_drift(frame, frame, n_splits=1)
    with pytest.raises(ValueError, match="The 'variance' parameter of reconstruction_drift"):
        reconstruction_drift(frame, frame, variance=1.5)
    with pytest.raises(ValueError, match="The 'multivariate' parameter of DriftOptions"):
        DriftOptions(multivariate="yes")
    with pytest.raises(ValueError, match="at least two encoded dimensions"):
        reconstruction_drift(frame[["a"]], frame[["a"]])


def test_a_streamed_window_uses_its_bounded_sample():
    baseline = build_profile(correlated(4000, rho=0.8, seed=1), sample_size=2000)
    window = correlated(12_000, rho=0.0, seed=2)
    parts = (window.iloc[start : start + 3000] for start in range(0, len(window), 3000))
    result = mo.compare(baseline, parts, DriftOptions(multivariate=True))
    assert result.current.n_rows == 12_000
    assert result.multivariate.domain.n_current == 2000
    assert result.multivariate.reconstruction.n_reference == 2000
    assert result.metrics()["drift/multivariate/domain_drifted"] == 1.0
    assert result.metrics()["drift/multivariate/reconstruction_drifted"] == 1.0


def test_off_by_default():
    baseline = build_profile(correlated(500, rho=0.8, seed=1))
    result = mo.compare(baseline, correlated(500, rho=0.0, seed=2))
    assert result.multivariate is None
    assert not set(MULTIVARIATE_METRICS) & set(result.metrics())
    assert all(r["role"] != "multivariate" for r in result.to_records())


@pytest.fixture
def baseline_run(tracking_uri):
    reference = correlated(3000, rho=0.8, seed=1)
    reference["prediction"] = reference["a"] + reference["b"]
    with mlflow.start_run() as run:
        mo.log_baseline(reference, predictions="prediction")
    return run.info.run_id


def _window():
    window = correlated(3000, rho=0.0, seed=2)
    window["prediction"] = window["a"] + window["b"]
    return window


@pytest.mark.slow
def test_evaluate_logs_multivariate_metrics_table_and_report(baseline_run):
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            data=_window(),
            predictions="prediction",
            model_type=mo.MONITORING_MODEL_TYPE,
            evaluators="drift",
            evaluator_config={"baseline": baseline_run, "multivariate": True, "log_plots": False},
        )
    stored = MlflowClient().get_run(run.info.run_id).data.metrics
    for key in MULTIVARIATE_METRICS:
        assert stored[key] == pytest.approx(result.metrics[key])
    assert stored["drift/multivariate/domain_drifted"] == 1.0
    assert stored["drift/multivariate/reconstruction_drifted"] == 1.0
    assert all(np.isfinite(v) for v in stored.values())
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="drift_table.json"
    )
    records = {
        r["column"]: r for r in json.loads(Path(local).read_text()) if r["role"] == "multivariate"
    }
    domain = records["domain_classifier"]
    assert domain["metric_key"] == "drift/multivariate/domain_auc" and domain["drifted"]
    assert set(list(domain["statistics"]["importances"])[:2]) == {"a", "b"}
    assert "prediction" not in domain["statistics"]["columns"]
    page = result.artifacts["drift_report"].content
    assert "Multivariate drift" in page and "Columns that separate the window" in page


@pytest.mark.server
@pytest.mark.slow
def test_evaluate_drift_keyword_and_cli_flag(baseline_run, tracking_uri, tmp_path):
    result = mo.evaluate_drift(_window(), baseline=baseline_run, multivariate=True, log_plots=False)
    assert set(MULTIVARIATE_METRICS) <= set(result.metrics)
    path = tmp_path / "window.parquet"
    _window().to_parquet(path)
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    completed = subprocess.run(
        [
            executable,
            "drift",
            "-b",
            baseline_run,
            "-d",
            str(path),
            "--multivariate",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["metrics"]["drift/multivariate/domain_drifted"] == 1.0
    assert payload["metrics"]["drift/multivariate/reconstruction_drifted"] == 1.0
    table = subprocess.run(
        [executable, "drift", "-b", baseline_run, "-d", str(path), "--multivariate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[2:]}
    assert rows["domain_classifier"][1] == "domain_auc" and rows["domain_classifier"][-1] == "drift"
    assert rows["pca_reconstruction"][1] == "reconstruction_error"
