"""What every result object offers: its MLflow metrics and its table records.

Drift (:class:`~mlflow_observe.core.drift.univariate.DriftResult`), integrity,
the multivariate detectors, drift impact, segments, degradation and the optional
backends' detectors all answer the same two calls, so that logging a result is
one path whatever produced it.

Examples
--------
>>> from mlflow_observe.core.performance.degradation import DegradationResult
>>> isinstance(DegradationResult("classification", "realised", [], False, 0, []), ResultPart)
True
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ResultPart(Protocol):
    """What every part of a result offers: its MLflow metrics and its table records."""

    def metrics(self) -> dict[str, float]:
        """MLflow metric keys to finite floats."""
        ...

    def to_records(self) -> list[dict]:
        """The result as table rows (JSON-safe dicts)."""
        ...
