"""Each feature's impact on a model's predictions, measured on the reference at baseline time.

Label-free permutation importance: on a bounded, seeded sample of the
reference, one column at a time is shuffled and the model predicts again; a
feature's impact is how much the predictions move, averaged over
``n_repeats`` shuffles:

* numeric predictions: the mean absolute change, divided by the standard
  deviation of the unshuffled predictions (so that impacts of different models
  read alike);
* labels (classifiers): the share of rows whose predicted label changes.

Only ``predict`` is called, so any model works. When the ``shap`` package is
installed (it is optional, not a dependency), the mean absolute SHAP value of
each numeric feature is recorded beside it, from SHAP's model-agnostic
permutation explainer on a smaller sample; without it, or when it fails, the
impact is permutation importance alone and ``notes`` says why.

References
----------
.. [1] Breiman, L. "Random Forests", Machine Learning 45, 2001 (permutation importance).
.. [2] Fisher, A., Rudin, C., Dominici, F. "All Models are Wrong, but Many are Useful",
   JMLR 20(177), 2019 (model reliance, the model-agnostic form).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

# The reference rows permuted (bounded: the cost is n_features x n_repeats predictions
# of this size).
DEFAULT_SAMPLE_SIZE = 2000
# SHAP's permutation explainer costs about 2 x n_features predictions per row explained.
SHAP_ROWS = 200
SHAP_BACKGROUND = 100


@dataclass(frozen=True)
class FeatureImpact:
    """How much each feature moves a model's predictions on the reference.

    Attributes
    ----------
    importances : dict of str to float
        Permutation importance of each feature (see the module docstring).
    method : str
        ``'permutation'``.
    n_rows, n_repeats, random_state : int
        The sample and shuffles it was measured on.
    shap : dict of str to float or None
        Mean absolute SHAP value of each numeric feature, when ``shap`` is installed.
    notes : dict of str to str
        What was left out and why.
    attribution : dict of str to float or None
        The baseline's global importance: each feature's mean absolute attribution
        on the baseline's row sample (see :mod:`mlflow_observe.core.explain`),
        which attribution drift compares each window's with.
    attribution_method : str or None
        How those attributions were computed (``"tree_shap"``, ``"sampled_shapley"``).
    attribution_rows : int
        The rows they were averaged over.
    """

    importances: dict
    method: str = "permutation"
    n_rows: int = 0
    n_repeats: int = 0
    random_state: int = 0
    shap: dict | None = None
    notes: dict = field(default_factory=dict)
    attribution: dict | None = None
    attribution_method: str | None = None
    attribution_rows: int = 0

    def normalised(self) -> dict:
        """Importances that sum to 1 (all zero when the model ignores every feature)."""
        total = sum(max(v, 0.0) for v in self.importances.values())
        return {k: (max(v, 0.0) / total if total > 0 else 0.0) for k, v in self.importances.items()}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> FeatureImpact:
        return cls(**payload)


def predictions_array(output, n_rows: int) -> np.ndarray:
    """A model's output as one value per row (the first output column when it has several)."""
    if isinstance(output, pd.DataFrame):
        output = output.iloc[:, 0]
    values = np.asarray(output)
    if values.ndim > 1:
        values = values.reshape(n_rows, -1)[:, 0]
    if len(values) != n_rows:
        raise ValueError(f"The model returned {len(values)} predictions for {n_rows} rows.")
    return values


def is_numeric_output(values: np.ndarray) -> bool:
    return values.dtype.kind in "fiu" and values.dtype.kind != "b"


def prediction_change(before: np.ndarray, after: np.ndarray, scale: float | None) -> float:
    """Mean absolute change over ``scale`` for numbers; the share changed for labels."""
    if scale is None:
        return float(np.mean(before != after))
    # Rows the model gives no number for (NaN) carry no change to measure.
    change = np.abs(after.astype(float) - before.astype(float))
    change = change[np.isfinite(change)]
    return float(np.mean(change) / scale) if len(change) else 0.0


def feature_impact(
    predict,
    reference: pd.DataFrame,
    features,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    n_repeats: int = 3,
    random_state: int = 0,
    use_shap: bool = True,
) -> FeatureImpact:
    """Measure each feature's impact on ``predict``'s output on the reference.

    Parameters
    ----------
    predict : callable
        Takes a DataFrame of the reference's columns, returns one prediction per row.
    reference : pandas.DataFrame
        The reference rows (with every column the model needs).
    features : list of str
        The columns whose impact is measured.
    sample_size : int, default=2000
        Reference rows used (a seeded uniform sample when it has more).
    n_repeats : int, default=3
        Shuffles per feature.
    random_state : int, default=0
    use_shap : bool, default=True
        Also record SHAP values when the ``shap`` package is installed.

    Returns
    -------
    FeatureImpact

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x1": rng.normal(size=500), "x2": rng.normal(size=500)})
    >>> impact = feature_impact(lambda X: 3 * X["x1"].to_numpy(), frame, ["x1", "x2"],
    ...                         use_shap=False)
    >>> impact.importances["x1"] > 1.0, impact.importances["x2"]
    (True, 0.0)
    """
    rng = np.random.default_rng(random_state)
    rows = reference
    if len(reference) > sample_size:
        rows = reference.iloc[np.sort(rng.choice(len(reference), sample_size, replace=False))]
    rows = rows.reset_index(drop=True)
    base = predictions_array(predict(rows), len(rows))
    scale = None
    if is_numeric_output(base):
        scale = float(np.nanstd(base.astype(float)))
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    importances = {}
    for column in features:
        changes = []
        for _ in range(n_repeats):
            shuffled = rows.copy()
            shuffled[column] = rows[column].to_numpy()[rng.permutation(len(rows))]
            after = predictions_array(predict(shuffled), len(rows))
            changes.append(prediction_change(base, after, scale))
        importances[str(column)] = float(np.mean(changes))
    notes = {}
    shap_values = None
    if use_shap:
        shap_values, note = _shap_importance(
            predict, rows, features, scale is not None, random_state
        )
        if note:
            notes["shap"] = note
    return FeatureImpact(
        importances=importances,
        n_rows=len(rows),
        n_repeats=n_repeats,
        random_state=random_state,
        shap=shap_values,
        notes=notes,
    )


def _shap_importance(
    predict, rows: pd.DataFrame, features, numeric_output: bool, random_state: int
):
    """Mean |SHAP| per numeric feature, or None and the reason it was not computed."""
    try:
        import shap
    except ImportError:
        return None, "the shap package is not installed: permutation importance only"
    if not numeric_output:
        return None, "SHAP values need numeric predictions"
    numeric = [
        c
        for c in features
        if pd.api.types.is_numeric_dtype(rows[c]) and not pd.api.types.is_bool_dtype(rows[c])
    ]
    if not numeric:
        return None, "no numeric features for SHAP"
    try:
        others = rows.drop(columns=numeric)

        def on_matrix(matrix):
            frame = pd.DataFrame(np.asarray(matrix, dtype=float), columns=numeric)
            # Columns SHAP does not vary are held at the first reference row's values.
            for column in others.columns:
                frame[column] = others[column].iloc[0]
            return predictions_array(predict(frame[list(rows.columns)]), len(frame)).astype(float)

        data = rows[numeric].to_numpy(dtype=float)
        background = data[:SHAP_BACKGROUND]
        explainer = shap.explainers.Permutation(
            on_matrix, shap.maskers.Independent(background), seed=random_state
        )
        values = np.abs(explainer(data[:SHAP_ROWS], silent=True).values)
        # A model that returns NaN on some rows leaves those rows' values undefined.
        finite = np.isfinite(values).all(axis=1)
        if not finite.any():
            return None, "SHAP values are not finite: the model returned no number"
        means = values[finite].mean(axis=0)
        return {c: float(v) for c, v in zip(numeric, means, strict=True)}, None
    except Exception as exc:  # optional: permutation importance stands on its own
        return None, f"SHAP failed: {exc!r}"
