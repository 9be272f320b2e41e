"""The ``drift`` evaluator: ``mlflow.models.evaluate(..., evaluators="drift")``.

A thin adapter: it turns MLflow's evaluation dataset into a window frame, runs
the core comparison against the baseline named in the config, and logs the
results to the evaluation run as metrics, tables, a report and plots.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings

import numpy as np
import pandas as pd
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
from mlflow.models.evaluation.artifacts import (
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    TextEvaluationArtifact,
)
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.tracking import MlflowClient
from mlflow.tracking.artifact_utils import get_artifact_uri
from mlflow.utils.time import get_current_time_millis

from mlflow_observe._version import __version__
from mlflow_observe.core.compare import EmptyWindowError, WindowComparison, compare
from mlflow_observe.core.drift import DRIFT, SKIPPED, WARNING, DriftOptions
from mlflow_observe.core.profile import DataProfile
from mlflow_observe.logs.schema import TIMESTAMP, log_bookkeeping_columns
from mlflow_observe.plugins.flavor import no_prediction_logs
from mlflow_observe.report.html import IMPACT_PLOT, render_report
from mlflow_observe.report.plots import figure_to_png, plot_column, plot_impact
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.baselines import load_baseline

_logger = logging.getLogger(__name__)

# MLflow accepts at most this many metrics in one log_batch call.
_MAX_METRICS_PER_BATCH = 1000
# Keys of the evaluator config besides the DriftOptions fields.
_EVALUATOR_KEYS = {"baseline", "max_plots", "chunk_size", "n_jobs", "col_mapping", "log_plots",
                   "progress"}
TABLE_ARTIFACT = "drift_table.json"
FINDINGS_ARTIFACT = "integrity_findings.json"
REPORT_ARTIFACT = "drift_report.html"
SEGMENTS_ARTIFACT = "drift_segments.json"
IMPACT_ARTIFACT = "drift_impact.json"
PLOTS_DIR = "drift_plots"


class DriftEvaluator(ModelEvaluator):
    """Compares the evaluation data with a baseline profile recorded by a training run.

    Config keys (``evaluator_config``)
    ----------------------------------
    baseline : str or DataProfile (required)
        A run id, ``runs:/<id>``, ``models:/<name>/<version>``,
        ``models:/<name>@<alias>``, a profile file, or a profile object.
    method, methods, threshold, thresholds, small_sample_size, drift_share,
    dataset_method, alpha, warning_ratio, missing_rate_tolerance :
        The :class:`~mlflow_observe.core.drift.DriftOptions`.
    multivariate : bool, default=False
        Also run the multivariate detectors (domain classifier, PCA
        reconstruction error) on the baseline's and the window's row samples:
        metrics ``drift/multivariate/...``, two records in the table, a report section.
    segment_by : list of str, optional
        Also compare each segment of the window (rows sharing a value of one of
        these columns) with the whole baseline: metrics ``drift/n_segments`` and
        ``drift/n_drifted_segments``, ``drift_segments.json``, a report section.
    min_segment_size : int, default=200
        Values with fewer rows are pooled into one ``(other)`` segment per column.
    max_segments : int, default=50
        Values per segment column counted on their own; later ones join ``(other)``.

    When the baseline recorded the model's feature impact (``log_baseline(...,
    model=...)`` or ``mlflow_observe.log_model``), the features are ranked by
    impact x drift (``drift_impact.json``, a report section and plot, the tag
    ``mlflow_observe.drift.top_impact_feature``); with a model to evaluate,
    each top feature's share of the prediction drift is measured too.
    detectors : list of str, optional
        alibi-detect detectors by name (``["alibi:mmd", "alibi:ks"]``; extra
        ``alibi``): metrics ``drift/alibi/<detector>/...``, one record each in
        the table, a report section.
    max_plots : int, default=6
        Distribution plots for the most drifted columns.
    chunk_size : int, optional
        Count the window this many rows at a time.
    n_jobs : int, optional
        Threads that count columns (default: every core; 1: no threads).
    log_plots : bool, default=True
        Log distribution plots (and embed them in the report).
    progress : bool, optional
        A bar over the counted batches (default: when stderr is a terminal).

    Examples
    --------
    Opt-in: without a baseline in its config the evaluator declines.

    >>> DriftEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    False
    >>> DriftEvaluator.can_evaluate(model_type=None, evaluator_config={"baseline": "runs:/abc"})
    True
    """

    name = "drift"

    @classmethod
    def can_evaluate(cls, *, model_type, evaluator_config, **kwargs) -> bool:
        # Opt-in: MLflow offers every installed evaluator to every evaluate() call,
        # so only answer when given a baseline.
        return isinstance(evaluator_config, dict) and "baseline" in evaluator_config

    def evaluate(self, *, model_type, dataset, run_id, evaluator_config, model=None,
                 predictions=None, **kwargs) -> EvaluationResult:
        options = read_options(evaluator_config)
        baseline = load_baseline(evaluator_config["baseline"])
        window = _window_frame(dataset, model, predictions, baseline)
        predict = None if model is None else (lambda frame: _predict(model, frame, predictions))
        try:
            # Predictions made to explain drift are not traffic: keep them out of the log.
            with no_prediction_logs():
                comparison = compare(
                    baseline, window, options, chunk_size=evaluator_config.get("chunk_size"),
                    n_jobs=evaluator_config.get("n_jobs"), predict=predict,
                    progress=evaluator_config.get("progress"),
                )
        except EmptyWindowError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return log_comparison(run_id, comparison, baseline, options, evaluator_config,
                              _time_range(dataset.features_data))


def log_comparison(run_id, comparison, baseline, options, config, window_range) -> EvaluationResult:
    """Log a window's comparison to a run: metrics, tables, plots, report and tags."""
    client = MlflowClient()
    metrics = comparison.metrics()
    _log_metrics(client, run_id, metrics)
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts.update(_log_tables(client, run_id, comparison, tmp))
        plots = {}
        if config.get("log_plots", True):
            plots = _plot_most_drifted(comparison, baseline, config.get("max_plots", 6))
            artifacts.update(_log_plots(client, run_id, plots, comparison, tmp))
            plots.update(_log_impact_plot(client, run_id, comparison, tmp, artifacts))
        artifacts.update(_log_report(client, run_id, comparison, baseline, options, plots, tmp))
    _log_tags(client, run_id, comparison, baseline, config["baseline"], window_range)
    return EvaluationResult(metrics=metrics, artifacts=artifacts, run_id=run_id)


def read_options(config: dict) -> DriftOptions:
    option_keys = set(DriftOptions.__dataclass_fields__)
    unknown = set(config) - option_keys - _EVALUATOR_KEYS
    if unknown:
        raise MlflowException(
            f"Unknown drift evaluator config keys: {sorted(unknown)}. Valid keys: "
            f"{sorted(option_keys | _EVALUATOR_KEYS)}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    try:
        return DriftOptions.from_config(config)
    except ValueError as exc:
        raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc


def _window_frame(dataset, model, predictions, baseline: DataProfile) -> pd.DataFrame:
    """The window as one frame: features, then predictions and labels under the baseline's names."""
    features = dataset.features_data
    if not isinstance(features, pd.DataFrame):
        features = pd.DataFrame(np.asarray(features), columns=dataset.feature_names)
    # A window read from the prediction log carries bookkeeping columns: not features.
    frame = prepare_window_part(features, baseline).copy(deep=False)
    output = None
    if dataset.has_predictions:
        output = dataset.predictions_data
    elif model is not None:
        output = _predict(model, features, predictions)
    if output is not None and baseline.predictions is not None:
        values = np.asarray(output)
        if values.ndim > 1:  # e.g. class probabilities: compare the first output column
            values = values.reshape(len(frame), -1)[:, 0]
        frame[baseline.predictions] = values
    if dataset.has_targets and baseline.targets is not None:
        frame[baseline.targets] = np.asarray(dataset.labels_data)
    return frame


def prepare_window_part(frame: pd.DataFrame, baseline: DataProfile, *, predictions=None,
                        targets=None) -> pd.DataFrame:
    """A part of a streamed window as the baseline sees it.

    The log's bookkeeping columns are dropped, and the prediction and label
    columns are renamed to the baseline's names.
    """
    renames = {}
    for column, wanted in ((predictions, baseline.predictions), (targets, baseline.targets)):
        if column and wanted and column in frame.columns and column != wanted:
            renames[column] = wanted
    drop = [c for c in log_bookkeeping_columns(frame.columns)
            if c not in baseline.columns and c not in renames]
    unused_outputs = [c for c in (predictions, targets)
                      if c and c in frame.columns and c not in renames and c not in baseline.columns]
    frame = frame.drop(columns=drop + unused_outputs) if drop or unused_outputs else frame
    return frame.rename(columns=renames) if renames else frame


def _predict(model, features: pd.DataFrame, column: str | None):
    output = model.predict(features)
    if isinstance(output, pd.DataFrame):
        if column is not None and column in output.columns:
            return output[column].to_numpy()
        return output.iloc[:, 0].to_numpy()
    if isinstance(output, pd.Series):
        return output.to_numpy()
    return np.asarray(output)


def _log_metrics(client: MlflowClient, run_id: str, metrics: dict) -> None:
    timestamp = get_current_time_millis()
    entries = [Metric(key, float(value), timestamp, 0) for key, value in metrics.items()
               if np.isfinite(value)]
    for start in range(0, len(entries), _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[start:start + _MAX_METRICS_PER_BATCH])


def _write_and_log(client, run_id, tmp, relative_path, content: str | bytes):
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
    table_uri = _write_and_log(client, run_id, tmp, TABLE_ARTIFACT,
                               json.dumps(table, indent=1, allow_nan=False, default=_json_default))
    findings_uri = _write_and_log(client, run_id, tmp, FINDINGS_ARTIFACT,
                                  json.dumps(findings, indent=1, allow_nan=False,
                                             default=_json_default))
    artifacts = {
        "drift_table": JsonEvaluationArtifact(uri=table_uri, content=table),
        "integrity_findings": JsonEvaluationArtifact(uri=findings_uri, content=findings),
    }
    extra = {}
    if comparison.segments is not None:
        extra["drift_segments"] = (SEGMENTS_ARTIFACT,
                                   [s.to_record() for s in comparison.segments])
    if comparison.impact is not None:
        extra["drift_impact"] = (IMPACT_ARTIFACT, comparison.impact.to_dict())
    for name, (path, content) in extra.items():
        uri = _write_and_log(client, run_id, tmp, path, json.dumps(
            content, indent=1, allow_nan=False, default=_json_default))
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
    uri = _write_and_log(client, run_id, tmp, f"{PLOTS_DIR}/drift_impact.png", png)
    artifacts["drift_impact_plot"] = ImageEvaluationArtifact(uri=uri)
    return {IMPACT_PLOT: png}


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
        (c for c in comparison.drift.columns if c.status != SKIPPED),
        key=lambda c: ({DRIFT: 0, WARNING: 1}.get(c.status, 2), -c.severity),
    )
    plots = {}
    for column in ranked[:max_plots]:
        title = f"{column.column}: {column.method} = {column.statistic:.3g} ({column.status})"
        try:
            figure = plot_column(baseline.columns[column.column],
                                 comparison.current.columns[column.column], title=title)
            plots[column.column] = figure_to_png(figure)
        except Exception as exc:  # a plot must never fail the evaluation
            warnings.warn(f"Failed to log image artifact {column.column!r}: {exc!r}", stacklevel=2)
    return plots


def _log_plots(client, run_id, plots: dict, comparison, tmp) -> dict:
    names = {c.column: c.metric_name for c in comparison.drift.columns}
    artifacts = {}
    for column, png in plots.items():
        relative = f"{PLOTS_DIR}/{names[column]}.png"
        uri = _write_and_log(client, run_id, tmp, relative, png)
        artifacts[f"drift_plot_{names[column]}"] = ImageEvaluationArtifact(uri=uri)
    return artifacts


def _log_report(client, run_id, comparison, baseline, options, plots, tmp) -> dict:
    label = baseline.metadata.get("source_uri") or baseline.metadata.get("source_run_id") or ""
    page = render_report(comparison, baseline=baseline, options=options, baseline_label=label,
                         plots=plots)
    uri = _write_and_log(client, run_id, tmp, REPORT_ARTIFACT, page)
    return {"drift_report": TextEvaluationArtifact(uri=uri, content=page)}


def _time_range(features) -> dict:
    """The window's first and last timestamps as tags, when it came from the prediction log."""
    bounds = timestamp_bounds(features)
    if bounds is None:
        return {}
    return {tags.WINDOW_START: bounds[0].isoformat(), tags.WINDOW_END: bounds[1].isoformat()}


def timestamp_bounds(features):
    """``(first, last)`` of a frame's log ``timestamp`` column, or None."""
    if not isinstance(features, pd.DataFrame) or TIMESTAMP not in features.columns:
        return None
    stamps = pd.to_datetime(features[TIMESTAMP], utc=True, errors="coerce").dropna()
    return None if stamps.empty else (stamps.min(), stamps.max())


def _log_tags(client, run_id, comparison, baseline, reference, window_range) -> None:
    drifted = ", ".join(comparison.drift.drifted_columns)
    values = {
        tags.VERSION: __version__,
        tags.DRIFT_STATUS: comparison.drift.status,
        tags.DRIFTED_COLUMNS: drifted[:4000],
        tags.WINDOW_ROWS: str(comparison.drift.n_current),
        tags.BASELINE_URI: str(reference) if isinstance(reference, (str, os.PathLike))
        else baseline.metadata.get("source_uri", "profile object"),
    }
    if baseline.metadata.get("source_run_id"):
        values[tags.BASELINE_RUN_ID] = baseline.metadata["source_run_id"]
    if comparison.impact is not None and comparison.impact.top_feature is not None:
        values[tags.TOP_IMPACT_FEATURE] = comparison.impact.top_feature[:4000]
    values.update(window_range)
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in values.items()])
