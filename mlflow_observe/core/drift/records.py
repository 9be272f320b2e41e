"""The row a whole-table detector adds to the drift table.

Per-column statistics build their rows in :mod:`.univariate`; detectors that
judge several columns at once (the multivariate detectors, the optional
backends) share this shape so that the report and ``drift_table.json`` read
them like any other row.
"""

from __future__ import annotations

from typing import Any, Protocol


class DetectorOutcome(Protocol):
    """What a detector result must expose to become a drift-table row."""

    statistic: float
    pvalue: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int


def detector_record(
    column: str,
    result: DetectorOutcome | None,
    *,
    metric_name: str,
    role: str,
    kind: str,
    method: str,
    statistics: dict[str, Any],
    note: str | None = None,
    metric_key: str | None = None,
) -> dict:
    """One drift-table row for a detector; ``result=None`` means it was skipped for ``note``.

    Examples
    --------
    >>> row = detector_record("multivariate:domain", None, metric_name="multivariate",
    ...     role="multivariate", kind="multivariate", method="domain_auc",
    ...     statistics={"columns": ["x"]}, note="too few rows")
    >>> row["status"], row["drifted"], row["note"]
    ('skipped', False, 'too few rows')
    """
    record = {
        "column": column,
        "metric_name": metric_name,
        "role": role,
        "kind": kind,
        "method": method,
        "exact": None,
        "pvalue_adjusted": None,
        "statistics": statistics,
    }
    if result is None:
        return {
            **record,
            "statistic": None,
            "pvalue": None,
            "threshold": None,
            "drifted": False,
            "status": "skipped",
            "n_reference": None,
            "n_current": None,
            "note": note,
            "metric_key": None,
        }
    return {
        **record,
        "statistic": result.statistic,
        "pvalue": result.pvalue,
        "threshold": result.threshold,
        "drifted": result.drifted,
        "status": "drift" if result.drifted else "ok",
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "note": None,
        "metric_key": metric_key,
    }
