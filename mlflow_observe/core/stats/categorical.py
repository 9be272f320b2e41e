"""Tests for categorical columns: chi-square of homogeneity and the two-proportion Z-test."""

from __future__ import annotations

import numpy as np
from scipy import stats

from mlflow_observe.core.stats._counts import as_count_pair, rescaled
from mlflow_observe.core.stats.result import StatisticResult


def chi_square(reference, current, *, n_reference=None, n_current=None) -> StatisticResult:
    """Pearson's chi-square test that two samples share one categorical distribution.

    The 2 x k contingency table of the reference and current counts, without
    continuity correction (``scipy.stats.chi2_contingency(..., correction=False)``).
    Categories absent from both samples are dropped.

    Parameters
    ----------
    reference, current : array_like
        Counts of each category (sums of row weights for a sampled window).
    n_reference, n_current : float, optional
        The sample sizes the test takes each side's counts for: its counts are
        scaled to sum to it (default: the counts as they are). For weighted
        counts pass Kish's effective sample size ``(sum w)^2 / sum w^2``, so
        that the test is not overconfident (the design-effect correction of
        Kish [2]_).

    Notes
    -----
    The chi-square approximation wants expected counts of about 5 or more in
    most cells [1]_; with sparser tables read the p-value with care.

    References
    ----------
    .. [1] Cochran, W. G. "Some methods for strengthening the common chi-square
       tests", Biometrics 10(4), 1954.

    Examples
    --------
    >>> result = chi_square([30, 70], [50, 50])
    >>> round(result.statistic, 4), round(result.pvalue, 4)
    (8.3333, 0.0039)
    """
    reference, current = as_count_pair(reference, current, "chi_square")
    reference = rescaled(reference, n_reference, "chi_square")
    current = rescaled(current, n_current, "chi_square")
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return StatisticResult(statistic=0.0, pvalue=1.0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return StatisticResult(statistic=statistic, pvalue=float(stats.chi2.sf(statistic, dof)))


def proportions_ztest(reference, current, *, n_reference=None, n_current=None) -> StatisticResult:
    """Two-sided Z-test that two samples have the same share of the first category.

    ``z = (p_c - p_r) / sqrt(p (1 - p) (1/n_r + 1/n_c))`` with the pooled share
    ``p``. Its square equals the 2 x 2 chi-square statistic.

    Parameters
    ----------
    reference, current : array_like of length 2
        Counts of the first and the second category.
    n_reference, n_current : float, optional
        The sample sizes behind each side's counts, as for :func:`chi_square`
        (pass Kish's effective sample size for weighted counts).

    Examples
    --------
    >>> result = proportions_ztest([30, 70], [50, 50])
    >>> round(result.statistic, 4), round(result.pvalue, 4)
    (2.8868, 0.0039)
    """
    reference, current = as_count_pair(reference, current, "proportions_ztest")
    if len(reference) != 2:
        raise ValueError(f"proportions_ztest needs two categories. Got {len(reference)}.")
    reference = rescaled(reference, n_reference, "proportions_ztest")
    current = rescaled(current, n_current, "proportions_ztest")
    n_r, n_c = reference.sum(), current.sum()
    p_r, p_c = reference[0] / n_r, current[0] / n_c
    pooled = (reference[0] + current[0]) / (n_r + n_c)
    variance = pooled * (1 - pooled) * (1 / n_r + 1 / n_c)
    if variance == 0:
        return StatisticResult(statistic=0.0, pvalue=1.0)
    z = float((p_c - p_r) / np.sqrt(variance))
    return StatisticResult(statistic=z, pvalue=float(2 * stats.norm.sf(abs(z))))
