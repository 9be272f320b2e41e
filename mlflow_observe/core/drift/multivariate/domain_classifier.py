"""Multivariate drift: changes that no single column shows.

Two detectors compare a reference sample with a window sample over all
feature columns at once. Both catch, for example, a correlation between two
features that changes while each feature's own distribution stays the same.

**Domain classifier** (:func:`domain_classifier_drift`). Gradient-boosted trees
(scikit-learn's ``HistGradientBoostingClassifier``, seeded, classes weighted
equally) learn to tell window rows from reference rows. With stratified
``n_splits``-fold cross-validation, every row is scored by a model that did
not see it; the statistic is the mean of the folds' held-out ROC AUCs. When
the two samples come from one distribution no model can separate them, and
each fold's AUC is a Mann-Whitney statistic with mean 0.5 and variance
``(n + 1) / (12 n_0 n_1)`` for its ``n_0`` reference and ``n_1`` window rows
[1]_. The folds share training rows, so their AUCs are correlated: the
variance of their mean is taken as a single fold's times
``1 / K + 1 / (K - 1)`` (``K`` folds; the correction of Nadeau and Bengio
[2]_, which widens the naive ``1 / K`` by 1.5 for five folds), which gives the
null standard error ``se_0``. The *band* is

    0.5 +/- max(z_(1 - alpha) * se_0, min_margin)

with ``alpha`` = 0.001 and ``min_margin`` = 0.02 by default, a floor that
keeps very large samples from alarming on a difference too small to matter.
The window drifts when the AUC is above the band; an AUC below it is not
drift (cross-validated AUCs of samples from one distribution fall slightly
below 0.5 by chance) and is reported as it is. Measured on windows drawn from
the reference distribution (40 seeds, 1500 reference and 600 window rows,
no floor), ``(AUC - 0.5) / se_0`` had mean -0.09 and standard deviation 0.93:
the band is calibrated. The 95% interval of the AUC uses the folds' DeLong
variances [3]_, with the same correction. Feature importances are
permutation importances on the held-out folds: the drop of the held-out AUC
when one column's values are shuffled, averaged over the folds, so the
columns that separate the samples rank first (a column that matters only
with another, as in a correlation change, ranks high with it).

**PCA reconstruction error** (:func:`reconstruction_drift`). Numeric columns
are standardised and each categorical column becomes one indicator per
reference category, centred and divided by the square root of the category's
share, as in factor analysis of mixed data [4]_ (so an all-categorical table
is a multiple correspondence analysis). Missing numbers take the reference
mean; a missing or unseen category sets no indicator. A PCA keeps the leading
components that explain ``variance`` (default 0.9) of the reference's
variance, and never every dimension. A row's error is the Euclidean distance
between the row and its projection back from those components; the statistic
is the window's mean error. The threshold is calibrated on reference rows
that the model did not see: the reference is cut into ``n_chunks`` chunks, the
scaling and PCA are fitted ``n_chunks`` times on all chunks but one, and each
left-out chunk is scored by the model that did not see it. The window is scored
by the same models (its errors averaged over them), so without drift it has
the expected error of a left-out chunk. It drifts when its mean error exceeds

    mean_0 + max(z_(1 - alpha) * sd_0 * sqrt(1 / n_reference + 1 / n_window),
                 min_increase * mean_0)

where ``mean_0`` and ``sd_0`` are the mean and standard deviation of the
left-out reference errors, ``alpha`` defaults to 0.001 and ``min_increase``
to 0.02 (the same kind of floor as the AUC's).

Both detectors need at least ``MIN_ROWS`` (100) rows on each side.

References
----------
.. [1] Mason, S. J., Graham, N. E. "Areas beneath the relative operating
   characteristics (ROC) and relative operating levels (ROL) curves: Statistical
   significance and interpretation", Q. J. R. Meteorol. Soc. 128, 2002.
.. [2] Nadeau, C., Bengio, Y. "Inference for the generalization error",
   Machine Learning 52, 2003.
.. [3] DeLong, E. R., DeLong, D. M., Clarke-Pearson, D. L. "Comparing the areas
   under two or more correlated receiver operating characteristic curves: a
   nonparametric approach", Biometrics 44(3), 1988.
.. [4] Pagès, J. "Analyse factorielle de données mixtes", Revue de statistique
   appliquée 52(4), 2004.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core._validation import Interval, NoneValue, checked
from mlflow_observe.core.drift.multivariate._common import (
    _COMMON,
    MAX_IMPORTANCE_ROWS,
    MAX_TRAINING_ROWS,
    _check_sizes,
    _threads_for,
)
from mlflow_observe.core.drift.multivariate.encoding import FeatureEncoding
from mlflow_observe.core.stats.auc import auc_and_variance, held_out_auc


@dataclass(frozen=True)
class DomainClassifierResult:
    """How well a classifier tells the window from the reference.

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
    importances : dict of str to float
        Each column's permutation importance (held-out AUC drop), largest first.
    fold_statistics : tuple of float
        Each fold's held-out AUC.
    n_reference, n_current : int
        Rows compared on each side.
    """

    statistic: float
    pvalue: float
    interval: tuple
    band: tuple
    drifted: bool
    importances: dict
    fold_statistics: tuple
    n_reference: int
    n_current: int

    @property
    def threshold(self) -> float:
        """The AUC above which the window drifts: the band's upper edge."""
        return self.band[1]

    @property
    def ranked_features(self) -> list[str]:
        """The columns, those that separate the samples most first."""
        return list(self.importances)


@checked(
    {
        **_COMMON,
        "n_splits": [Interval(int, 2, 20)],
        "n_jobs": [NoneValue(), Interval(int, -1, None)],
        "min_margin": [Interval(float, 0, 0.5, closed="left")],
    }
)
def domain_classifier_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    categorical=None,
    n_splits: int = 5,
    alpha: float = 0.001,
    min_margin: float = 0.02,
    random_state: int = 0,
    n_jobs: int | None = 1,
) -> DomainClassifierResult:
    """Detect drift with a classifier trained to tell ``current`` rows from ``reference`` rows.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        The two samples, with the same feature columns (``current`` may have more).
    categorical : list of str, optional
        The categorical columns (default: those whose dtype is not numeric).
    n_splits : int, default=5
        Cross-validation folds.
    alpha : float, default=0.001
        One-sided level of the band's statistical half-width.
    min_margin : float, default=0.02
        The band's smallest half-width.
    random_state : int, default=0
        Seed of the folds, the trees and the permutations.
    n_jobs : int or None, default=1
        Threads the trees use on samples of 50,000 rows or more (None or -1:
        every core). One by default: the trees' OpenMP threads wait actively for
        each other, and on cores busy with other work two threads were 4.6 times
        slower than one (see ``benchmarks/README.md``).

    Returns
    -------
    DomainClassifierResult

    Raises
    ------
    WindowTooSmallError
        When either sample has fewer than ``MIN_ROWS`` rows.

    See Also
    --------
    reconstruction_drift : the other multivariate detector.

    Notes
    -----
    The band and the interval are described in the module docstring. Each
    fold's trees learn from at most ``MAX_TRAINING_ROWS`` (30,000) of its
    training rows, a random subset, which bounds the cost on large samples;
    every row is still scored. Importances are measured on at most
    ``MAX_IMPORTANCE_ROWS`` (10,000) held-out rows a fold.

    Examples
    --------
    Two features whose correlation flips while each keeps its distribution:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def sample(rho, n=1000):
    ...     x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    ...     return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "noise": rng.normal(size=n)})
    >>> result = domain_classifier_drift(sample(0.9), sample(-0.9))
    >>> result.drifted, result.statistic > 0.9, sorted(result.ranked_features[:2])
    (True, True, ['a', 'b'])
    >>> domain_classifier_drift(sample(0.9), sample(0.9)).drifted
    False
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    _check_sizes("domain classifier", reference, current)
    encoding = FeatureEncoding.fit(reference, categorical=categorical)
    x_reference, is_categorical = encoding.codes(reference)
    x_current, _ = encoding.codes(current)
    x = np.vstack([x_reference, x_current])
    y = np.r_[np.zeros(len(x_reference), dtype=int), np.ones(len(x_current), dtype=int)]
    rng = np.random.default_rng(random_state)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    fold_labels, fold_scores, drops = [], [], []
    with _threads_for(len(y), n_jobs):
        for train, test in folds.split(x, y):
            model = HistGradientBoostingClassifier(
                categorical_features=is_categorical if is_categorical.any() else None,
                class_weight="balanced",
                early_stopping=True,
                validation_fraction=0.1,
                n_iter_no_change=10,
                random_state=random_state,
            )
            if len(train) > MAX_TRAINING_ROWS:
                train = rng.choice(train, MAX_TRAINING_ROWS, replace=False)
            model.fit(x[train], y[train])
            score = model.predict_proba(x[test])[:, 1]
            fold_labels.append(y[test])
            fold_scores.append(score)
            auc = auc_and_variance(y[test], score)[0]
            drops.append(_permutation_drops(model, x[test], y[test], auc, rng))
    judged = held_out_auc(fold_labels, fold_scores, alpha=alpha, min_margin=min_margin)
    importances = dict(zip(encoding.columns, np.mean(drops, axis=0), strict=True))
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    return DomainClassifierResult(
        statistic=judged.statistic,
        pvalue=judged.pvalue,
        interval=judged.interval,
        band=judged.band,
        drifted=judged.drifted,
        importances={name: float(value) for name, value in ranked},
        fold_statistics=judged.fold_statistics,
        n_reference=len(reference),
        n_current=len(current),
    )


# -- domain classifier helpers ------------------------------------------------------------


def _permutation_drops(model, x: np.ndarray, y: np.ndarray, auc: float, rng) -> np.ndarray:
    """The held-out AUC lost when each column is shuffled (on at most MAX_IMPORTANCE_ROWS rows)."""
    if len(y) > MAX_IMPORTANCE_ROWS:
        keep = rng.choice(len(y), MAX_IMPORTANCE_ROWS, replace=False)
        x, y = x[keep], y[keep]
        if y.min() == y.max():  # one class left: nothing to measure
            return np.zeros(x.shape[1])
        auc = auc_and_variance(y, model.predict_proba(x)[:, 1])[0]
    drops = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        shuffled = x.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        drops[j] = auc - auc_and_variance(y, model.predict_proba(shuffled)[:, 1])[0]
    return drops


# -- PCA helpers --------------------------------------------------------------------------
