"""The ``drift`` evaluator: ``mlflow.models.evaluate(..., evaluators="drift")``.

A thin adapter: it turns MLflow's evaluation dataset into a window frame, runs
the core comparison against the baseline named in the config, and logs the
results to the evaluation run as metrics, tables, a report and plots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models.evaluation import EvaluationResult, ModelEvaluator
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_observe.comparison import compare, with_attributions
from mlflow_observe.core.drift.window import EmptyWindowError
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.weights import WeightError
from mlflow_observe.evaluators.config import drift_options
from mlflow_observe.logs.frames import prepare_window_part, timestamp_bounds, weights_column
from mlflow_observe.logs.writer import no_prediction_logs
from mlflow_observe.tracking.baselines import load_baseline
from mlflow_observe.tracking.predictor import attribution_model, model_output
from mlflow_observe.tracking.results import log_drift_result, time_range_tags


class DriftEvaluator(ModelEvaluator):
    """Compares the evaluation data with a baseline profile recorded by a training run.

    Config keys (``evaluator_config``)
    ----------------------------------
    baseline : str or DataProfile (required)
        A run id, ``runs:/<id>``, ``models:/<name>/<version>``,
        ``models:/<name>@<alias>``, a profile file, or a profile object.
    method, methods, threshold, thresholds, small_sample_size, drift_share,
    dataset_method, alpha, warning_ratio, pvalue_warning_ratio, missing_rate_tolerance :
        The :class:`~mlflow_observe.core.drift.options.DriftOptions`.
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
    ``observe.drift.top_impact_feature``); with a model to evaluate,
    each top feature's share of the prediction drift is measured too.
    detectors : list of str, optional
        alibi-detect detectors by name (``["alibi:mmd", "alibi:ks"]``; extra
        ``alibi``): metrics ``drift/alibi/<detector>/...``, one record each in
        the table, a report section.
    attribution_model : str or model, optional
        A model (URI or object) that attributes the window's row sample when the
        window logged no ``attribution_<column>`` values, for attribution drift
        (default: the evaluated model, when one is given). Attribution drift also
        needs a baseline recorded with a model: metrics ``drift/attribution/...``,
        one record in the table, a report section.
    attribution_threshold, attribution_max_share_change, attribution_min_rows :
        Attribution drift's rule (see
        :class:`~mlflow_observe.core.drift.options.DriftOptions`).
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
        options = drift_options(evaluator_config)
        baseline = load_baseline(evaluator_config["baseline"])
        window = _window_frame(dataset, model, predictions, baseline)
        predict = None if model is None else (lambda frame: model_output(model, frame, predictions))
        explainer = evaluator_config.get("attribution_model", model)
        explain_model = _attribution_model(explainer, baseline) if explainer is not None else None
        try:
            # Predictions made to explain drift are not traffic: keep them out of the log.
            with no_prediction_logs():
                comparison = compare(
                    baseline,
                    window,
                    options,
                    chunk_size=evaluator_config.get("chunk_size"),
                    n_jobs=evaluator_config.get("n_jobs"),
                    predict=predict,
                    progress=evaluator_config.get("progress"),
                    weights=weights_column(baseline),
                    explain_model=explain_model,
                )
        except (EmptyWindowError, WeightError) as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        bounds = timestamp_bounds(dataset.features_data)
        return log_drift_result(
            run_id, comparison, baseline, options, evaluator_config, time_range_tags(bounds or ())
        )


def _window_frame(dataset, model, predictions, baseline: DataProfile) -> pd.DataFrame:
    """The window as one frame: features, then predictions and labels under the baseline's names."""
    features = dataset.features_data
    if not isinstance(features, pd.DataFrame):
        features = pd.DataFrame(np.asarray(features), columns=dataset.feature_names)
    # A window read from the prediction log carries bookkeeping columns: not features.
    frame = prepare_window_part(features, baseline, keep_weights=True)
    frame = with_attributions(frame, features).copy(deep=False)
    output = None
    if dataset.has_predictions:
        output = dataset.predictions_data
    elif model is not None:
        output = model_output(model, features, predictions)
    if output is not None and baseline.predictions is not None:
        values = np.asarray(output)
        if values.ndim > 1:  # e.g. class probabilities: compare the first output column
            values = values.reshape(len(frame), -1)[:, 0]
        frame[baseline.predictions] = values
    if dataset.has_targets and baseline.targets is not None:
        frame[baseline.targets] = np.asarray(dataset.labels_data)
    return frame


def _attribution_model(model, baseline: DataProfile):
    """The model that attributes a window, only when the baseline has an importance to compare."""
    impact = baseline.impact
    if impact is None or not impact.attribution:
        return None
    return attribution_model(model)
