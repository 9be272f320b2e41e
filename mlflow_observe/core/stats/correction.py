"""Multiple-testing corrections, written from their definitions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CorrectionResult:
    """Which hypotheses are rejected after a multiple-testing correction.

    Attributes
    ----------
    reject : numpy.ndarray of bool
        True where the null hypothesis (no drift) is rejected.
    pvalues_adjusted : numpy.ndarray
        Adjusted p-values, comparable with ``alpha`` directly.
    """

    reject: np.ndarray
    pvalues_adjusted: np.ndarray


def _check(pvalues, alpha):
    pvalues = np.asarray(pvalues, dtype=float)
    if pvalues.ndim != 1 or np.any(~np.isfinite(pvalues)) or np.any((pvalues < 0) | (pvalues > 1)):
        raise ValueError("p-values must be a 1-d array of numbers in [0, 1].")
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r} instead.")
    return pvalues


def bonferroni(pvalues, *, alpha: float = 0.05) -> CorrectionResult:
    """Bonferroni correction: reject where ``p_i * m <= alpha``.

    Controls the family-wise error rate at ``alpha`` for ``m`` tests.

    Examples
    --------
    >>> bonferroni([0.01, 0.02, 0.5], alpha=0.05).reject.tolist()
    [True, False, False]
    """
    pvalues = _check(pvalues, alpha)
    adjusted = np.minimum(pvalues * len(pvalues), 1.0)
    return CorrectionResult(reject=adjusted <= alpha, pvalues_adjusted=adjusted)


def benjamini_hochberg(pvalues, *, alpha: float = 0.05) -> CorrectionResult:
    """Benjamini-Hochberg step-up procedure, controlling the false discovery rate.

    Sort the p-values ``p_(1) <= ... <= p_(m)``, find the largest ``k`` with
    ``p_(k) <= k * alpha / m`` and reject the ``k`` smallest. The adjusted
    p-value of ``p_(i)`` is ``min_{j >= i} m * p_(j) / j``, capped at 1.

    References
    ----------
    .. [1] Benjamini, Y., Hochberg, Y. "Controlling the false discovery rate",
       Journal of the Royal Statistical Society B 57(1), 1995.

    Examples
    --------
    >>> result = benjamini_hochberg([0.01, 0.02, 0.03, 0.5], alpha=0.05)
    >>> result.reject.tolist()
    [True, True, True, False]
    """
    pvalues = _check(pvalues, alpha)
    m = len(pvalues)
    if m == 0:
        return CorrectionResult(reject=np.zeros(0, dtype=bool), pvalues_adjusted=pvalues)
    order = np.argsort(pvalues)
    # p * (m / i), in the order SciPy multiplies, so ties at alpha decide alike.
    ranked = pvalues[order] * (m / np.arange(1, m + 1))
    adjusted_sorted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return CorrectionResult(reject=adjusted <= alpha, pvalues_adjusted=adjusted)
