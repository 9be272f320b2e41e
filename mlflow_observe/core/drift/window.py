"""A window counted into the baseline's bins, compared with it: drift, integrity and the rest."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_observe.core.drift.integrity import IntegrityResult, check_integrity
from mlflow_observe.core.drift.multivariate.compare import (
    MultivariateDrift,
    multivariate_drift,
)
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.drift.root_cause import (
    DriftImpact,
    explain_prediction_drift,
    rank_by_impact,
)
from mlflow_observe.core.drift.segments import SegmentCounter
from mlflow_observe.core.drift.univariate import DriftResult, compare_profiles
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.protocol import ResultPart

__all__ = ["EmptyWindowError", "ResultPart", "WindowComparison", "compare_counted"]


class EmptyWindowError(ValueError):
    """The production window has no rows to compare."""


@dataclass(frozen=True)
class WindowComparison:
    """Drift and integrity of one window against its baseline.

    Attributes
    ----------
    drift : DriftResult
    integrity : IntegrityResult
    current : DataProfile
        The window's counts in the baseline's bins (used for the plots).
    multivariate : MultivariateDrift or None
        The multivariate detectors' results, when asked for (``multivariate=True``).
    segments : list of SegmentDrift or None
        Each segment's drift, most drifted first, when asked for (``segment_by``).
    impact : DriftImpact or None
        Features ranked by impact x drift, when the baseline recorded the
        model's feature impact (and prediction drift explained, given the model).
    detectors : ResultPart or None
        Optional backends' detectors (``detectors=[...]``, e.g. alibi-detect's),
        added after counting by :func:`mlflow_observe.comparison.compare`.
    attribution : ResultPart or None
        Attribution drift (an
        :class:`~mlflow_observe.core.explain.importance.AttributionDriftResult`, or
        the reason it was skipped), when the baseline recorded its global importance
        and the window had attributions; added by :func:`mlflow_observe.comparison.compare`.
    """

    drift: DriftResult
    integrity: IntegrityResult
    current: DataProfile
    multivariate: MultivariateDrift | None = None
    segments: list | None = None
    impact: DriftImpact | None = None
    detectors: ResultPart | None = None
    attribution: ResultPart | None = None

    def metrics(self) -> dict[str, float]:
        metrics = {**self.drift.metrics(), **self.integrity.metrics()}
        if self.multivariate is not None:
            metrics.update(self.multivariate.metrics())
        if self.segments is not None:
            metrics["drift/n_segments"] = float(len(self.segments))
            metrics["drift/n_drifted_segments"] = float(
                sum(s.drift.dataset_drift for s in self.segments)
            )
        if self.impact is not None:
            metrics.update(self.impact.metrics())
        if self.detectors is not None:
            metrics.update(self.detectors.metrics())
        if self.attribution is not None:
            metrics.update(self.attribution.metrics())
        return metrics

    def to_records(self) -> list[dict]:
        """The drift table: one record per column, then one per multivariate or alibi detector,
        then attribution drift's."""
        records = self.drift.to_records()
        if self.multivariate is not None:
            records += self.multivariate.to_records()
        if self.detectors is not None:
            records += self.detectors.to_records()
        if self.attribution is not None:
            records += self.attribution.to_records()
        return records


def compare_counted(
    baseline: DataProfile,
    current: DataProfile,
    columns,
    options: DriftOptions | None = None,
    *,
    segments: SegmentCounter | None = None,
    predict=None,
) -> WindowComparison:
    """Compare a window already counted into ``baseline.empty_like()`` with the baseline.

    ``columns`` are the window's column names (for missing and extra columns).
    This is the step after counting that every engine shares: :func:`compare`
    counts pandas and Arrow data itself, the Spark engine counts on the cluster.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> current = baseline.empty_like()
    >>> current.update(pd.DataFrame({"x": [2.0, 9.0]}))
    >>> [f.check for f in compare_counted(baseline, current, ["x"]).integrity.findings]
    ['out_of_range']
    """
    options = options or DriftOptions()
    if options.segment_by and segments is None:  # an engine that does not count segments
        raise ValueError(
            "segment_by needs the window counted by pandas (a DataFrame or an "
            "iterator of batches); the Spark engine does not count segments yet."
        )
    if current.n_rows == 0:
        raise EmptyWindowError(
            "The production window has no rows: there is nothing to compare with the baseline. "
            "Check the window's time range or the data source."
        )
    # A text column brings its descriptor columns (computed when it was counted).
    columns = baseline.present_columns(columns)
    drift = compare_profiles(baseline, current, options, present_columns=columns)
    integrity = check_integrity(
        baseline, current, columns, missing_rate_tolerance=options.missing_rate_tolerance
    )
    multivariate = None
    if options.multivariate:
        # The window's row sample is bounded and merged part by part, as the baseline's.
        multivariate = multivariate_drift(
            baseline,
            current,
            present_columns=columns,
            random_state=baseline.settings.get("random_state", 0),
        )
    segment_drift = None
    if segments is not None:
        segment_drift = segments.compare(options, columns, min_size=options.min_segment_size)
    impact = None
    if baseline.impact is not None:
        ranking = rank_by_impact(baseline.impact, drift)
        impact = (
            DriftImpact(ranking)
            if predict is None
            else explain_prediction_drift(
                predict,
                baseline,
                current,
                ranking,
                present_columns=columns,
                random_state=baseline.settings.get("random_state", 0),
            )
        )
    return WindowComparison(
        drift=drift,
        integrity=integrity,
        current=current,
        multivariate=multivariate,
        segments=segment_drift,
        impact=impact,
    )
