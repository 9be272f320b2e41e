"""Kolmogorov-Smirnov and Wasserstein-1 for numeric columns: exact, or from fine-grid counts."""

from __future__ import annotations

import numpy as np
from scipy import stats

from mlflow_observe.core.stats._counts import as_count_pair, check_sample_size
from mlflow_observe.core.stats.result import StatisticResult

# Above this effective sample size the KS p-value uses the Kolmogorov limit distribution.
_EXACT_KSTWO_LIMIT = 10_000


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError("Both samples need at least one finite value.")
    return values


def ks_exact(reference, current) -> StatisticResult:
    """Two-sample Kolmogorov-Smirnov test on every value (``scipy.stats.ks_2samp``).

    Examples
    --------
    >>> result = ks_exact([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> result.statistic, result.pvalue
    (0.0, 1.0)
    """
    result = stats.ks_2samp(_finite(reference), _finite(current), method="auto")
    return StatisticResult(statistic=float(result.statistic), pvalue=float(result.pvalue))


def ks_binned(reference, current, *, n_reference=None, n_current=None) -> StatisticResult:
    """Kolmogorov-Smirnov test from counts in the same ordered bins.

    The statistic is the largest gap between the two empirical CDFs at the bin
    edges, so it never exceeds the exact statistic ``D`` on the raw values.

    Parameters
    ----------
    reference, current : array_like
        Counts in the same ordered bins (the profile's fine grid with its guard bins).
        Counts may be sums of row weights (a window whose rows were sampled).
    n_reference, n_current : float, optional
        The sample sizes behind the p-value (default: the counts' sums). For
        weighted counts pass Kish's effective sample size ``(sum w)^2 / sum w^2``:
        the sum of the weights would make the test overconfident.

    Returns
    -------
    StatisticResult
        ``statistic`` is the binned ``D``; ``pvalue`` comes from the asymptotic
        two-sided distribution, as ``scipy.stats.ks_2samp(method='asymp')``
        (``kstwo`` with ``n = n_r n_c / (n_r + n_c)``, or its limit ``kstwobign``
        at ``D sqrt(n)`` when ``n`` exceeds 10,000);
        ``error_bound`` is the largest ``min(r_i, c_i)`` over the bins.

    Notes
    -----
    Within a bin ``[a, b)`` both CDFs are non-decreasing, so at any point ``x`` in
    it ``|F_r(x) - F_c(x)|`` exceeds the gap at an edge by at most the smaller of
    the two sides' mass in the bin. Hence::

        D_binned <= D_exact <= D_binned + max_i min(r_i, c_i)

    With the default grid of 1000 reference quantiles, ``r_i`` is about 0.001, so
    the binned statistic is within about 0.001 of the exact one, and its p-value
    errs on the side of no alarm.

    Examples
    --------
    >>> result = ks_binned([5, 5, 0], [0, 5, 5])
    >>> float(result.statistic)
    0.5
    """
    reference, current = as_count_pair(reference, current, "ks_binned")
    n, m = reference.sum(), current.sum()
    r, c = reference / n, current / m
    statistic = float(np.max(np.abs(np.cumsum(r) - np.cumsum(c))))
    if n_reference is not None or n_current is not None:
        n = check_sample_size(n if n_reference is None else n_reference, "ks_binned")
        m = check_sample_size(m if n_current is None else n_current, "ks_binned")
    effective_n = n * m / (n + m)
    if effective_n <= _EXACT_KSTWO_LIMIT:
        pvalue = stats.kstwo.sf(statistic, np.round(effective_n))
    else:  # kstwo costs ~20 ms here and agrees with its limit to many digits
        pvalue = stats.kstwobign.sf(statistic * np.sqrt(effective_n))
    pvalue = float(np.clip(pvalue, 0.0, 1.0))
    bound = float(np.max(np.minimum(r, c)))
    return StatisticResult(statistic=statistic, pvalue=pvalue, exact=False, error_bound=bound)


def wasserstein_exact(reference, current) -> StatisticResult:
    """Wasserstein-1 distance on every value (``scipy.stats.wasserstein_distance``).

    Examples
    --------
    >>> wasserstein_exact([0.0, 1.0], [2.0, 3.0]).statistic
    2.0
    """
    distance = stats.wasserstein_distance(_finite(reference), _finite(current))
    return StatisticResult(statistic=float(distance))


def wasserstein_binned(
    edges,
    reference,
    current,
    *,
    reference_tails=(0.0, 0.0),
    current_tails=(0.0, 0.0),
    reference_sums=None,
    current_sums=None,
) -> StatisticResult:
    """Wasserstein-1 distance from counts on a grid: ``integral |F_r(x) - F_c(x)| dx``.

    Parameters
    ----------
    edges : array_like of shape (m + 1,)
        The grid ``g_0 < ... < g_m``.
    reference, current : array_like of shape (m + 3,)
        Counts in ``[x < g_0], [g_0, g_1), ..., [g_(m-1), g_m), [x == g_m], [x > g_m]``.
    reference_tails, current_tails : (float, float)
        For each side, the sums ``sum(g_0 - x)`` over values below ``g_0`` and
        ``sum(x - g_m)`` over values above ``g_m`` (used without ``*_sums``).
    reference_sums, current_sums : array_like of shape (m + 3,), optional
        The sum of each side's values in each cell. With both, each cell's mass
        sits at its mean (see Notes).

    Returns
    -------
    StatisticResult
        ``error_bound`` bounds ``|statistic - exact|``.

    Notes
    -----
    With the per-cell sums, each side becomes a discrete distribution with one
    atom a cell, at the mean of its values there, and the distance between the
    two is computed exactly. Moving a cell's values to their mean moves the
    distance by at most the mass times the mean absolute deviation of the values
    in the cell, which is at most ``w_i / 2`` for a cell of width ``w_i``; by the
    triangle inequality the error is at most
    ``sum_i w_i (r_i + c_i) / 2`` over the interior cells (the guard cells and a
    repeated value's own cell are exact). The mean keeps most of that away: on
    heavy tails (lognormal with sigma 2, Pareto, delays with a spike at 0 and a
    long tail) the distance is within 1% (relative) of the exact one, or 0.002
    of the reference standard deviation, on 20,000 to 50,000 values
    (property-tested against ``scipy.stats.wasserstein_distance``).

    Without them (profiles of format version 1 and 2), each side's values are
    taken as uniform within a cell, so the CDFs are linear there; the tails are
    exact whenever one side has no values outside the grid (always the case for
    a reference whose grid came from it). The error is then at most
    ``sum_i w_i * max(r_i, c_i)``, and can reach several percent on heavy tails,
    where the last cells are wide.

    Examples
    --------
    >>> # reference spread evenly over [0, 1), all current values at 1
    >>> float(wasserstein_binned([0.0, 1.0], [0, 4, 0, 0], [0, 0, 4, 0]).statistic)
    0.5
    >>> # the same with the sums: the reference's four values are 0.1, 0.2, 0.3 and 0.4
    >>> float(wasserstein_binned([0.0, 1.0], [0, 4, 0, 0], [0, 0, 4, 0],
    ...                          reference_sums=[0, 1.0, 0, 0], current_sums=[0, 0, 4.0, 0]).statistic)
    0.75
    """
    edges = np.asarray(edges, dtype=float)
    reference, current = as_count_pair(reference, current, "wasserstein_binned")
    if len(reference) != len(edges) + 2:
        raise ValueError(
            "wasserstein_binned: counts must have len(edges) + 2 cells. "
            f"Got {len(reference)} for {len(edges)} edges."
        )
    n, m = reference.sum(), current.sum()
    widths = np.diff(edges)
    if reference_sums is not None and current_sums is not None:
        return _wasserstein_at_means(
            reference / n,
            current / m,
            _cell_means(reference, reference_sums, edges),
            _cell_means(current, current_sums, edges),
            widths,
        )
    gap = np.cumsum(reference / n) - np.cumsum(current / m)
    # Gap of the CDFs at the left and right edge of each interior bin [g_(i-1), g_i).
    left, right = gap[:-3], gap[1:-2]
    same_sign = left * right >= 0
    magnitude = np.abs(left) + np.abs(right)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(magnitude > 0, (left**2 + right**2) / (2 * magnitude), 0.0)
    inside = float(np.sum(widths * np.where(same_sign, magnitude / 2, crossing)))
    below = abs(reference_tails[0] / n - current_tails[0] / m)
    above = abs(reference_tails[1] / n - current_tails[1] / m)
    bound = float(np.sum(widths * np.maximum(reference[1:-2] / n, current[1:-2] / m)))
    return StatisticResult(statistic=inside + below + above, exact=False, error_bound=bound)


def _cell_means(counts, sums, edges) -> np.ndarray:
    """Each cell's mean value, clipped into the cell (NaN where the cell is empty)."""
    sums = np.asarray(sums, dtype=float)
    if sums.shape != counts.shape:
        raise ValueError(
            "wasserstein_binned: sums must have one value a cell. "
            f"Got {sums.shape} for {counts.shape}."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    low = np.concatenate([[-np.inf], edges[:-1], [edges[-1], edges[-1]]])
    high = np.concatenate([[edges[0]], edges[1:], [edges[-1], np.inf]])
    means[-2] = edges[-1]  # the cell [x == g_m]
    # Rounding in the sums may leave a mean a hair outside its cell.
    return np.where(counts > 0, np.clip(means, low, high), np.nan)


def _wasserstein_at_means(r, c, r_means, c_means, widths) -> StatisticResult:
    """W1 between one atom a cell on each side: ``sum |F_r - F_c|`` over the sorted atoms."""
    r_used, c_used = r > 0, c > 0
    positions = np.concatenate([r_means[r_used], c_means[c_used]])
    weights = np.concatenate([r[r_used], -c[c_used]])
    order = np.argsort(positions, kind="stable")
    positions, weights = positions[order], weights[order]
    gaps = np.cumsum(weights)[:-1]
    statistic = float(np.sum(np.abs(gaps) * np.diff(positions)))
    bound = float(np.sum(widths * (r[1:-2] + c[1:-2])) / 2)
    return StatisticResult(statistic=statistic, exact=False, error_bound=bound)


def welch_ttest(reference, current) -> StatisticResult:
    """Welch's two-sample t-test on the means, from each side's moments.

    Parameters
    ----------
    reference, current : tuple of (float, float, float)
        Each side's ``(mean, std, n)``: the mean, the population standard
        deviation (``ddof=0``, as the profiles keep it) and the number of
        values (for weighted counts, Kish's effective sample size).

    Returns
    -------
    StatisticResult
        ``statistic`` is Welch's ``t`` (current minus reference), ``pvalue`` its
        two-sided p-value with the Welch-Satterthwaite degrees of freedom, as
        ``scipy.stats.ttest_ind(reference, current, equal_var=False)`` on the
        values. When both sides are constant the p-value is 1 for equal means
        and 0 for different ones.

    Notes
    -----
    The normalised Wasserstein-1 distance is never below the difference of the
    means over the reference standard deviation, and on a long tail its
    sampling noise is the noise of the means: one value far out moves both by
    ``x / n``. The t statistic divides that difference by its standard error,
    which the same value inflates, so it tells a shift of the bulk from a
    distance that rests on a few extreme values.

    Examples
    --------
    >>> result = welch_ttest((0.0, 1.0, 1000), (0.2, 1.0, 1000))
    >>> round(result.statistic, 3), result.pvalue < 1e-4
    (4.47, True)
    """
    (mean_r, std_r, n_r), (mean_c, std_c, n_c) = reference, current
    n_r = check_sample_size(n_r, "welch_ttest")
    n_c = check_sample_size(n_c, "welch_ttest")
    if n_r < 2 or n_c < 2:
        raise ValueError(f"welch_ttest needs at least 2 values a side; got {n_r} and {n_c}.")
    # Sample variances (ddof=1) from the population ones.
    var_r, var_c = std_r**2 * n_r / (n_r - 1), std_c**2 * n_c / (n_c - 1)
    se2_r, se2_c = var_r / n_r, var_c / n_c
    difference = float(mean_c - mean_r)
    if se2_r + se2_c == 0:
        return StatisticResult(statistic=0.0, pvalue=1.0 if difference == 0 else 0.0)
    t = difference / np.sqrt(se2_r + se2_c)
    df = (se2_r + se2_c) ** 2 / (se2_r**2 / (n_r - 1) + se2_c**2 / (n_c - 1))
    return StatisticResult(statistic=float(t), pvalue=float(2 * stats.t.sf(abs(t), df)))
