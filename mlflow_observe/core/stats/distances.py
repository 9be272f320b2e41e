"""Distances between binned distributions: PSI and Jensen-Shannon."""

from __future__ import annotations

import numpy as np

from mlflow_observe.core.stats._counts import as_count_pair
from mlflow_observe.core.stats.result import StatisticResult


def smoothed_proportions(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Proportions with ``smoothing`` added to each bin, renormalised to sum to 1.

    >>> smoothed_proportions(np.array([1.0, 0.0]), 1e-4).round(6).tolist()
    [0.9999, 0.0001]
    """
    proportions = counts / counts.sum()
    return (proportions + smoothing) / (1.0 + smoothing * len(counts))


def psi(reference, current, *, smoothing: float = 1e-4) -> StatisticResult:
    """Population Stability Index over fixed bins.

    ``PSI = sum((c_i - r_i) * ln(c_i / r_i))`` over the bins, where ``r`` and
    ``c`` are the reference and current proportions.

    Parameters
    ----------
    reference, current : array_like
        Counts in the same bins (the reference's bins, with guard bins).
    smoothing : float, default=1e-4
        Added to every proportion (then renormalised), so that a bin empty on
        one side gives a large but finite contribution instead of infinity.

    Returns
    -------
    StatisticResult
        ``statistic`` is the PSI (>= 0); ``pvalue`` is None.

    Notes
    -----
    Common reading: below 0.1 no significant change, 0.1 to 0.2 moderate,
    above 0.2 significant [1]_.

    References
    ----------
    .. [1] Yurdakul, B. "Statistical Properties of Population Stability Index",
       Western Michigan University, 2018.

    Examples
    --------
    >>> round(psi([50, 50], [60, 40]).statistic, 4)
    0.0405
    """
    reference, current = as_count_pair(reference, current, "psi")
    r = smoothed_proportions(reference, smoothing)
    c = smoothed_proportions(current, smoothing)
    return StatisticResult(statistic=float(np.sum((c - r) * np.log(c / r))))


def jensen_shannon(reference, current) -> StatisticResult:
    """Jensen-Shannon distance (natural logarithm) between binned distributions.

    The square root of the Jensen-Shannon divergence, between 0 and
    ``sqrt(ln 2)`` ~ 0.833. It is finite when a bin is empty on one side, so it
    needs no smoothing.

    Examples
    --------
    >>> round(jensen_shannon([50, 50], [60, 40]).statistic, 4)
    0.0711
    """
    reference, current = as_count_pair(reference, current, "jensen_shannon")
    r = reference / reference.sum()
    c = current / current.sum()
    m = 0.5 * (r + c)
    divergence = 0.5 * (_kl(r, m) + _kl(c, m))
    return StatisticResult(statistic=float(np.sqrt(max(divergence, 0.0))))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
