"""Row weights: how many rows of traffic each counted row stands for.

A prediction log whose writer shed load keeps each row with a known
probability ``rate`` and records ``sample_weight = 1 / rate`` on it. Counting
each kept row ``1 / rate`` times estimates the traffic's counts without bias
(Horvitz-Thompson). The tests then take Kish's effective sample size
``(sum w)^2 / sum w^2`` as the window's ``n``: a sample weighted 4 holds the
information of its rows, not of the four times as many it stands for.

References
----------
.. [1] Kish, L. "Survey Sampling", Wiley, 1965, section 11.7.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class WeightError(ValueError):
    """Row weights that cannot be used: not numbers, not finite, or not > 0."""


def check_weights(weights, n_rows: int) -> np.ndarray:
    """Row weights as a float array, after checking there is one finite number > 0 a row.

    A weight is how many rows a counted row stands for: ``1 / rate`` for a row
    kept with probability ``rate`` (the prediction log's ``sample_weight``).

    Examples
    --------
    >>> check_weights([1, 4, 4], 3).tolist()
    [1.0, 4.0, 4.0]
    >>> check_weights([1.0, 0.0, float("nan")], 3)
    Traceback (most recent call last):
    ...
    mlflow_observe.core.weights.WeightError: Row weights must be finite numbers > 0; 2 of 3 are not (e.g. 0.0, nan). Fix or drop those rows, or count without weights.
    """
    try:
        values = np.asarray(weights, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise WeightError(
            f"Row weights must be numbers. Got {type(weights).__name__}: {exc}."
        ) from None
    if len(values) != n_rows:
        raise WeightError(f"Got {len(values)} row weights for {n_rows} rows: give one a row.")
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        examples = ", ".join(repr(float(v)) for v in pd.unique(values[bad])[:3])
        raise WeightError(
            f"Row weights must be finite numbers > 0; {int(bad.sum())} of {n_rows} are not "
            f"(e.g. {examples}). Fix or drop those rows, or count without weights."
        )
    return values


def effective_size(weights) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (``len`` for equal weights).

    >>> effective_size([1.0, 1.0, 1.0, 1.0]), effective_size([1.0, 1.0, 4.0, 4.0])
    (4.0, 2.9411764705882355)
    """
    weights = np.asarray(weights, dtype=float)
    total = float(weights.sum())
    squares = float(np.einsum("i,i->", weights, weights))
    return total * total / squares if squares > 0 else 0.0


def weights_or_none(values) -> np.ndarray | None:
    """A column of row weights as given (a pandas Series): a null weight is 1 (a row logged
    unsampled), a value that is not a number NaN (refused when counted); None when every
    row weighs 1, so that the rows are counted on the unweighted path.

    >>> weights_or_none(pd.Series([1.0, None, 4.0])).tolist()
    [1.0, 1.0, 4.0]
    >>> weights_or_none(pd.Series([1, 1])) is None
    True
    """
    numbers = pd.to_numeric(values, errors="coerce")
    weights = numbers.to_numpy(dtype=float, na_value=np.nan, copy=True)
    weights[values.isna().to_numpy()] = 1.0
    return None if np.all(weights == 1.0) else weights
