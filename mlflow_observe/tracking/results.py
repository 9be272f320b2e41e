"""Log a result to an MLflow run: metrics in batches, JSON tables, plots, an HTML report, tags.

One path for every engine: the evaluators, the streamed and Spark windows of
:mod:`mlflow_observe.evaluation` and the monitor all log a drift comparison
with :func:`log_drift_result` and a degradation result with
:func:`log_degradation_result`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import tempfile
import warnings

import numpy as np
from mlflow.entities import Metric, RunTag
from mlflow.models.evaluation import EvaluationResult
from mlflow.models.evaluation.artifacts import (
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    TextEvaluationArtifact,
)
from mlflow.tracking import MlflowClient
from mlflow.tracking.artifact_utils import get_artifact_uri
from mlflow.utils.time import get_current_time_millis

from mlflow_observe._version import __version__
from mlflow_observe.core.drift.options import DRIFT, SKIPPED, WARNING
from mlflow_observe.core.drift.window import WindowComparison
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.report.html import (
    ATTRIBUTION_PLOT,
    IMPACT_PLOT,
    render_degradation_report,
    render_report,
)
from mlflow_observe.report.plots import (
    figure_to_png,
    plot_attribution,
    plot_column,
    plot_impact,
    plot_performance,
)
from mlflow_observe.tracking import tags

# MLflow accepts at most this many metrics in one log_batch call.
MAX_METRICS_PER_BATCH = 1000
TABLE_ARTIFACT = "drift_table.json"
FINDINGS_ARTIFACT = "integrity_findings.json"
REPORT_ARTIFACT = "drift_report.html"
SEGMENTS_ARTIFACT = "drift_segments.json"
IMPACT_ARTIFACT = "drift_impact.json"
ATTRIBUTION_ARTIFACT = "drift_attribution.json"
PLOTS_DIR = "drift_plots"
DEGRADATION_TABLE_ARTIFACT = "degradation_table.json"
DEGRADATION_REPORT_ARTIFACT = "degradation_report.html"
DEGRADATION_PLOT_ARTIFACT = "degradation_plot.png"


def log_drift_result(
    run_id, comparison, baseline, options, config, window_range
) -> EvaluationResult:
    """Log a window's comparison to a run: metrics, tables, plots, report and tags."""
    client = MlflowClient()
    metrics = comparison.metrics()
    log_metrics(client, run_id, metrics)
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts.update(_log_tables(client, run_id, comparison, tmp))
        plots = {}
        if config.get("log_plots", True):
            plots = _plot_most_drifted(comparison, baseline, config.get("max_plots", 6))
            artifacts.update(_log_plots(client, run_id, plots, comparison, tmp))
            plots.update(_log_impact_plot(client, run_id, comparison, tmp, artifacts))
            plots.update(_log_attribution_plot(client, run_id, comparison, tmp, artifacts))
        artifacts.update(_log_report(client, run_id, comparison, baseline, options, plots, tmp))
    _log_tags(client, run_id, comparison, baseline, config["baseline"], window_range)
    return EvaluationResult(metrics=metrics, artifacts=artifacts, run_id=run_id)


def time_range_tags(bounds) -> dict:
    """Tags for the window's first and last row timestamps (``bounds``: timestamps, or empty)."""
    if not bounds:
        return {}
    bounds = (min(bounds), max(bounds))
    return {tags.DATA_FIRST_ROW: bounds[0].isoformat(), tags.DATA_LAST_ROW: bounds[1].isoformat()}


# (step, timestamp in ms) for the metrics logged inside ``metric_position``; None: step 0, now.
_POSITION: contextvars.ContextVar = contextvars.ContextVar("metric_position", default=None)


@contextlib.contextmanager
def metric_position(step: int, timestamp_ms: int):
    """Log the metrics of the results logged in this block at ``step`` and ``timestamp_ms``.

    The monitor evaluates window ``i`` (starting at ``t``) inside
    ``metric_position(i, t)``, so a window run's metrics sit at the window's index
    and start, and MLflow's comparison and chart views draw them over windows.

    Examples
    --------
    >>> with metric_position(3, 1_700_000_000_000):
    ...     _position()
    (3, 1700000000000)
    >>> _position()[0]
    0
    """
    token = _POSITION.set((int(step), int(timestamp_ms)))
    try:
        yield
    finally:
        _POSITION.reset(token)


def _position() -> tuple[int, int]:
    return _POSITION.get() or (0, get_current_time_millis())


def log_metrics(client: MlflowClient, run_id: str, metrics: dict) -> None:
    step, timestamp = _position()
    entries = [
        Metric(key, float(value), timestamp, step)
        for key, value in metrics.items()
        if np.isfinite(value)
    ]
    for start in range(0, len(entries), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[start : start + MAX_METRICS_PER_BATCH])


def write_and_log(client, run_id, tmp, relative_path, content: str | bytes):
    path = os.path.join(tmp, relative_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode, **({} if isinstance(content, bytes) else {"encoding": "utf-8"})) as fh:
        fh.write(content)
    directory = os.path.dirname(relative_path) or None
    client.log_artifact(run_id, path, artifact_path=directory)
    return get_artifact_uri(run_id, relative_path)


def _log_tables(client, run_id, comparison: WindowComparison, tmp) -> dict:
    table = comparison.to_records()
    findings = comparison.integrity.to_records()
    table_uri = write_and_log(
        client,
        run_id,
        tmp,
        TABLE_ARTIFACT,
        json.dumps(table, indent=1, allow_nan=False, default=_json_default),
    )
    findings_uri = write_and_log(
        client,
        run_id,
        tmp,
        FINDINGS_ARTIFACT,
        json.dumps(findings, indent=1, allow_nan=False, default=_json_default),
    )
    artifacts = {
        "drift_table": JsonEvaluationArtifact(uri=table_uri, content=table),
        "integrity_findings": JsonEvaluationArtifact(uri=findings_uri, content=findings),
    }
    extra = {}
    if comparison.segments is not None:
        extra["drift_segments"] = (SEGMENTS_ARTIFACT, _segment_records(comparison.segments))
    if comparison.impact is not None:
        extra["drift_impact"] = (IMPACT_ARTIFACT, comparison.impact.to_dict())
    attribution = comparison.attribution
    if attribution is not None and hasattr(attribution, "feature_records"):
        extra["drift_attribution"] = (ATTRIBUTION_ARTIFACT, attribution.to_records()[0])
    for name, (path, content) in extra.items():
        uri = write_and_log(
            client,
            run_id,
            tmp,
            path,
            json.dumps(content, indent=1, allow_nan=False, default=_json_default),
        )
        artifacts[name] = JsonEvaluationArtifact(uri=uri, content=content)
    return artifacts


def _log_impact_plot(client, run_id, comparison, tmp, artifacts) -> dict:
    """The drift impact plot, logged and handed to the report."""
    impact = comparison.impact
    if impact is None or not impact.ranking:
        return {}
    try:
        png = figure_to_png(plot_impact(impact))
    except Exception as exc:  # a plot must never fail the evaluation
        warnings.warn(f"Failed to log image artifact 'drift_impact': {exc!r}", stacklevel=2)
        return {}
    uri = write_and_log(client, run_id, tmp, f"{PLOTS_DIR}/drift_impact.png", png)
    artifacts["drift_impact_plot"] = ImageEvaluationArtifact(uri=uri)
    return {IMPACT_PLOT: png}


def _log_attribution_plot(client, run_id, comparison, tmp, artifacts) -> dict:
    """Baseline against window shares (attribution drift), logged and handed to the report."""
    result = comparison.attribution
    if result is None or not hasattr(result, "share_change"):
        return {}
    try:
        png = figure_to_png(plot_attribution(result))
    except Exception as exc:  # a plot must never fail the evaluation
        warnings.warn(f"Failed to log image artifact 'attribution_drift': {exc!r}", stacklevel=2)
        return {}
    uri = write_and_log(client, run_id, tmp, f"{PLOTS_DIR}/attribution_drift.png", png)
    artifacts["attribution_drift_plot"] = ImageEvaluationArtifact(uri=uri)
    return {ATTRIBUTION_PLOT: png}


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    raise TypeError(f"Cannot serialise {type(value).__name__}")


def _plot_most_drifted(comparison: WindowComparison, baseline: DataProfile, max_plots: int):
    """PNG bytes for the columns with the largest drift, keyed by column."""
    ranked = sorted(
        # Text and embedding rows have no distribution to draw; their descriptors do.
        (
            c
            for c in comparison.drift.columns
            if c.status != SKIPPED and c.column in baseline.columns
        ),
        key=lambda c: ({DRIFT: 0, WARNING: 1}.get(c.status, 2), -c.severity),
    )
    plots = {}
    for column in ranked[:max_plots]:
        title = f"{column.column}: {column.method} = {column.statistic:.3g} ({column.status})"
        try:
            figure = plot_column(
                baseline.columns[column.column],
                comparison.current.columns[column.column],
                title=title,
            )
            plots[column.column] = figure_to_png(figure)
        except Exception as exc:  # a plot must never fail the evaluation
            warnings.warn(f"Failed to log image artifact {column.column!r}: {exc!r}", stacklevel=2)
    return plots


def _log_plots(client, run_id, plots: dict, comparison, tmp) -> dict:
    names = {c.column: c.metric_name for c in comparison.drift.columns}
    artifacts = {}
    for column, png in plots.items():
        relative = f"{PLOTS_DIR}/{names[column]}.png"
        uri = write_and_log(client, run_id, tmp, relative, png)
        artifacts[f"drift_plot_{names[column]}"] = ImageEvaluationArtifact(uri=uri)
    return artifacts


def _log_report(client, run_id, comparison, baseline, options, plots, tmp) -> dict:
    label = baseline.metadata.get("source_uri") or baseline.metadata.get("source_run_id") or ""
    page = render_report(
        comparison, baseline=baseline, options=options, baseline_label=label, plots=plots
    )
    uri = write_and_log(client, run_id, tmp, REPORT_ARTIFACT, page)
    return {"drift_report": TextEvaluationArtifact(uri=uri, content=page)}


def _log_tags(client, run_id, comparison, baseline, reference, window_range) -> None:
    drifted = ", ".join(comparison.drift.drifted_columns)
    values = {
        tags.PLUGIN_VERSION: __version__,
        tags.DRIFT_STATUS: comparison.drift.status,
        tags.DRIFTED_COLUMNS: drifted[:4000],
        tags.DATA_N_ROWS: str(comparison.drift.n_current),
        tags.BASELINE_URI: str(reference)
        if isinstance(reference, (str, os.PathLike))
        else baseline.metadata.get("source_uri", "profile object"),
    }
    if baseline.metadata.get("source_run_id"):
        values[tags.BASELINE_RUN_ID] = baseline.metadata["source_run_id"]
    if comparison.impact is not None and comparison.impact.top_feature is not None:
        values[tags.TOP_IMPACT_FEATURE] = comparison.impact.top_feature[:4000]
    values.update(window_range)
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in values.items()])


def log_degradation_result(
    run_id, result, segments, baseline, reference, *, errors=None
) -> EvaluationResult:
    """Log a degradation result (and its segments) to a run: metrics, table, plot, report, tags.

    ``errors`` (an :class:`~mlflow_observe.core.explain.errors.ErrorAttribution`) names
    the features behind the errors, in the table and the report.
    """
    client = MlflowClient()
    metrics = result.metrics()
    if segments:
        metrics["degradation/n_segments"] = float(len(segments))
        metrics["degradation/n_degraded_segments"] = float(sum(s.result.degraded for s in segments))
    log_metrics(client, run_id, metrics)
    table = result.to_records()
    label = baseline.metadata.get("source_uri") or baseline.metadata.get("source_run_id") or ""
    png = _plot_performance(result)
    page = render_degradation_report(
        result, baseline_label=label, plot=png, segments=segments, errors=errors
    )
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        if png is not None:
            uri = write_and_log(client, run_id, tmp, DEGRADATION_PLOT_ARTIFACT, png)
            artifacts["degradation_plot"] = ImageEvaluationArtifact(uri=uri)
        table_uri = write_and_log(
            client,
            run_id,
            tmp,
            DEGRADATION_TABLE_ARTIFACT,
            json.dumps(
                {
                    "task": result.task,
                    "kind": result.kind,
                    "findings": result.findings,
                    "metrics": table,
                    "segments": _segment_records(segments),
                    **({} if errors is None else {"error_attribution": errors.to_dict()}),
                },
                indent=1,
                allow_nan=False,
            ),
        )
        report_uri = write_and_log(client, run_id, tmp, DEGRADATION_REPORT_ARTIFACT, page)
    values = {
        tags.PLUGIN_VERSION: __version__,
        tags.DEGRADATION_STATUS: "degraded" if result.degraded else "ok",
        tags.DEGRADATION_KIND: result.kind,
        tags.BASELINE_URI: str(reference)
        if isinstance(reference, (str, os.PathLike))
        else baseline.metadata.get("source_uri", "profile object"),
    }
    if baseline.metadata.get("source_run_id"):
        values[tags.BASELINE_RUN_ID] = baseline.metadata["source_run_id"]
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in values.items()])
    return EvaluationResult(
        metrics=metrics,
        run_id=run_id,
        artifacts={
            **artifacts,
            "degradation_table": JsonEvaluationArtifact(uri=table_uri, content=table),
            "degradation_report": TextEvaluationArtifact(uri=report_uri, content=page),
        },
    )


def _segment_records(segments) -> list[dict]:
    return [record for s in segments for record in s.to_records()]


def _plot_performance(result):
    if not result.metric_results:
        return None
    try:
        return figure_to_png(plot_performance(result))
    except Exception as exc:  # a plot must never fail the evaluation
        warnings.warn(
            f"Failed to log image artifact {DEGRADATION_PLOT_ARTIFACT!r}: {exc!r}", stacklevel=2
        )
        return None
