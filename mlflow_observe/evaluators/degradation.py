"""The ``degradation`` evaluator: performance against the baseline, with labels or without.

With labels in the evaluation data the metrics are realised; without, they are
estimated from the calibrated probabilities (binary classifiers). Results go to
the run as ``degradation/...`` metrics, ``degradation_table.json`` and
``degradation_report.html``.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings

import numpy as np
import pandas as pd
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException
from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
from mlflow.models.evaluation.artifacts import (
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    TextEvaluationArtifact,
)
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.tracking import MlflowClient

from mlflow_observe._version import __version__
from mlflow_observe.core.degradation import (
    DegradationError,
    compare_performance,
    compare_segments,
)
from mlflow_observe.evaluators.drift import _log_metrics, _predict, _write_and_log
from mlflow_observe.report.html import render_degradation_report
from mlflow_observe.report.plots import figure_to_png, plot_performance
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.baselines import load_baseline

TABLE_ARTIFACT = "degradation_table.json"
REPORT_ARTIFACT = "degradation_report.html"
PLOT_ARTIFACT = "degradation_plot.png"
_CONFIG_KEYS = {"baseline", "tolerance", "random_state", "col_mapping", "segment_by",
                "min_segment_size"}


class DegradationEvaluator(ModelEvaluator):
    """Compares the window's model performance with the baseline's.

    Config keys (``evaluator_config``)
    ----------------------------------
    baseline : str or DataProfile (required)
        Recorded with labels and predictions (and probabilities, to estimate).
    tolerance : float, default=0.02
        Relative slack beyond the baseline's bootstrap interval before a metric
        counts as degraded.
    random_state : int, default=0
        Seed of the estimation band.
    segment_by : list of str, optional
        Columns of the data: the same metrics for each of their values.
    min_segment_size : int, default=200
        Values with fewer rows are pooled into one ``(other)`` segment per
        column (skipped if still smaller).

    Examples
    --------
    >>> DegradationEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    False
    """

    name = "degradation"

    @classmethod
    def can_evaluate(cls, *, model_type, evaluator_config, **kwargs) -> bool:
        return isinstance(evaluator_config, dict) and "baseline" in evaluator_config

    def evaluate(self, *, model_type, dataset, run_id, evaluator_config, model=None,
                 predictions=None, **kwargs) -> EvaluationResult:
        unknown = set(evaluator_config) - _CONFIG_KEYS
        if unknown:
            raise MlflowException(f"Unknown degradation evaluator config keys: {sorted(unknown)}. "
                                  f"Valid keys: {sorted(_CONFIG_KEYS)}.",
                                  error_code=INVALID_PARAMETER_VALUE)
        baseline = load_baseline(evaluator_config["baseline"])
        features = dataset.features_data
        if dataset.has_predictions:
            y_pred = np.asarray(dataset.predictions_data)
        elif model is not None:
            y_pred = _predict(model, features, predictions)
        else:
            y_pred = None
        proba = _probabilities(features, baseline.performance)
        y_true = np.asarray(dataset.labels_data) if dataset.has_targets else None
        try:
            result = compare_performance(
                baseline.performance, y_true=y_true, y_pred=y_pred, proba=proba,
                features=features if isinstance(features, pd.DataFrame) else None,
                tolerance=evaluator_config.get("tolerance", 0.02),
                random_state=evaluator_config.get("random_state", 0))
            segments = _segments(evaluator_config, features, baseline, y_true, y_pred, proba)
        except DegradationError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        return _log(run_id, result, segments, baseline, evaluator_config["baseline"])


def _segments(config, features, baseline, y_true, y_pred, proba):
    columns = config.get("segment_by") or []
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in getattr(features, "columns", [])]
    if missing:
        raise DegradationError(f"segment_by columns not in the data: {missing}.")
    if not columns:
        return []
    return compare_segments(baseline.performance, features[columns], y_true=y_true,
                            y_pred=y_pred, proba=proba, features=features,
                            min_size=config.get("min_segment_size", 200),
                            tolerance=config.get("tolerance", 0.02),
                            random_state=config.get("random_state", 0))


def _segment_records(segments) -> list[dict]:
    return [{"column": s.column, "value": s.value, "n_rows": s.n_rows,
             "degraded": s.result.degraded, "worst_relative_change": s.worst_change(),
             "metrics": s.result.to_records()} for s in segments]


def _probabilities(features, performance):
    names = (performance or {}).get("probabilities") or []
    if not names or not isinstance(features, pd.DataFrame):
        return None
    if not all(name in features.columns for name in names):
        return None
    return features[names].to_numpy(dtype=float)


def _log(run_id, result, segments, baseline, reference) -> EvaluationResult:
    client = MlflowClient()
    metrics = result.mlflow_metrics()
    if segments:
        metrics["degradation/n_segments"] = float(len(segments))
        metrics["degradation/n_degraded_segments"] = float(
            sum(s.result.degraded for s in segments))
    _log_metrics(client, run_id, metrics)
    table = result.to_records()
    label = baseline.metadata.get("source_uri") or baseline.metadata.get("source_run_id") or ""
    png = _plot(result)
    page = render_degradation_report(result, baseline_label=label, plot=png, segments=segments)
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        if png is not None:
            uri = _write_and_log(client, run_id, tmp, PLOT_ARTIFACT, png)
            artifacts["degradation_plot"] = ImageEvaluationArtifact(uri=uri)
        table_uri = _write_and_log(client, run_id, tmp, TABLE_ARTIFACT,
                                   json.dumps({"task": result.task, "kind": result.kind,
                                               "findings": result.findings, "metrics": table,
                                               "segments": _segment_records(segments)},
                                              indent=1, allow_nan=False))
        report_uri = _write_and_log(client, run_id, tmp, REPORT_ARTIFACT, page)
    values = {
        tags.VERSION: __version__,
        tags.DEGRADATION_STATUS: "degraded" if result.degraded else "ok",
        tags.DEGRADATION_KIND: result.kind,
        tags.BASELINE_URI: str(reference) if isinstance(reference, (str, os.PathLike))
        else baseline.metadata.get("source_uri", "profile object"),
    }
    if baseline.metadata.get("source_run_id"):
        values[tags.BASELINE_RUN_ID] = baseline.metadata["source_run_id"]
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in values.items()])
    return EvaluationResult(metrics=metrics, run_id=run_id, artifacts={
        **artifacts,
        "degradation_table": JsonEvaluationArtifact(uri=table_uri, content=table),
        "degradation_report": TextEvaluationArtifact(uri=report_uri, content=page),
    })


def _plot(result):
    if not result.metrics:
        return None
    try:
        return figure_to_png(plot_performance(result))
    except Exception as exc:  # a plot must never fail the evaluation
        warnings.warn(f"Failed to log image artifact {PLOT_ARTIFACT!r}: {exc!r}", stacklevel=2)
        return None
