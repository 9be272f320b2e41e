"""Shapley values of a prediction by sampled feature orderings, for any model.

A row's prediction ``f(x)`` is attributed to its features against background
rows ``b`` (the baseline's row sample): for an ordering of the features, start
from ``b`` and set the features to ``x``'s values one at a time in that order;
each feature gets the change of the prediction when it was set. Averaged over
all orderings, this is the feature's interventional Shapley value. Here the
orderings are sampled (``n_permutations`` of them, in antithetic pairs: an
ordering and its reverse, which halves the variance for models close to
additive) and every sampled ordering is run from every background row
(``max_background`` of them at most).

Whatever the sample, the attributions reconcile exactly: along one ordering the
changes add up to ``f(x) - f(b)``, so the attributions of a row add up to its
prediction minus ``base_value``, the mean prediction over the background rows.
For a linear model ``f(x) = w . x + c`` every ordering gives feature ``j`` the
same ``w_j (x_j - b_j)``, so the values are exact: ``w_j (x_j - mean(b_j))``.

**Cost.** ``n_rows * n_permutations * n_background * (n_features + 1)``
predictions, made in batches of at most ``batch_rows`` rows: with the defaults
(16 orderings, 50 background rows) and 20 features, 16,800 predictions a row.
Tree models have a far cheaper exact method (SHAP's TreeExplainer), which the
optional ``explain`` extra brings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core._validation import InstanceOf, Interval, checked


@dataclass(frozen=True)
class Attributions:
    """Each row's prediction split among its features.

    Attributes
    ----------
    values : pandas.DataFrame
        One row per explained row, one column per feature: its share of
        ``prediction - base_value``.
    base_value : float
        The mean prediction over the background rows.
    predictions : numpy.ndarray
        The explained rows' predictions.
    method : str
        How the values were computed (``"sampled_shapley"``, ``"tree_shap"``...).
    """

    values: pd.DataFrame
    base_value: float
    predictions: np.ndarray
    method: str

    @property
    def reconciliation_error(self) -> float:
        """The largest ``|sum of attributions + base_value - prediction|`` over the rows."""
        if len(self.values) == 0:
            return 0.0
        total = self.values.to_numpy(dtype=float).sum(axis=1) + self.base_value
        return float(np.max(np.abs(total - self.predictions)))

    def to_records(self) -> list[dict]:
        """One record per row and feature: ``row``, ``feature``, ``value``, ``attribution``."""
        return [
            {"row": int(i), "feature": str(feature), "attribution": float(value)}
            for i, (_, row) in enumerate(self.values.iterrows())
            for feature, value in row.items()
        ]


@checked(
    {
        "rows": [InstanceOf(pd.DataFrame, description="a pandas DataFrame")],
        "background": [InstanceOf(pd.DataFrame, description="a pandas DataFrame")],
        "n_permutations": [Interval(int, 2, None)],
        "max_background": [Interval(int, 1, None)],
        "batch_rows": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, None)],
    }
)
def sampled_shapley(
    predict: Callable[[pd.DataFrame], np.ndarray],
    rows: pd.DataFrame,
    background: pd.DataFrame,
    *,
    n_permutations: int = 16,
    max_background: int = 50,
    batch_rows: int = 200_000,
    random_state: int = 0,
) -> Attributions:
    """Attribute each row's prediction to its features (Shapley values, sampled orderings).

    Parameters
    ----------
    predict : callable
        Takes a DataFrame with the columns of ``rows`` and returns one number per
        row (for a classifier, the probability of the class to explain).
    rows : pandas.DataFrame
        The rows to explain.
    background : pandas.DataFrame
        Rows standing for "no information" (the baseline's row sample), with the
        same columns; at most ``max_background`` of them are used, drawn at random.
    n_permutations : int, default=16
        Feature orderings sampled (rounded up to an even number: antithetic pairs).
    max_background : int, default=50
    batch_rows : int, default=200000
        The most rows handed to ``predict`` at once (bounds memory).
    random_state : int, default=0

    Returns
    -------
    Attributions

    Examples
    --------
    A linear model's attributions are exact: ``w_j (x_j - mean(b_j))``.

    >>> import numpy as np, pandas as pd
    >>> background = pd.DataFrame({"a": [0.0, 2.0], "b": [1.0, 1.0]})
    >>> def predict(frame):
    ...     return 3 * frame["a"].to_numpy() - frame["b"].to_numpy() + 5
    >>> result = sampled_shapley(predict, pd.DataFrame({"a": [4.0], "b": [3.0]}), background)
    >>> result.values.round(6).to_dict("records"), result.base_value
    ([{'a': 9.0, 'b': -2.0}], 7.0)
    """
    missing = [c for c in rows.columns if c not in background.columns]
    if missing:
        raise ValueError(
            f"The background rows lack the columns {missing} of the rows to explain; pass "
            "background rows with the model's input columns (the baseline's row sample)."
        )
    if len(background) == 0:
        raise ValueError("The background needs at least one row; pass the baseline's row sample.")
    columns = list(rows.columns)
    d = len(columns)
    rng = np.random.default_rng(random_state)
    if len(background) > max_background:
        background = background.iloc[rng.choice(len(background), max_background, replace=False)]
    background = background[columns].reset_index(drop=True)
    base = np.asarray(predict(background), dtype=float).reshape(-1)
    base_value = float(base.mean())
    half = (n_permutations + 1) // 2
    sampled = [rng.permutation(d) for _ in range(half)]
    orders = np.array(sampled + [order[::-1] for order in sampled])
    # rank[p, j]: the step at which ordering p sets feature j (1-based).
    rank = np.empty_like(orders)
    rank[np.arange(len(orders))[:, None], orders] = np.arange(1, d + 1)
    n_background = len(background)
    steps = np.arange(d + 1)
    # One path = (ordering, background row); its d + 1 hybrids, step k setting k features.
    path_ordering = np.repeat(np.arange(len(orders)), n_background)
    path_background = np.tile(np.arange(n_background), len(orders))
    hybrid_set = rank[path_ordering][:, None, :] <= steps[None, :, None]  # paths x steps x d
    hybrid_set = hybrid_set.reshape(-1, d)
    hybrid_background = np.repeat(path_background, d + 1)
    per_row = len(hybrid_set)
    rows_per_batch = max(1, batch_rows // per_row)
    values = np.zeros((len(rows), d))
    predictions = np.empty(len(rows))
    for start in range(0, len(rows), rows_per_batch):
        chunk = rows.iloc[start : start + rows_per_batch]
        frame = _hybrids(chunk[columns], background, hybrid_set, hybrid_background)
        outputs = np.asarray(predict(frame), dtype=float).reshape(len(chunk), -1, d + 1)
        deltas = np.diff(outputs, axis=2)  # rows x paths x d: the change at each step
        # The feature set at step k of path p is orders[p][k - 1].
        features = orders[path_ordering]
        for i in range(len(chunk)):
            contributions = np.zeros((len(features), d))
            np.put_along_axis(contributions, features, deltas[i], axis=1)
            values[start + i] = contributions.mean(axis=0)
        predictions[start : start + len(chunk)] = outputs[:, 0, -1]
    return Attributions(
        values=pd.DataFrame(values, columns=columns, index=rows.index),
        base_value=base_value,
        predictions=predictions,
        method="sampled_shapley",
    )


def _hybrids(chunk, background, hybrid_set, hybrid_background) -> pd.DataFrame:
    """Every explained row's hybrids: its values where set, the background's elsewhere."""
    n_rows, per_row = len(chunk), len(hybrid_set)
    data = {}
    for j, column in enumerate(chunk.columns):
        values = background[column].take(np.tile(hybrid_background, n_rows))
        values = values.reset_index(drop=True)
        take_row = np.tile(hybrid_set[:, j], n_rows)
        row_of = np.repeat(np.arange(n_rows), per_row)
        own = chunk[column].reset_index(drop=True).take(row_of[take_row])
        values[take_row] = own.to_numpy()
        data[column] = values
    return pd.DataFrame(data)
