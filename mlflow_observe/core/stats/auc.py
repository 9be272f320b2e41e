"""A classifier two-sample test: the held-out ROC AUC of telling two samples apart.

A classifier is trained to tell window rows from reference rows with
stratified K-fold cross-validation, so every row is scored by a model that did
not see it. When both samples come from one distribution no model separates
them, and each fold's AUC is a Mann-Whitney statistic with mean 0.5 and
variance ``(n + 1) / (12 n_0 n_1)`` for its ``n_0`` reference and ``n_1``
window rows (Mason and Graham, 2002). The folds share training rows, so their
AUCs are correlated: the variance of their mean is taken as one fold's times
``1 / K + 1 / (K - 1)`` (Nadeau and Bengio, 2003), which gives the null
standard error ``se_0`` and the band ``0.5 +/- max(z_(1 - alpha) * se_0,
min_margin)``. The samples drift when the mean AUC is above the band. The 95%
interval of the AUC uses the folds' DeLong variances with the same widening.

The classifier is the caller's: this module only turns the folds' held-out
labels and scores into the statistic, its band and its interval, so that the
multivariate, text and embedding detectors judge their AUCs by one rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

CONFIDENCE = 0.95


@dataclass(frozen=True)
class HeldOutAUCResult:
    """The mean held-out AUC of a classifier telling the window from the reference.

    Attributes
    ----------
    statistic : float
        The mean held-out ROC AUC over the folds (0.5: inseparable).
    pvalue : float
        One-sided p-value of the AUC against 0.5 (normal approximation of the
        Mann-Whitney null).
    interval : tuple of float
        95% interval of the AUC (DeLong variances of the folds).
    band : tuple of float
        The band around 0.5 inside which the samples count as alike.
    drifted : bool
        True when the AUC is above the band.
    fold_statistics : tuple of float
        Each fold's held-out AUC.
    """

    statistic: float
    pvalue: float
    interval: tuple
    band: tuple
    drifted: bool
    fold_statistics: tuple

    @property
    def threshold(self) -> float:
        """The AUC above which the window drifts: the band's upper edge."""
        return self.band[1]


def auc_and_variance(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC (ties count half) of ``score`` for ``y == 1``, and its DeLong variance.

    Examples
    --------
    >>> import numpy as np
    >>> auc, variance = auc_and_variance(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> auc
    0.75
    """
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(score)
    auc = (ranks[positive].sum() - m * (m + 1) / 2) / (m * n)
    # Structural components: each positive's share of negatives below it, and vice versa.
    v10 = (ranks[positive] - rankdata(score[positive])) / n
    v01 = 1 - (ranks[~positive] - rankdata(score[~positive])) / m
    return float(auc), float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)


def null_auc_variance(y: np.ndarray) -> float:
    """Variance of the Mann-Whitney AUC when both classes come from one distribution."""
    m = int((y == 1).sum())
    n = len(y) - m
    return (m + n + 1) / (12 * m * n)


def held_out_auc(
    fold_labels: Sequence[np.ndarray],
    fold_scores: Sequence[np.ndarray],
    *,
    alpha: float = 0.001,
    min_margin: float = 0.02,
) -> HeldOutAUCResult:
    """Judge a classifier's held-out scores: is the window separable from the reference?

    Parameters
    ----------
    fold_labels : sequence of array of int
        Each fold's held-out labels: 0 for reference rows, 1 for window rows.
        Every fold must hold both.
    fold_scores : sequence of array of float
        The classifier's score for each held-out row (higher: more like the window).
    alpha : float, default=0.001
        One-sided level of the band's statistical half-width.
    min_margin : float, default=0.02
        The band's smallest half-width: a floor that keeps very large samples
        from alarming on a difference too small to matter.

    Returns
    -------
    HeldOutAUCResult

    Examples
    --------
    Scores that carry no information stay inside the band; scores that do leave it:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = [np.repeat([0, 1], 200) for _ in range(5)]
    >>> noise = held_out_auc(labels, [rng.normal(size=400) for _ in labels])
    >>> noise.drifted
    False
    >>> signal = held_out_auc(labels, [y + rng.normal(size=400) for y in labels])
    >>> signal.drifted, round(signal.statistic, 1)
    (True, 0.8)
    """
    if len(fold_labels) != len(fold_scores) or len(fold_labels) < 2:
        raise ValueError(
            f"held_out_auc needs the labels and scores of at least 2 folds; got "
            f"{len(fold_labels)} label and {len(fold_scores)} score arrays."
        )
    aucs, variances, null_variances = [], [], []
    for y, score in zip(fold_labels, fold_scores, strict=True):
        y = np.asarray(y)
        if y.min() == y.max():
            raise ValueError("Every fold must hold both reference (0) and window (1) rows.")
        auc, variance = auc_and_variance(y, np.asarray(score, dtype=float))
        aucs.append(auc)
        variances.append(variance)
        null_variances.append(null_auc_variance(y))
    k = len(aucs)
    statistic = float(np.mean(aucs))
    # Nadeau and Bengio's correction: folds sharing training rows have correlated AUCs.
    widening = 1 / k + 1 / (k - 1)
    se = float(np.sqrt(widening * np.mean(variances)))
    se_null = float(np.sqrt(widening * np.mean(null_variances)))
    half_width = max(float(norm.ppf(1 - alpha)) * se_null, min_margin)
    z = float(norm.ppf(0.5 + CONFIDENCE / 2))
    return HeldOutAUCResult(
        statistic=statistic,
        pvalue=float(norm.sf((statistic - 0.5) / se_null)),
        interval=(max(statistic - z * se, 0.0), min(statistic + z * se, 1.0)),
        band=(0.5 - half_width, 0.5 + half_width),
        drifted=bool(statistic > 0.5 + half_width),
        fold_statistics=tuple(float(a) for a in aucs),
    )
