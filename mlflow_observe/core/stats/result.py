"""The result object shared by every drift statistic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatisticResult:
    """The value of one two-sample statistic.

    Attributes
    ----------
    statistic : float
        The test statistic or distance.
    pvalue : float or None
        The p-value for hypothesis tests; None for distances.
    exact : bool
        True when computed on every value (not from binned counts).
    error_bound : float
        For binned statistics, a bound on the distance to the exact value
        (0 when exact or when no bound is known).
    """

    statistic: float
    pvalue: float | None = None
    exact: bool = True
    error_bound: float = 0.0
