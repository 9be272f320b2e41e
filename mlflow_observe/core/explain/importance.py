"""Global importance from attributions, and attribution drift between baseline and window.

A feature's *global importance* on a set of rows is the mean absolute value of
its attributions there; its *share* is that importance over the sum of all
features' importances. *Attribution drift* compares a window's shares with the
baseline's, two ways:

* each feature's change of share (window minus baseline, in share points);
* the agreement of the rankings, as Amazon SageMaker Clarify measures it: the
  normalised discounted cumulative gain of the window's top ``k`` features,
  each worth its *baseline* importance,

      nDCG = sum_i a(F'_i) / log2(i + 1)  /  sum_i a(F_i) / log2(i + 1)

  over ``i = 1..k``, where ``F'_i`` is the window's ``i``-th feature, ``F_i`` the
  baseline's and ``a`` the baseline importance. It is 1 when the window ranks
  the baseline's most important features first, and falls as less important
  ones take their places. The window drifts when nDCG falls below
  ``threshold`` (0.9 by default, Clarify's) or when a feature's share moves by
  more than ``max_share_change`` (0.1 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core._validation import Interval, checked
from mlflow_observe.core.naming import assign_metric_names

# Metric names of the window as a whole: a feature with one of these names gets a suffix.
RESERVED_NAMES = ("ndcg", "drifted", "n_rows")


def global_importance(values: pd.DataFrame) -> dict[str, float]:
    """Each feature's mean absolute attribution, the most important first.

    Examples
    --------
    >>> import pandas as pd
    >>> global_importance(pd.DataFrame({"a": [1.0, -3.0], "b": [0.5, 0.5]}))
    {'a': 2.0, 'b': 0.5}
    """
    means = values.abs().mean(axis=0, skipna=True)
    ranked = means.sort_values(ascending=False, kind="stable")
    return {str(k): float(v) for k, v in ranked.items()}


def _shares(importance: dict) -> dict[str, float]:
    total = float(sum(importance.values()))
    if total <= 0:
        return {k: 0.0 for k in importance}
    return {k: float(v) / total for k, v in importance.items()}


@dataclass(frozen=True)
class AttributionDriftResult:
    """How the model's reliance on its features moved between baseline and window.

    Attributes
    ----------
    baseline_share, current_share : dict of str to float
        Each feature's share of the global importance.
    share_change : dict of str to float
        Window share minus baseline share, largest move (in absolute value) first.
    ndcg : float
        Agreement of the window's top features with the baseline's (1: same order).
    threshold : float
        The nDCG below which the window drifts.
    max_share_change : float
        The share move above which the window drifts.
    drifted : bool
    top_k : int
    n_reference, n_current : int or None
        Rows whose attributions gave each side's importance, when known.
    source : str or None
        Where the window's attributions came from (``"logged"``, ``"computed"``).
    method : str or None
        How the attributions were computed (``"tree_shap"``, ``"sampled_shapley"``).
    """

    baseline_share: dict
    current_share: dict
    share_change: dict
    ndcg: float
    threshold: float
    max_share_change: float
    drifted: bool
    top_k: int
    n_reference: int | None = None
    n_current: int | None = None
    source: str | None = None
    method: str | None = None

    @property
    def metric_names(self) -> dict[str, str]:
        """Each feature's key-safe name (``ndcg``, ``drifted`` and ``n_rows`` are taken)."""
        names = assign_metric_names([*RESERVED_NAMES, *self.share_change])
        return {f: names[f] for f in self.share_change}

    def metrics(self, prefix: str = "drift/attribution/") -> dict[str, float]:
        """``<prefix><feature>`` (share change), ``<prefix>ndcg``, ``<prefix>drifted``, and
        ``<prefix>n_rows`` when the window's row count is known."""
        names = self.metric_names
        metrics = {prefix + names[f]: value for f, value in self.share_change.items()}
        metrics[prefix + "ndcg"] = self.ndcg
        metrics[prefix + "drifted"] = float(self.drifted)
        if self.n_current is not None:
            metrics[prefix + "n_rows"] = float(self.n_current)
        return metrics

    def to_records(self) -> list[dict]:
        """The drift table's row: nDCG as the statistic, the features in ``statistics``."""
        largest = max((abs(v) for v in self.share_change.values()), default=0.0)
        return [
            {
                "column": "attribution",
                "metric_name": "attribution",
                "role": "attribution",
                "kind": "attribution",
                "method": "ndcg",
                "exact": None,
                "pvalue_adjusted": None,
                "statistics": {
                    "largest_share_change": largest,
                    "max_share_change": self.max_share_change,
                    "top_k": self.top_k,
                    "source": self.source,
                    "attribution_method": self.method,
                    "features": self.feature_records(),
                },
                "statistic": self.ndcg,
                "pvalue": None,
                "threshold": self.threshold,
                "drifted": self.drifted,
                "status": "drift" if self.drifted else "ok",
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "note": None,
                "metric_key": "drift/attribution/ndcg",
            }
        ]

    def feature_records(self) -> list[dict]:
        """One record per feature: its shares, their change and its ranks."""
        baseline_rank = {f: i + 1 for i, f in enumerate(_ranked(self.baseline_share))}
        current_rank = {f: i + 1 for i, f in enumerate(_ranked(self.current_share))}
        return [
            {
                "feature": feature,
                "baseline_share": self.baseline_share.get(feature, 0.0),
                "current_share": self.current_share.get(feature, 0.0),
                "share_change": change,
                "baseline_rank": baseline_rank.get(feature),
                "current_rank": current_rank.get(feature),
                "metric_key": "drift/attribution/" + self.metric_names[feature],
            }
            for feature, change in self.share_change.items()
        ]


@dataclass(frozen=True)
class AttributionSkipped:
    """Attribution drift not measured on a window, and why (no metric: a number or nothing)."""

    reason: str
    n_current: int = 0

    def metrics(self) -> dict[str, float]:
        return {}

    def to_records(self) -> list[dict]:
        """The drift table's row, ``status`` ``'skipped'`` with the reason as its note."""
        return [
            {
                "column": "attribution",
                "metric_name": "attribution",
                "role": "attribution",
                "kind": "attribution",
                "method": "ndcg",
                "exact": None,
                "pvalue_adjusted": None,
                "statistics": {},
                "statistic": None,
                "pvalue": None,
                "threshold": None,
                "drifted": False,
                "status": "skipped",
                "n_reference": None,
                "n_current": self.n_current,
                "note": self.reason,
                "metric_key": None,
            }
        ]


def _ranked(share: dict) -> list[str]:
    return [k for k, _ in sorted(share.items(), key=lambda item: (-item[1], item[0]))]


@checked(
    {
        "top_k": [Interval(int, 1, None)],
        "threshold": [Interval(float, 0, 1)],
        "max_share_change": [Interval(float, 0, 1)],
    }
)
def attribution_drift(
    baseline: dict,
    current: dict,
    *,
    top_k: int = 10,
    threshold: float = 0.9,
    max_share_change: float = 0.1,
    n_reference: int | None = None,
    n_current: int | None = None,
    source: str | None = None,
    method: str | None = None,
) -> AttributionDriftResult:
    """Compare a window's global importance with the baseline's.

    Parameters
    ----------
    baseline, current : dict of str to float
        Global importances (see :func:`global_importance`); a feature missing
        from one side counts as 0 there.
    top_k : int, default=10
        Features the ranking agreement looks at.
    threshold : float, default=0.9
        The nDCG below which the window drifts.
    max_share_change : float, default=0.1
        The move of one feature's share above which the window drifts.
    n_reference, n_current, source, method : optional
        Carried into the result (rows behind each side, where the window's
        attributions came from and how they were computed).

    Returns
    -------
    AttributionDriftResult

    Examples
    --------
    The model leaned on ``income``; in the window it leans on ``age``:

    >>> result = attribution_drift({"income": 0.6, "age": 0.1, "plan": 0.3},
    ...                            {"income": 0.1, "age": 0.6, "plan": 0.3})
    >>> round(result.ndcg, 3), result.drifted, round(result.share_change["age"], 2)
    (0.702, True, 0.5)
    >>> attribution_drift({"income": 0.6, "age": 0.1}, {"income": 0.58, "age": 0.12}).drifted
    False
    """
    for side, importance in (("baseline", baseline), ("window", current)):
        bad = [k for k, v in importance.items() if not np.isfinite(v) or v < 0]
        if bad:
            raise ValueError(
                f"The {side} importances of {bad} are negative or not finite; importances are "
                "mean absolute attributions (>= 0)."
            )
    features = list(dict.fromkeys([*baseline, *current]))
    baseline_share = _shares({f: float(baseline.get(f, 0.0)) for f in features})
    current_share = _shares({f: float(current.get(f, 0.0)) for f in features})
    change = {f: current_share[f] - baseline_share[f] for f in features}
    change = dict(sorted(change.items(), key=lambda item: (-abs(item[1]), item[0])))
    ndcg = _ndcg(baseline_share, _ranked(current_share), _ranked(baseline_share), top_k)
    largest = max((abs(v) for v in change.values()), default=0.0)
    return AttributionDriftResult(
        baseline_share=baseline_share,
        current_share=current_share,
        share_change=change,
        ndcg=ndcg,
        threshold=threshold,
        max_share_change=max_share_change,
        drifted=bool(ndcg < threshold or largest > max_share_change),
        top_k=top_k,
        n_reference=n_reference,
        n_current=n_current,
        source=source,
        method=method,
    )


def _ndcg(relevance: dict, ranking: list, ideal: list, k: int) -> float:
    discounts = 1 / np.log2(np.arange(2, k + 2))
    gain = sum(relevance.get(f, 0.0) * w for f, w in zip(ranking[:k], discounts, strict=False))
    best = sum(relevance.get(f, 0.0) * w for f, w in zip(ideal[:k], discounts, strict=False))
    return float(gain / best) if best > 0 else 1.0


class ImportanceCounter:
    """Global importance counted part by part: per feature, the sum of ``|attribution|``.

    Rows without an attribution for a feature (NaN: the row was not sampled for
    explanation) are not counted for it, so a window whose served predictions
    were attributed at a rate gives the mean over its attributed rows.

    Examples
    --------
    >>> import pandas as pd
    >>> counter = ImportanceCounter()
    >>> counter.update(pd.DataFrame({"a": [1.0, None], "b": [-2.0, None]}))
    >>> counter.update(pd.DataFrame({"a": [3.0], "b": [0.0]}))
    >>> counter.importance(), counter.n_rows
    ({'a': 2.0, 'b': 1.0}, 2)
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def update(self, values: pd.DataFrame) -> None:
        """Add a part's attributions (one column per feature; non-numeric columns refused)."""
        if values.shape[1] == 0 or len(values) == 0:
            for column in values.columns:
                self.sums.setdefault(str(column), 0.0)
                self.counts.setdefault(str(column), 0)
            return
        try:
            array = np.abs(values.to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "Attributions must be numbers (one column per feature); "
                f"got columns of types {sorted({str(t) for t in values.dtypes})}."
            ) from exc
        # Only finite values count: an infinite attribution reconciles nothing.
        finite = np.isfinite(array)
        sums = np.where(finite, array, 0.0).sum(axis=0)
        counts = finite.sum(axis=0)
        for column, total, count in zip(values.columns, sums, counts, strict=True):
            key = str(column)
            self.sums[key] = self.sums.get(key, 0.0) + float(total)
            self.counts[key] = self.counts.get(key, 0) + int(count)

    def merge(self, other: ImportanceCounter) -> ImportanceCounter:
        """A counter of both parts."""
        merged = ImportanceCounter()
        for side in (self, other):
            for key, total in side.sums.items():
                merged.sums[key] = merged.sums.get(key, 0.0) + total
                merged.counts[key] = merged.counts.get(key, 0) + side.counts[key]
        return merged

    __add__ = merge

    @property
    def n_rows(self) -> int:
        """The most rows counted for one feature (the rows that were attributed)."""
        return max(self.counts.values(), default=0)

    def importance(self) -> dict[str, float]:
        """Each feature's mean ``|attribution|`` (0 when none counted), the largest first."""
        means = {k: (self.sums[k] / self.counts[k] if self.counts[k] else 0.0) for k in self.sums}
        return dict(sorted(means.items(), key=lambda item: (-item[1], item[0])))
