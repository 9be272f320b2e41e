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
    """

    baseline_share: dict
    current_share: dict
    share_change: dict
    ndcg: float
    threshold: float
    max_share_change: float
    drifted: bool
    top_k: int

    def metrics(self, prefix: str = "drift/attribution/") -> dict[str, float]:
        """``<prefix><feature>`` (share change), ``<prefix>ndcg`` and ``<prefix>drifted``."""
        metrics = {prefix + name: value for name, value in self.share_change.items()}
        metrics[prefix + "ndcg"] = self.ndcg
        metrics[prefix + "drifted"] = float(self.drifted)
        return metrics

    def to_records(self) -> list[dict]:
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
            }
            for feature, change in self.share_change.items()
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
    )


def _ndcg(relevance: dict, ranking: list, ideal: list, k: int) -> float:
    discounts = 1 / np.log2(np.arange(2, k + 2))
    gain = sum(relevance.get(f, 0.0) * w for f, w in zip(ranking[:k], discounts, strict=False))
    best = sum(relevance.get(f, 0.0) * w for f, w in zip(ideal[:k], discounts, strict=False))
    return float(gain / best) if best > 0 else 1.0
