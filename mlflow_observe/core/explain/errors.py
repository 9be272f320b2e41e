"""Which features account for a window's errors: attributions on wrong rows against right ones.

Once labels arrive, a window's rows split in two: for a classifier, the
predictions that were wrong and those that were right; for a regressor, the
rows whose absolute error is in the top quarter of the window (high error)
and the others (low error). Each feature's global importance (mean absolute
attribution) is measured in each group, and its *share* there (its importance
over the sum of all features'). A feature whose share is much larger on the
wrong rows than on the right ones is one the model leaned on where it erred:
a broken or shifted input, or a relation between that feature and the label
that changed. The features are ranked by that difference of shares.

Attributions say what moved the *predictions*, not the labels: a feature the
model ignores (all its attributions 0) can cause errors without showing here,
which the worst segments (by value of a column) may then reveal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# A group needs this many attributed rows for its shares to be read.
MIN_GROUP_ROWS = 20
# Regression: the top quarter of absolute errors are the "high error" rows.
HIGH_ERROR_QUANTILE = 0.75


@dataclass(frozen=True)
class ErrorAttribution:
    """Each feature's share of the attributions on wrong (high-error) and right rows.

    Attributes
    ----------
    task : {'classification', 'regression'}
    groups : tuple of str
        The groups' names: ``("correct", "wrong")`` or ``("low error", "high error")``.
    n_good, n_bad : int
        Attributed rows in each group.
    features : list of dict
        One record per feature, the largest rise of share on the bad rows first:
        ``feature``, ``good_importance``, ``bad_importance`` (mean ``|attribution|``),
        ``good_share``, ``bad_share``, ``share_difference`` (bad minus good).
    source : str or None
        Where the attributions came from (``"logged"``, ``"computed"``).
    note : str or None
        Why it was not measured, when it was not (``features`` is then empty).
    """

    task: str
    groups: tuple
    n_good: int
    n_bad: int
    features: list
    source: str | None = None
    note: str | None = None

    @property
    def top_feature(self) -> str | None:
        """The feature whose share rises most on the bad rows (None when not measured)."""
        return self.features[0]["feature"] if self.features else None

    def metrics(self) -> dict[str, float]:
        """No metric: a ranking of features is read in the table and the report."""
        return {}

    def to_records(self) -> list[dict]:
        return [dict(record) for record in self.features]

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "groups": list(self.groups),
            "n_good": self.n_good,
            "n_bad": self.n_bad,
            "source": self.source,
            "note": self.note,
            "features": self.to_records(),
        }


def error_groups(y_true, y_pred, task: str) -> tuple[np.ndarray, tuple]:
    """``(bad, names)``: which rows are wrong (high error), and the two groups' names.

    Rows without a label or a prediction are in neither group (``bad`` is then
    a float array with NaN there).

    Examples
    --------
    >>> bad, names = error_groups([1, 0, 1, None], [1, 1, 1, 0], "classification")
    >>> bad.tolist(), names
    ([0.0, 1.0, 0.0, nan], ('correct', 'wrong'))
    >>> error_groups([0.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 2.0], "regression")[0].tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    truth = pd.Series(np.asarray(y_true, dtype=object).reshape(-1))
    predicted = pd.Series(np.asarray(y_pred, dtype=object).reshape(-1))
    known = (truth.notna() & predicted.notna()).to_numpy().copy()
    bad = np.full(len(truth), np.nan)
    if task == "regression":
        error = np.abs(
            pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)
            - pd.to_numeric(predicted, errors="coerce").to_numpy(dtype=float)
        )
        known &= np.isfinite(error)
        if known.any():
            cut = np.quantile(error[known], HIGH_ERROR_QUANTILE)
            # Ties at the cut stay low unless every error is the same (then none is high).
            bad[known] = (error[known] > cut).astype(float)
        return bad, ("low error", "high error")
    same = (truth.astype(str) == predicted.astype(str)).to_numpy()
    # A label 1 and a prediction 1.0 are the same answer.
    numeric = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float) == pd.to_numeric(
        predicted, errors="coerce"
    ).to_numpy(dtype=float)
    bad[known] = (~(same | numeric))[known].astype(float)
    return bad, ("correct", "wrong")


def error_attribution(
    attributions: pd.DataFrame,
    bad,
    *,
    task: str,
    groups: tuple = ("correct", "wrong"),
    source: str | None = None,
    min_group_rows: int = MIN_GROUP_ROWS,
) -> ErrorAttribution:
    """Rank the features by how much more of the attributions they hold on the bad rows.

    Parameters
    ----------
    attributions : pandas.DataFrame
        One column per feature, one row per window row (NaN where a row was not
        attributed).
    bad : array-like of float
        1 for a wrong (high-error) row, 0 for a right one, NaN for neither (see
        :func:`error_groups`).
    task : {'classification', 'regression'}
    groups : tuple of str
        The names of the right and the wrong group.
    source : str, optional
        Where the attributions came from, carried into the result.
    min_group_rows : int, default=20
        Fewer attributed rows in a group: not measured, with the reason.

    Returns
    -------
    ErrorAttribution

    Examples
    --------
    The wrong rows are those where ``b`` pushed the prediction hard:

    >>> import pandas as pd
    >>> values = pd.DataFrame({"a": [1.0, 1.0, 1.0, 1.0], "b": [0.1, 0.1, 2.0, 3.0]})
    >>> result = error_attribution(values, [0, 0, 1, 1], task="classification", min_group_rows=2)
    >>> result.top_feature, round(result.features[0]["share_difference"], 3)
    ('b', 0.623)
    """
    flags = np.asarray(bad, dtype=float).reshape(-1)
    if len(flags) != len(attributions):
        raise ValueError(
            f"bad has {len(flags)} values for {len(attributions)} rows of attributions; "
            "give one flag per row."
        )
    values = attributions.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    values = np.where(np.isfinite(values), np.abs(values), np.nan)
    attributed = ~np.isnan(values).all(axis=1) if values.shape[1] else np.zeros(len(flags), bool)
    good_rows = attributed & (flags == 0)
    bad_rows = attributed & (flags == 1)
    n_good, n_bad = int(good_rows.sum()), int(bad_rows.sum())
    if min(n_good, n_bad) < min_group_rows:
        return ErrorAttribution(
            task,
            tuple(groups),
            n_good,
            n_bad,
            features=[],
            source=source,
            note=(
                f"{n_bad} attributed {groups[1]} rows and {n_good} {groups[0]} rows; each group "
                f"needs {min_group_rows}"
            ),
        )
    good = _mean_abs(values[good_rows])
    worse = _mean_abs(values[bad_rows])
    good_share, bad_share = _share(good), _share(worse)
    records = [
        {
            "feature": str(feature),
            "good_importance": float(good[j]),
            "bad_importance": float(worse[j]),
            "good_share": float(good_share[j]),
            "bad_share": float(bad_share[j]),
            "share_difference": float(bad_share[j] - good_share[j]),
        }
        for j, feature in enumerate(attributions.columns)
    ]
    order = sorted(range(len(records)), key=lambda j: (-(bad_share[j] - good_share[j]), j))
    records = [records[j] for j in order]
    return ErrorAttribution(task, tuple(groups), n_good, n_bad, features=records, source=source)


def _mean_abs(values: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(values), axis=0)
    sums = np.nansum(values, axis=0)
    return np.divide(sums, counts, out=np.zeros(values.shape[1]), where=counts > 0)


def _share(importance: np.ndarray) -> np.ndarray:
    total = importance.sum()
    return importance / total if total > 0 else np.zeros_like(importance)
