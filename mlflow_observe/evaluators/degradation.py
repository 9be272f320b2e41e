"""The ``degradation`` evaluator: performance against the baseline, with labels or without.

With labels in the evaluation data the metrics are realised; without, they are
estimated from the calibrated probabilities (binary classifiers). Results go to
the run as ``degradation/...`` metrics, ``degradation_table.json`` and
``degradation_report.html``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_observe.comparison import explain_errors
from mlflow_observe.core.performance.degradation import (
    DegradationError,
    compare_performance,
    compare_segments,
)
from mlflow_observe.core.weights import WeightError
from mlflow_observe.evaluators.config import check_degradation_config
from mlflow_observe.logs.frames import row_weights, weights_column
from mlflow_observe.logs.writer import no_prediction_logs
from mlflow_observe.tracking.baselines import load_baseline
from mlflow_observe.tracking.predictor import attribution_model, model_output
from mlflow_observe.tracking.results import log_degradation_result


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
    attribution_model : str or model, optional
        With labels, the features that account for the errors are read from the
        window's logged ``attribution_<column>`` values, else from this model's
        attributions on a sample of the window (default: the evaluated model,
        when one is given); see :mod:`mlflow_observe.core.explain.errors`.

    Examples
    --------
    >>> DegradationEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    False
    """

    name = "degradation"

    @classmethod
    def can_evaluate(cls, *, model_type, evaluator_config, **kwargs) -> bool:
        return isinstance(evaluator_config, dict) and "baseline" in evaluator_config

    def evaluate(
        self,
        *,
        model_type,
        dataset,
        run_id,
        evaluator_config,
        model=None,
        predictions=None,
        **kwargs,
    ) -> EvaluationResult:
        check_degradation_config(evaluator_config)
        baseline = load_baseline(evaluator_config["baseline"])
        features = dataset.features_data
        if dataset.has_predictions:
            y_pred = np.asarray(dataset.predictions_data)
        elif model is not None:
            y_pred = model_output(model, features, predictions)
        else:
            y_pred = None
        proba = _probabilities(features, baseline.performance)
        y_true = np.asarray(dataset.labels_data) if dataset.has_targets else None
        try:
            result = compare_performance(
                baseline.performance,
                y_true=y_true,
                y_pred=y_pred,
                proba=proba,
                features=features if isinstance(features, pd.DataFrame) else None,
                tolerance=evaluator_config.get("tolerance", 0.02),
                random_state=evaluator_config.get("random_state", 0),
                sample_weight=_weights(features, baseline),
            )
            segments = _segments(evaluator_config, features, baseline, y_true, y_pred, proba)
        except (DegradationError, WeightError) as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        errors = _errors(evaluator_config, features, baseline, y_true, y_pred, model, result)
        return log_degradation_result(
            run_id, result, segments, baseline, evaluator_config["baseline"], errors=errors
        )


def _errors(config, features, baseline, y_true, y_pred, model, result):
    """The features behind the errors, when labels arrived (realised metrics)."""
    if y_true is None or y_pred is None or not isinstance(features, pd.DataFrame):
        return None
    if result.kind != "realised" or len(features) != len(np.asarray(y_true)):
        return None
    explainer = config.get("attribution_model", model)
    with no_prediction_logs():  # attributing is not traffic
        return explain_errors(
            baseline,
            features,
            y_true,
            y_pred,
            task=result.task,
            model=None if explainer is None else attribution_model(explainer),
        )


def _segments(config, features, baseline, y_true, y_pred, proba):
    columns = config.get("segment_by") or []
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in getattr(features, "columns", [])]
    if missing:
        raise DegradationError(f"segment_by columns not in the data: {missing}.")
    if not columns:
        return []
    return compare_segments(
        baseline.performance,
        features[columns],
        y_true=y_true,
        y_pred=y_pred,
        proba=proba,
        features=features,
        min_size=config.get("min_segment_size", 200),
        tolerance=config.get("tolerance", 0.02),
        random_state=config.get("random_state", 0),
        sample_weight=_weights(features, baseline),
    )


def _weights(features, baseline):
    """The log's ``sample_weight`` per row (None when absent or all 1): see logs.frames."""
    if not isinstance(features, pd.DataFrame):
        return None
    return row_weights(features, weights_column(baseline))


def _probabilities(features, performance):
    names = list(performance.probabilities) if performance else []
    if not names or not isinstance(features, pd.DataFrame):
        return None
    if not all(name in features.columns for name in names):
        return None
    return features[names].to_numpy(dtype=float)
