"""One column's comparison: the row every per-column detector adds to the drift table.

The ordinary columns (:mod:`.univariate`) and the text and embedding columns
(:mod:`.unstructured.compare`) both give their verdict as a :class:`ColumnDrift`,
so that the dataset verdict, the metrics and the report read them alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mlflow_observe.core.drift.options import PVALUE_METHODS, SKIPPED, distance_for


@dataclass(frozen=True)
class ColumnDrift:
    """The comparison of one column. ``statistic`` is None when it was skipped (see ``note``)."""

    column: str
    metric_name: str
    role: str
    kind: str
    method: str | None
    statistic: float | None
    pvalue: float | None
    threshold: float | None
    drifted: bool
    status: str
    exact: bool | None
    n_reference: int
    n_current: int
    statistics: dict
    note: str | None = None
    pvalue_adjusted: float | None = None
    test: str | None = None
    decided_by: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def skipped(cls, note: str, **fields) -> ColumnDrift:
        """A column left out, with the reason (``note``): no statistic, no verdict, no metric.

        ``fields`` names the column, its role, kind and counts (``method`` too, when a
        detector was chosen).

        Examples
        --------
        >>> row = ColumnDrift.skipped(
        ...     "column missing from the window", column="age", metric_name="age",
        ...     role="feature", kind="numeric", n_reference=100, n_current=0)
        >>> row.status, row.drifted, row.metrics()
        ('skipped', False, {})
        """
        return cls(
            **{"method": None, **fields},
            statistic=None,
            pvalue=None,
            threshold=None,
            drifted=False,
            status=SKIPPED,
            exact=None,
            statistics={},
            note=note,
        )

    @property
    def decision_value(self) -> float | None:
        """The number compared with the threshold: the p-value for tests, else the statistic."""
        return self.pvalue if self.method in PVALUE_METHODS else self.statistic

    @property
    def severity(self) -> float:
        """How far past its threshold the column is (larger is worse; 0 when skipped)."""
        value = self.decision_value
        if value is None or self.threshold is None:
            return 0.0
        if self.method in PVALUE_METHODS:
            return self.threshold / max(value, 1e-300)
        return value / max(self.threshold, 1e-12)

    @property
    def metric_key(self) -> str:
        """The key of the statistic that decides (``method``)."""
        suffix = f"{self.method}_pvalue" if self.method in PVALUE_METHODS else self.method
        return f"drift/{self.metric_name}/{suffix}"

    def metrics(self) -> dict[str, float]:
        """The column's metrics: its distance, its test p-value, ``drifted``, and the
        deciding statistic when it is neither (e.g. ``psi``). Empty when skipped."""
        if self.status == SKIPPED:
            return {}
        prefix = f"drift/{self.metric_name}/"
        values = {}
        distance = distance_for(self.kind)
        if distance in self.statistics:
            values[prefix + distance] = self.statistics[distance]["statistic"]
        if self.test is not None:
            values[f"{prefix}{self.test}_pvalue"] = self.pvalue
        values[self.metric_key] = self.decision_value
        values[prefix + "drifted"] = float(self.drifted)
        values.update({prefix + key: value for key, value in self.extra.items()})
        return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}

    def to_record(self) -> dict:
        record = asdict(self)
        record["metric_key"] = self.metric_key if self.statistic is not None else None
        record["metric_keys"] = sorted(self.metrics())
        return record
