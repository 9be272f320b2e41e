"""Any model as a ``predict(frame)`` callable: what feature impact needs, and nothing more."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    profile.impact = feature_impact(as_predict(model), inputs, features, **options)
    return profile


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
