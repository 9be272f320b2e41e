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
from scipy.stats import norm, rankdata

from mlflow_observe.core._parallel import MIN_ROWS_FOR_THREADS, effective_n_jobs
from mlflow_observe.core._validation import InstanceOf, Interval, NoneValue, checked
from mlflow_observe.core.encoding import FeatureEncoding

# Fewer rows than this on either side and neither detector is worth running.
MIN_ROWS = 100
# Rows of a held-out fold used for permutation importances (a bound on their cost).
MAX_IMPORTANCE_ROWS = 10_000
# Rows each fold's trees learn from (a random subset beyond it): a bound on the fitting cost.
# Every row is still scored, so the AUC and its band use every row.
MAX_TRAINING_ROWS = 30_000
CONFIDENCE = 0.95

_FRAME = [InstanceOf(pd.DataFrame, description="a pandas DataFrame")]
_COMMON = {
    "reference": _FRAME,
    "current": _FRAME,
    "categorical": [NoneValue(), InstanceOf(list, tuple, description="a list of column names")],
    "alpha": [Interval(float, 0, 1, closed="neither")],
    "random_state": [Interval(int, 0, None)],
}


class WindowTooSmallError(ValueError):
    """A sample has too few rows for a multivariate detector."""


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


@dataclass(frozen=True)
class ReconstructionResult:
    """The window's PCA reconstruction error against the reference's.

    Attributes
    ----------
    statistic : float
        The window's mean reconstruction error (Euclidean, standardised units).
    pvalue : float
        One-sided p-value of the rise over the reference error (normal approximation).
    threshold : float
        The error above which the window drifts.
    drifted : bool
    interval : tuple of float
        95% interval of the window's mean error.
    reference_error : float
        Mean error of the reference rows, each scored by a model that did not see it.
    chunk_errors : tuple of float
        Mean error of each left-out reference chunk.
    n_components, n_dimensions : int
        Components kept, of the encoded dimensions.
    variance_kept : float
        Share of the reference variance the kept components explain.
    n_reference, n_current : int
    """

    statistic: float
    pvalue: float
    threshold: float
    drifted: bool
    interval: tuple
    reference_error: float
    chunk_errors: tuple
    n_components: int
    n_dimensions: int
    variance_kept: float
    n_reference: int
    n_current: int


@checked({**_COMMON, "n_splits": [Interval(int, 2, 20)],
          "n_jobs": [NoneValue(), Interval(int, -1, None)],
          "min_margin": [Interval(float, 0, 0.5, closed="left")]})
def domain_classifier_drift(reference: pd.DataFrame, current: pd.DataFrame, *,
                            categorical=None, n_splits: int = 5, alpha: float = 0.001,
                            min_margin: float = 0.02,
                            random_state: int = 0,
                            n_jobs: int | None = 1) -> DomainClassifierResult:
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
    aucs, variances, null_variances, drops = [], [], [], []
    with _threads_for(len(y), n_jobs):
        for train, test in folds.split(x, y):
            model = HistGradientBoostingClassifier(
                categorical_features=is_categorical if is_categorical.any() else None,
                class_weight="balanced", early_stopping=True, validation_fraction=0.1,
                n_iter_no_change=10, random_state=random_state,
            )
            if len(train) > MAX_TRAINING_ROWS:
                train = rng.choice(train, MAX_TRAINING_ROWS, replace=False)
            model.fit(x[train], y[train])
            auc, variance = _auc_and_variance(y[test], model.predict_proba(x[test])[:, 1])
            aucs.append(auc)
            variances.append(variance)
            null_variances.append(_null_auc_variance(y[test]))
            drops.append(_permutation_drops(model, x[test], y[test], auc, rng))
    statistic = float(np.mean(aucs))
    # The folds share training rows, so their AUCs are correlated: Nadeau and Bengio's
    # correction widens the variance of the mean from 1/K to 1/K + n_test/n_train of a fold's.
    widening = 1 / n_splits + 1 / (n_splits - 1)
    se = float(np.sqrt(widening * np.mean(variances)))
    se_null = float(np.sqrt(widening * np.mean(null_variances)))
    half_width = max(norm.ppf(1 - alpha) * se_null, min_margin)
    z = norm.ppf(0.5 + CONFIDENCE / 2)
    importances = dict(zip(encoding.columns, np.mean(drops, axis=0)))
    ranked = sorted(importances.items(), key=lambda item: -item[1])
    return DomainClassifierResult(
        statistic=statistic,
        pvalue=float(norm.sf((statistic - 0.5) / se_null)),
        interval=(max(statistic - z * se, 0.0), min(statistic + z * se, 1.0)),
        band=(0.5 - float(half_width), 0.5 + float(half_width)),
        drifted=bool(statistic > 0.5 + half_width),
        importances={name: float(value) for name, value in ranked},
        fold_statistics=tuple(float(a) for a in aucs),
        n_reference=len(reference),
        n_current=len(current),
    )


@checked({**_COMMON, "variance": [Interval(float, 0, 1, closed="neither")],
          "n_chunks": [Interval(int, 2, 20)], "min_increase": [Interval(float, 0, None)]})
def reconstruction_drift(reference: pd.DataFrame, current: pd.DataFrame, *,
                         categorical=None, variance: float = 0.9, n_chunks: int = 5,
                         alpha: float = 0.001, min_increase: float = 0.02,
                         random_state: int = 0) -> ReconstructionResult:
    """Detect drift by how badly a PCA of the reference reconstructs ``current``.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        The two samples, with the same feature columns (``current`` may have more).
    categorical : list of str, optional
        The categorical columns (default: those whose dtype is not numeric).
    variance : float, default=0.9
        Share of the reference variance the kept components explain.
    n_chunks : int, default=5
        Reference chunks: each is left out of one fit and scored by it.
    alpha : float, default=0.001
        One-sided level of the threshold.
    min_increase : float, default=0.02
        The smallest rise over the reference error, relative to it, that drifts.
    random_state : int, default=0
        Seed of the chunks.

    Returns
    -------
    ReconstructionResult

    Raises
    ------
    WindowTooSmallError
        When either sample has fewer than ``MIN_ROWS`` rows.
    ValueError
        When the encoded reference has fewer than two dimensions.

    See Also
    --------
    domain_classifier_drift : the other multivariate detector.

    Notes
    -----
    The encoding, the calibration and the threshold are described in the module
    docstring. The PCA sees only linear structure: a change in a non-linear
    dependence may leave the error unchanged.

    Examples
    --------
    Two features that move together in the reference, and no longer do:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def sample(rho, n=2000):
    ...     x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    ...     return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "noise": rng.normal(size=n)})
    >>> reference = sample(0.9)
    >>> reconstruction_drift(reference, sample(0.0)).drifted
    True
    >>> result = reconstruction_drift(reference, sample(0.9))
    >>> result.drifted, result.n_components, result.n_dimensions
    (False, 2, 3)

    All-categorical data is encoded too:

    >>> plans = pd.DataFrame({"plan": rng.choice(["a", "b", "c"], 500),
    ...                       "region": rng.choice(["n", "s"], 500)})
    >>> reconstruction_drift(plans, plans.sample(frac=1, random_state=1)).drifted
    False
    """
    _check_sizes("PCA reconstruction", reference, current)
    encoding = FeatureEncoding.fit(reference, categorical=categorical)
    x_reference, is_indicator = encoding.indicators(reference)
    x_current, _ = encoding.indicators(current)
    n_dimensions = x_reference.shape[1]
    if n_dimensions < 2:
        raise ValueError(
            "PCA reconstruction needs at least two encoded dimensions (two numeric columns, or "
            f"categories); the reference has {n_dimensions}."
        )
    n_components, variance_kept = _components_for(x_reference, is_indicator, variance)
    chunks = np.random.default_rng(random_state).permutation(len(x_reference)) % n_chunks
    reference_errors = np.empty(len(x_reference))
    current_errors = np.zeros(len(x_current))
    for chunk in range(n_chunks):
        held_out = chunks == chunk
        model = _fit_pca(x_reference[~held_out], is_indicator, n_components)
        reference_errors[held_out] = _errors(model, x_reference[held_out])
        current_errors += _errors(model, x_current) / n_chunks
    mean_0, sd_0 = float(reference_errors.mean()), float(reference_errors.std(ddof=1))
    se_null = sd_0 * np.sqrt(1 / len(x_reference) + 1 / len(x_current))
    threshold = mean_0 + max(norm.ppf(1 - alpha) * se_null, min_increase * mean_0)
    statistic = float(current_errors.mean())
    half = norm.ppf(0.5 + CONFIDENCE / 2) * float(current_errors.std(ddof=1)) / np.sqrt(
        len(current_errors))
    return ReconstructionResult(
        statistic=statistic,
        pvalue=float(norm.sf((statistic - mean_0) / se_null)) if se_null > 0 else float(
            statistic <= mean_0),
        threshold=float(threshold),
        drifted=bool(statistic > threshold),
        interval=(statistic - float(half), statistic + float(half)),
        reference_error=mean_0,
        chunk_errors=tuple(float(reference_errors[chunks == c].mean()) for c in range(n_chunks)),
        n_components=n_components,
        n_dimensions=n_dimensions,
        variance_kept=variance_kept,
        n_reference=len(reference),
        n_current=len(current),
    )


# -- domain classifier helpers ------------------------------------------------------------


def _auc_and_variance(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC (ties count half) and its DeLong variance, from midranks."""
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(score)
    auc = (ranks[positive].sum() - m * (m + 1) / 2) / (m * n)
    # Structural components: each positive's share of negatives below it, and vice versa.
    v10 = (ranks[positive] - rankdata(score[positive])) / n
    v01 = 1 - (ranks[~positive] - rankdata(score[~positive])) / m
    return float(auc), float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)


def _null_auc_variance(y: np.ndarray) -> float:
    """Variance of the Mann-Whitney AUC when both classes come from one distribution."""
    m = int((y == 1).sum())
    n = len(y) - m
    return (m + n + 1) / (12 * m * n)


def _permutation_drops(model, x: np.ndarray, y: np.ndarray, auc: float, rng) -> np.ndarray:
    """The held-out AUC lost when each column is shuffled (on at most MAX_IMPORTANCE_ROWS rows)."""
    if len(y) > MAX_IMPORTANCE_ROWS:
        keep = rng.choice(len(y), MAX_IMPORTANCE_ROWS, replace=False)
        x, y = x[keep], y[keep]
        if y.min() == y.max():  # one class left: nothing to measure
            return np.zeros(x.shape[1])
        auc = _auc_and_variance(y, model.predict_proba(x)[:, 1])[0]
    drops = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        shuffled = x.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        drops[j] = auc - _auc_and_variance(y, model.predict_proba(shuffled)[:, 1])[0]
    return drops


# -- PCA helpers --------------------------------------------------------------------------


@dataclass(frozen=True)
class _PcaModel:
    centre: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (n_components, n_dimensions), orthonormal rows


def _scaling(x: np.ndarray, is_indicator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale: numbers standardised, indicators divided by sqrt(share) (FAMD)."""
    centre = np.nanmean(x, axis=0)
    centre = np.where(np.isfinite(centre), centre, 0.0)  # a column with no values
    spread = np.where(is_indicator, np.sqrt(np.clip(centre, 0, None)), np.nanstd(x, axis=0))
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    return centre, spread


def _standardise(x: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - centre) / scale
    return np.where(np.isnan(z), 0.0, z)  # a missing number takes the reference mean


def _eigen(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the covariance of ``z``."""
    covariance = z.T @ z / max(len(z) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    return np.clip(values[::-1], 0, None), vectors[:, ::-1]


def _components_for(x: np.ndarray, is_indicator: np.ndarray, variance: float) -> tuple[int, float]:
    """Components of the whole reference's PCA that explain ``variance``; never all of them."""
    centre, scale = _scaling(x, is_indicator)
    values, _ = _eigen(_standardise(x, centre, scale))
    total = values.sum()
    if total <= 0:
        return 1, 1.0
    explained = np.cumsum(values) / total
    n_components = int(min(np.searchsorted(explained, variance) + 1, len(values) - 1))
    return n_components, float(explained[n_components - 1])


def _fit_pca(x: np.ndarray, is_indicator: np.ndarray, n_components: int) -> _PcaModel:
    centre, scale = _scaling(x, is_indicator)
    _, vectors = _eigen(_standardise(x, centre, scale))
    return _PcaModel(centre, scale, vectors[:, :n_components].T)


def _errors(model: _PcaModel, x: np.ndarray) -> np.ndarray:
    """Each row's distance to its reconstruction from the kept components."""
    z = _standardise(x, model.centre, model.scale)
    projected = z @ model.components.T
    # |z - z V V'|^2 = |z|^2 - |z V|^2 for orthonormal V.
    squared = np.einsum("ij,ij->i", z, z) - np.einsum("ij,ij->i", projected, projected)
    return np.sqrt(np.clip(squared, 0, None))


# -- shared -------------------------------------------------------------------------------


def _threads_for(n_rows: int, n_jobs: int | None):
    """The trees' threads: ``n_jobs`` of them, and one for small samples, where starting
    threads costs more than it saves."""
    from threadpoolctl import threadpool_limits

    threads = effective_n_jobs(n_jobs) if n_rows >= MIN_ROWS_FOR_THREADS else 1
    return threadpool_limits(limits=threads, user_api="openmp")


def _check_sizes(detector: str, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    hints = {"reference": "Use a larger reference (or baseline sample_size).",
             "window": "Use a longer window."}
    for side, frame in (("reference", reference), ("window", current)):
        if len(frame) < MIN_ROWS:
            raise WindowTooSmallError(
                f"The {detector} needs at least {MIN_ROWS} rows in the {side} sample; it has "
                f"{len(frame)}. {hints[side]}"
            )
