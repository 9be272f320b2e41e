"""The monitor's series in MLflow: window positions, headline copies, and the two charts.

A real SQLite tracking store; the charts are real PNGs decoded back by matplotlib.
"""

import io
import json
import math

import matplotlib.image
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlflow_observe.monitoring import series
from mlflow_observe.monitoring.rules import AlertRule
from mlflow_observe.monitoring.windows import Window
from mlflow_observe.report.charts import plot_drift_heatmap, plot_performance_over_windows
from mlflow_observe.report.plots import figure_to_png
from mlflow_observe.tracking.results import log_metrics, metric_position

START = pd.Timestamp("2026-11-26", tz="UTC")


def window(i):
    return Window(i, START + pd.Timedelta(hours=i), START + pd.Timedelta(hours=i + 1))


def perf(kind, value, low=None, high=None, metric="accuracy"):
    return {
        "metric": metric,
        "kind": kind,
        "value": value,
        "band_low": low,
        "band_high": high,
        "baseline": 0.9,
        "margin": 0.02,
    }


def decoded(png: bytes):
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    return image


def test_metric_position_sets_step_and_timestamp_and_is_undone(tracking_uri):
    client = MlflowClient()
    with mlflow.start_run() as run:
        with metric_position(7, 1_795_000_000_000):
            log_metrics(client, run.info.run_id, {"drift/x": 0.5, "drift/nan": float("nan")})
        log_metrics(client, run.info.run_id, {"drift/y": 1.0})
    (point,) = client.get_metric_history(run.info.run_id, "drift/x")
    assert (point.step, point.timestamp, point.value) == (7, 1_795_000_000_000, 0.5)
    assert not client.get_metric_history(run.info.run_id, "drift/nan")  # a number or absent
    (after,) = client.get_metric_history(run.info.run_id, "drift/y")
    assert after.step == 0 and after.timestamp > 1_795_000_000_000  # now, outside the block


def test_dashboard_copies_only_finite_headline_keys():
    metrics = {
        "drift/share_drifted_columns": 0.25,
        "drift/dataset_drift": float("nan"),
        "degradation/accuracy": 0.8,
        "degradation/roc_auc": 0.7,
    }
    assert series.dashboard_metrics(metrics, "accuracy") == {
        "dashboard/share_drifted_columns": 0.25,
        "dashboard/accuracy": 0.8,
    }
    assert series.dashboard_metrics({}, None) == {}
    # Keys sort first in MLflow's UI: the group name is below every other prefix we log.
    assert sorted(["dashboard", "degradation", "drift", "integrity", "traffic"])[0] == "dashboard"


def test_window_record_reads_the_headline_rows_only():
    record = series.window_record(
        window(2),
        2,
        {"drift/tenure/drifted": 1.0, "drift/multivariate/domain_drifted": 1.0, "drift/a/b": 0.1},
        [perf("estimated", 0.85, 0.8, 0.9), perf("estimated", 0.5, metric="f1")],
        "accuracy",
    )
    assert record["drifted"] == {"tenure": 1.0}  # per-column flags only
    assert (record["estimated"], record["estimated_low"], record["estimated_high"]) == (
        0.85,
        0.8,
        0.9,
    )
    assert "realised" not in record and record["reference"] == 0.9
    json.dumps(record, allow_nan=False)  # storable as it is


def test_alert_threshold_from_a_rule_on_the_value_or_the_delta():
    rules = [AlertRule.parse("drift/share_drifted_columns>=0.3")]
    assert series.alert_threshold(rules, "accuracy", 0.9) == (None, None)
    delta = [AlertRule.parse("degradation/accuracy_delta<=-0.05:warning")]
    value, text = series.alert_threshold(delta, "accuracy", 0.9)
    assert math.isclose(value, 0.85) and "accuracy_delta" in text
    assert series.alert_threshold(delta, "accuracy", None) == (None, None)
    absolute = [AlertRule.parse("degradation/estimated_accuracy<0.8")]
    assert series.alert_threshold(absolute, "accuracy", 0.9)[0] == 0.8


def test_charts_draw_odd_tables():
    starts = pd.date_range("2026-11-26", periods=3, freq="h", tz="UTC")
    one = pd.DataFrame({"start": starts[:1], "realised": [0.9]})  # one window, no estimate
    decoded(figure_to_png(plot_performance_over_windows(one, metric="accuracy")))
    gaps = pd.DataFrame(
        {
            "start": starts,
            "estimated": [0.9, np.nan, 0.7],
            "estimated_low": [np.nan, np.nan, 0.6],  # a band on one window only
            "estimated_high": [np.nan, np.nan, 0.8],
        }
    )
    png = figure_to_png(
        plot_performance_over_windows(
            gaps, metric="$rmse", reference=np.inf, threshold=float("nan")
        )
    )
    decoded(png)
    empty = pd.DataFrame({"tenure": [np.nan, np.nan]}, index=starts[:2])  # never compared
    decoded(figure_to_png(plot_drift_heatmap(empty)))


def test_refresh_merges_windows_and_redraws(tracking_uri):
    client = MlflowClient()
    run_id = client.create_run(mlflow.get_experiment_by_name("tests").experiment_id).info.run_id
    assert series.refresh_charts(client, run_id, [], headline=None).keys() == {
        series.WINDOWS_RECORD
    }  # nothing to draw: the record only, no chart, no error
    first = [
        series.window_record(
            window(i),
            i,
            {"drift/tenure/drifted": float(i >= 1)},
            [perf("estimated", 0.9)],
            "accuracy",
        )
        for i in range(2)
    ]
    series.refresh_charts(client, run_id, first, headline="accuracy")
    # The next call brings window 2 and a redone window 1: each window once, in order.
    redone = series.window_record(window(1), 1, {"drift/tenure/drifted": 0.0}, [], "accuracy")
    later = series.window_record(
        window(2), 2, {"drift/tenure/drifted": 1.0}, [perf("realised", 0.7)], "accuracy"
    )
    logged = series.refresh_charts(
        client,
        run_id,
        [later, redone],
        headline="accuracy",
        rules=[AlertRule.parse("degradation/accuracy_delta<=-0.1")],
        label="churn v1",
    )
    assert {series.PERFORMANCE_CHART, series.HEATMAP_CHART} <= logged.keys()
    decoded(logged[series.PERFORMANCE_CHART])
    decoded(logged[series.HEATMAP_CHART])
    stored = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{series.WINDOWS_RECORD}"))
    assert [w["index"] for w in stored["windows"]] == [0, 1, 2]
    assert [w["drifted"]["tenure"] for w in stored["windows"]] == [0.0, 0.0, 1.0]
    table = series.performance_table(stored["windows"])
    assert table["realised"].isna().tolist() == [True, True, False]
    heat = series.heatmap_table(stored["windows"])
    assert list(heat.columns) == ["tenure"] and heat["tenure"].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("n_rows", [0, 1])
def test_window_params_for_tiny_windows(n_rows):
    params = {
        p.key: p.value
        for p in series.window_params(window(0), index=0, n_rows=n_rows, model_version="3")
    }
    assert params["rows"] == str(n_rows) and params["window_end"] > params["window_start"]
