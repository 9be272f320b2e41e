"""Any model as a ``predict(frame)`` callable: what feature impact needs, and nothing more."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from mlflow_observe.core.explain import ImportanceCounter
from mlflow_observe.core.explain.attribute import attribute, importance_rows
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.feature_impact import feature_impact


def as_predict(model):
    """A callable ``frame -> predictions`` for ``model``.

    ``model`` is an MLflow model URI or path (loaded as pyfunc), a loaded
    pyfunc model or scikit-learn estimator (anything with ``predict(frame)``),
    an ``mlflow.pyfunc.PythonModel`` (called with no context), or a callable.

    Examples
    --------
    >>> import pandas as pd
    >>> as_predict(lambda frame: frame["x"] * 2)(pd.DataFrame({"x": [1, 2]})).tolist()
    [2, 4]
    """
    import mlflow.pyfunc

    if isinstance(model, str):
        model = mlflow.pyfunc.load_model(model)
    if isinstance(model, mlflow.pyfunc.PythonModel):
        return lambda frame: model.predict(None, frame)
    if hasattr(model, "predict"):
        return model.predict
    if callable(model):
        return model
    raise TypeError(
        f"Cannot predict with a {type(model).__name__}: give a model with a "
        "predict method, an MLflow model URI, or a callable."
    )


def record_impact(profile: DataProfile, model, reference: pd.DataFrame, **options) -> DataProfile:
    """Measure each feature's impact on ``model`` on the reference, and keep it in the profile.

    ``options`` go to :func:`~mlflow_observe.core.profile.feature_impact.feature_impact`; the
    seed defaults to the profile's ``random_state``.

    The baseline's global importance (each feature's mean absolute attribution,
    which attribution drift compares windows with) is recorded beside it, on a
    seeded sample of the reference: SHAP's tree explainer on up to 1,000 rows for
    a scikit-learn tree model (with the ``explain`` extra), else sampled Shapley
    values on 200 rows. It is the same quantity as feature impact's optional SHAP
    values, for every feature, so SHAP's own permutation explainer is not run
    again. A model it cannot attribute (labels that are not numbers) leaves it
    out, with the reason in ``impact.notes['attribution']``.
    """
    options.setdefault("random_state", profile.settings.get("random_state", 0))
    features = [c for c in profile.feature_names if c in reference.columns]
    # The model's outputs recorded beside the reference (label, prediction, class
    # probabilities) are not its inputs.
    probabilities = profile.performance.probabilities if profile.performance else ()
    outputs = [profile.targets, profile.predictions, *probabilities]
    inputs = reference.drop(
        columns=[c for c in outputs if c is not None and c in reference.columns]
    )
    seed = options["random_state"]
    scorer = attribution_model(model)
    # The background is the profile's row sample, which windows are attributed against too.
    background = profile.sample.to_frame(
        [c for c in inputs.columns if c in profile.sample.columns], like=inputs
    )
    importance, note = baseline_importance(
        scorer, inputs, features, background=background, random_state=seed
    )
    if importance is not None:
        options.setdefault("use_shap", False)
    impact = feature_impact(as_predict(model), inputs, features, **options)
    if importance is not None:
        impact = replace(
            impact,
            attribution=importance[0],
            attribution_method=importance[1],
            attribution_rows=importance[2],
        )
    elif note:
        impact = replace(impact, notes={**impact.notes, "attribution": note})
    profile.impact = impact
    return profile


def attribution_model(model):
    """What attributions explain for ``model``: the estimator itself when it can be had.

    A scikit-learn model (an object, or a URI that loads as one) is used as it is,
    so that a classifier's probability is explained and tree models get the tree
    explainer; a pyfunc model is unwrapped to its raw model when it has
    ``predict`` (through the observed flavor's wrapper, to the model it wraps), so
    that a window is attributed as the baseline was; anything else predicts
    through :func:`as_predict`.
    """
    import mlflow.pyfunc

    if isinstance(model, str):
        try:
            import mlflow.sklearn

            return mlflow.sklearn.load_model(model)
        except Exception:  # not a scikit-learn model: its pyfunc predict
            model = mlflow.pyfunc.load_model(model)
    for _ in range(3):  # a pyfunc model around a wrapper (the flavor's) around the estimator
        if not isinstance(model, mlflow.pyfunc.PyFuncModel):
            break
        try:
            raw = model.get_raw_model()
        except Exception:  # a flavor without a raw model
            raw = None
        if raw is None or not hasattr(raw, "predict"):
            return as_predict(model)
        # The observed flavor's wrapper keeps the inner model as ``inner``.
        model = getattr(raw, "inner", raw)
    if isinstance(model, mlflow.pyfunc.PythonModel):
        return as_predict(model)
    return model


def baseline_importance(
    model, inputs: pd.DataFrame, features, *, background: pd.DataFrame, random_state: int = 0
):
    """``((importance, method, rows), None)`` on a sample of ``inputs``, or ``(None, reason)``."""
    features = [c for c in features if c in inputs.columns]
    if not features or inputs.empty:
        return None, "no feature columns to attribute"
    missing = [c for c in inputs.columns if c not in background.columns]
    if missing or background.empty:
        return None, f"the baseline's row sample lacks the model's inputs {missing[:10]}"
    try:
        attributions = attribute(
            model,
            inputs,
            background,
            max_rows=importance_rows(model, len(inputs.columns)),
            random_state=random_state,
        )
    except Exception as exc:  # optional: feature impact stands on its own
        return None, f"attributions failed: {exc!r}"
    counter = ImportanceCounter()
    counter.update(attributions.values[[c for c in features]])
    if counter.n_rows == 0:
        return None, "attributions are not finite: the model returned no number"
    return (counter.importance(), attributions.method, counter.n_rows), None


def model_output(model, features: pd.DataFrame, column: str | None):
    """``model.predict(features)`` as one array: a frame output's ``column``, else its first."""
    output = model.predict(features)
    if isinstance(output, pd.DataFrame):
        if column is not None and column in output.columns:
            return output[column].to_numpy()
        return output.iloc[:, 0].to_numpy()
    if isinstance(output, pd.Series):
        return output.to_numpy()
    return np.asarray(output)
