"""Python entry points that make the right ``mlflow.models.evaluate`` call."""

from __future__ import annotations

import mlflow

from mlflow_observe.core.compare import EmptyWindowError
from mlflow_observe.tracking.baselines import load_baseline

# MLflow 3 requires targets for model_type "classifier"/"regressor" and extra
# metrics for model_type None; stored predictions without labels need neither,
# and MLflow passes any other model type through to the evaluators untouched.
MONITORING_MODEL_TYPE = "monitoring"


def evaluate_drift(data, baseline, *, predictions=None, targets=None, model=None,
                   model_type=None, **options):
    """Compare ``data`` with a baseline and log the results to MLflow.

    Calls ``mlflow.models.evaluate(..., evaluators="drift")`` for you: it logs to
    the active run, or starts a new one, and returns the same
    ``mlflow.models.EvaluationResult``.

    Parameters
    ----------
    data : pandas.DataFrame
        The production window.
    baseline : str or DataProfile
        A run id, ``runs:/<id>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        a profile file or a profile.
    predictions, targets : str, optional
        The prediction and label columns of ``data``. Default: the columns the
        baseline recorded, when ``data`` has them.
    model : str or PyFuncModel, optional
        A model to compute predictions with, instead of a predictions column.
    model_type : str, optional
        Passed to MLflow; default ``'monitoring'``, which needs no labels.
    **options
        Evaluator config: ``method``, ``methods``, ``threshold``, ``thresholds``,
        ``drift_share``, ``dataset_method``, ``max_plots``... (see
        :class:`~mlflow_observe.evaluators.drift.DriftEvaluator`).

    Returns
    -------
    mlflow.models.EvaluationResult
    """
    if hasattr(data, "__len__") and len(data) == 0:
        # Caught here: MLflow's own dataset hashing fails on some empty frames first.
        raise EmptyWindowError(
            "The production window has no rows: there is nothing to compare with the baseline. "
            "Check the window's time range or the data source."
        )
    profile = load_baseline(baseline)
    columns = set(getattr(data, "columns", []))
    if predictions is None and model is None and profile.predictions in columns:
        predictions = profile.predictions
    if targets is None and profile.targets in columns:
        targets = profile.targets
    config = {"baseline": profile, **options}
    return mlflow.models.evaluate(
        model=model,
        data=data,
        predictions=predictions,
        targets=targets,
        model_type=model_type or MONITORING_MODEL_TYPE,
        evaluators="drift",
        evaluator_config=config,
    )
