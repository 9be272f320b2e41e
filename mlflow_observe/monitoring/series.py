"""What the monitor adds so that MLflow's UI reads a series at a glance.

- **Window runs as points of a series**: each window run's metrics sit at
  ``step`` = window index and ``timestamp`` = window start
  (:func:`mlflow_observe.tracking.results.metric_position`), and the run has
  params (window start and end, rows, model version, index), so *Compare*
  draws lines over windows and parallel coordinates have axes.
- **Headline charts first**: MLflow's UI groups a run's metric charts by the
  key's prefix and sorts the groups by name, so ``degradation/`` came before
  ``drift/``. The monitor run also gets the headline metrics under
  ``dashboard/`` (sorted first), copies of the keys they mirror.
- **Two pictures per monitor run**, refreshed by every call: the headline
  performance over windows (realised, estimated with its band, reference,
  threshold) and a drift heatmap (columns x windows), drawn from
  ``charts/windows.json``, the per-window record the monitor keeps beside them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings

import pandas as pd
from mlflow.entities import Param

from mlflow_observe.core.performance.metrics import HIGHER_IS_BETTER
from mlflow_observe.monitoring.catalogue import metric_catalogue
from mlflow_observe.monitoring.status import HEADLINES
from mlflow_observe.report.charts import plot_drift_heatmap, plot_performance_over_windows
from mlflow_observe.report.plots import figure_to_png

DASHBOARD = "dashboard/"
# Mirrored under dashboard/ on the monitor run, in this order.
DASHBOARD_DRIFT = ("drift/share_drifted_columns", "drift/dataset_drift")
CHARTS_DIR = "charts"
PERFORMANCE_CHART = f"{CHARTS_DIR}/performance.png"
HEATMAP_CHART = f"{CHARTS_DIR}/drift_heatmap.png"
WINDOWS_RECORD = f"{CHARTS_DIR}/windows.json"
_RECORD_VERSION = 1


def window_params(window, *, index: int, n_rows: int, model_version: str) -> list[Param]:
    """The params of a window run (for parallel coordinates and the runs table).

    >>> from mlflow_observe.monitoring.windows import Window
    >>> w = Window(14, pd.Timestamp("2026-11-26 14:00", tz="UTC"),
    ...            pd.Timestamp("2026-11-26 15:00", tz="UTC"))
    >>> [(p.key, p.value) for p in window_params(w, index=14, n_rows=240, model_version="1")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('window_start', '2026-11-26T14:00:00+00:00'), ('window_end', '2026-11-26T15:00:00+00:00'),
     ('window_index', '14'), ('rows', '240'), ('model_version', '1')]
    """
    return [
        Param("window_start", window.start.isoformat()),
        Param("window_end", window.end.isoformat()),
        Param("window_index", str(int(index))),
        Param("rows", str(int(n_rows))),
        Param("model_version", str(model_version)),
    ]


def chart_links(experiment_id: str, run_id: str) -> str:
    """Markdown links to the monitor run's two charts, for its description.

    >>> chart_links("2", "abc")  # doctest: +NORMALIZE_WHITESPACE
    '[performance by window](#/experiments/2/runs/abc/artifacts/charts/performance.png),
     [drift heatmap](#/experiments/2/runs/abc/artifacts/charts/drift_heatmap.png)'
    """
    base = f"#/experiments/{experiment_id}/runs/{run_id}/artifacts"
    return (
        f"[performance by window]({base}/{PERFORMANCE_CHART}), "
        f"[drift heatmap]({base}/{HEATMAP_CHART})"
    )


def headline_metric(baseline) -> str | None:
    """The headline performance metric of a baseline: the first of ``HEADLINES`` it can have."""
    known = set(metric_catalogue(baseline))
    return next(
        (
            h
            for h in HEADLINES
            if f"degradation/{h}" in known or f"degradation/estimated_{h}" in known
        ),
        None,
    )


def dashboard_metrics(metrics: dict, headline: str | None) -> dict:
    """The ``dashboard/`` copies of a window's headline metrics (those it has).

    >>> dashboard_metrics({"drift/share_drifted_columns": 0.5, "drift/dataset_drift": 1.0,
    ...                    "degradation/estimated_accuracy": 0.8}, "accuracy")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'dashboard/share_drifted_columns': 0.5, 'dashboard/dataset_drift': 1.0,
     'dashboard/estimated_accuracy': 0.8}
    """
    keys = list(DASHBOARD_DRIFT)
    if headline:
        keys += [f"degradation/{headline}", f"degradation/estimated_{headline}"]
    return {
        DASHBOARD + key.rsplit("/", 1)[1]: metrics[key]
        for key in keys
        if key in metrics and math.isfinite(metrics[key])
    }


def window_record(window, index: int, metrics: dict, performance, headline) -> dict:
    """What the charts keep of one evaluated window (``performance``: degradation records)."""
    record = {
        "index": int(index),
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "drifted": {
            key[len("drift/") : -len("/drifted")]: float(value)
            for key, value in metrics.items()
            if key.endswith("/drifted") and key.count("/") == 2 and math.isfinite(value)
        },
    }
    for row in performance or ():
        if row.get("metric") != headline:
            continue
        if row.get("kind") == "estimated":
            record["estimated"] = row.get("value")
            record["estimated_low"] = row.get("band_low")
            record["estimated_high"] = row.get("band_high")
        else:
            record["realised"] = row.get("value")
        record["reference"] = row.get("baseline")
        record["margin"] = row.get("margin")
    return record


def alert_threshold(rules, headline: str, reference: float | None):
    """The value at which an alert rule on the headline metric fires, and the rule's text.

    A rule on ``degradation/<metric>`` (or its estimate) fires at its value; a
    rule on ``..._delta`` at the reference plus its value. None when no rule
    names the headline.
    """
    for rule in rules:
        value = rule.value if isinstance(rule.value, (int, float)) else None
        if value is None:
            continue
        if rule.metric in (f"degradation/{headline}", f"degradation/estimated_{headline}"):
            return float(value), str(rule)
        if reference is not None and rule.metric in (
            f"degradation/{headline}_delta",
            f"degradation/estimated_{headline}_delta",
        ):
            return float(reference) + float(value), str(rule)
    return None, None


def refresh_charts(client, run_id: str, records: list, *, headline, rules=(), label="") -> dict:
    """Merge new window records into the monitor run's record and redraw its two charts.

    Returns ``{artifact path: bytes}`` of what was logged. A chart that cannot
    be drawn warns and is left out; it never fails the monitor.
    """
    stored = _load_record(client, run_id)
    by_index = {r["index"]: r for r in stored.get("windows", [])}
    by_index.update({r["index"]: r for r in records})
    windows = [by_index[i] for i in sorted(by_index)]
    document = {"version": _RECORD_VERSION, "headline": headline, "windows": windows}
    logged = {WINDOWS_RECORD: json.dumps(document, indent=1, allow_nan=False).encode()}
    for path, draw in (
        (PERFORMANCE_CHART, lambda: _performance_figure(windows, headline, rules, label)),
        (HEATMAP_CHART, lambda: _heatmap_figure(windows, label)),
    ):
        try:
            figure = draw()
            if figure is not None:
                logged[path] = figure_to_png(figure)
        except Exception as exc:  # a chart must never fail the monitor
            warnings.warn(f"Failed to log image artifact {path!r}: {exc!r}", stacklevel=2)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, CHARTS_DIR))
        for path, content in logged.items():
            with open(os.path.join(tmp, path), "wb") as fh:
                fh.write(content)
        client.log_artifacts(run_id, os.path.join(tmp, CHARTS_DIR), artifact_path=CHARTS_DIR)
    return logged


def performance_table(windows: list) -> pd.DataFrame:
    """One row per window: ``start``, ``realised``, ``estimated`` and the estimate's band."""
    columns = ["realised", "estimated", "estimated_low", "estimated_high"]
    rows = [
        {"start": pd.Timestamp(w["start"]), **{c: _number(w.get(c)) for c in columns}}
        for w in windows
    ]
    return pd.DataFrame(rows, columns=["start", *columns])


def heatmap_table(windows: list) -> pd.DataFrame:
    """Window starts x columns: 1.0 drifted, 0.0 not, NaN not compared."""
    frame = pd.DataFrame(
        [w.get("drifted", {}) for w in windows],
        index=pd.DatetimeIndex([pd.Timestamp(w["start"]) for w in windows]),
        dtype=float,
    )
    # Columns that drift most often first.
    return frame[frame.mean().sort_values(ascending=False, kind="stable").index]


def _performance_figure(windows, headline, rules, label):
    if not headline:
        return None
    table = performance_table(windows)
    if table[["realised", "estimated"]].isna().all().all():
        return None
    reference = next((w["reference"] for w in reversed(windows) if w.get("reference")), None)
    threshold, rule = alert_threshold(rules, headline, reference)
    threshold_label = f"alert: {rule}" if rule else "alert threshold"
    if threshold is None and reference is not None:
        # No alert rule on it: the degradation rule's own limit (reference -/+ margin).
        margin = next((w["margin"] for w in reversed(windows) if w.get("margin")), None)
        if margin is not None:
            sign = -1.0 if HIGHER_IS_BETTER.get(headline, True) else 1.0
            threshold, threshold_label = reference + sign * margin, "degraded beyond"
    return plot_performance_over_windows(
        table,
        metric=headline,
        reference=reference,
        threshold=threshold,
        threshold_label=threshold_label,
        title=f"{label}: {headline} by window".strip(": "),
    )


def _heatmap_figure(windows, label):
    table = heatmap_table(windows)
    if table.empty or table.shape[1] == 0:
        return None
    return plot_drift_heatmap(table, title=f"{label}: drift by column and window".strip(": "))


def _load_record(client, run_id: str) -> dict:
    """The monitor run's ``charts/windows.json``; empty when it has none (yet)."""
    if not any(f.path == WINDOWS_RECORD for f in client.list_artifacts(run_id, CHARTS_DIR)):
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, WINDOWS_RECORD, tmp)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)


def _number(value) -> float:
    return float(value) if value is not None else float("nan")
