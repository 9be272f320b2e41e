"""Compare a production window with a baseline: drift and integrity in one pass over the rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlflow_observe.core.drift import DriftOptions, DriftResult, compare_profiles
from mlflow_observe.core.drift_impact import (
    DriftImpact,
    explain_prediction_drift,
    rank_by_impact,
)
from mlflow_observe.core.integrity import IntegrityResult, check_integrity
from mlflow_observe.core.multivariate_drift import MultivariateDrift, multivariate_drift
from mlflow_observe.core.profile import DataProfile
from mlflow_observe.core.progress import progress_bar
from mlflow_observe.core.segment_drift import SegmentCounter
from mlflow_observe.engines import is_spark_dataframe


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
    detectors : AlibiDrift or None
        The alibi-detect detectors' results, when asked for (``detectors=[...]``).
    """

    drift: DriftResult
    integrity: IntegrityResult
    current: DataProfile
    multivariate: MultivariateDrift | None = None
    segments: list | None = None
    impact: DriftImpact | None = None
    detectors: object | None = None

    def metrics(self) -> dict[str, float]:
        metrics = {**self.drift.metrics(), **self.integrity.metrics()}
        if self.multivariate is not None:
            metrics.update(self.multivariate.metrics())
        if self.segments is not None:
            metrics["drift/n_segments"] = float(len(self.segments))
            metrics["drift/n_drifted_segments"] = float(
                sum(s.drift.dataset_drift for s in self.segments))
        if self.impact is not None:
            metrics.update(self.impact.metrics())
        if self.detectors is not None:
            metrics.update(self.detectors.metrics())
        return metrics

    def to_records(self) -> list[dict]:
        """The drift table: one record per column, then one per multivariate or alibi detector."""
        records = self.drift.to_records()
        if self.multivariate is not None:
            records += self.multivariate.to_records()
        if self.detectors is not None:
            records += self.detectors.to_records()
        return records


def compare(
    baseline: DataProfile, data, options: DriftOptions | None = None,
    *, chunk_size: int | None = None, n_jobs: int | None = None, predict=None,
    progress: bool | None = None,
) -> WindowComparison:
    """Compare ``data`` (a production window) with ``baseline``.

    Parameters
    ----------
    baseline : DataProfile
        The profile recorded at training time.
    data : pandas.DataFrame, an iterable of DataFrames or Arrow record batches/tables, or a Spark DataFrame
        The window: feature columns, and the prediction and label columns when
        present. An iterable is counted one part at a time, so memory is bounded
        by the largest part and the profile, not by the window. A Spark
        DataFrame is counted by Spark (:mod:`mlflow_observe.engines.spark`).
    options : DriftOptions, optional
    chunk_size : int, optional
        Count the rows this many at a time (the result does not depend on it).
    n_jobs : int, optional
        Threads that count columns (default: every core; 1: no threads).
    predict : callable, optional
        The model (frame in, predictions out). With a baseline that recorded
        feature impact, it explains the prediction drift by feature (see
        :mod:`mlflow_observe.core.drift_impact`).
    progress : bool, optional
        A bar on stderr counting the parts (batches) as they are counted.
        Default: shown when stderr is a terminal; True or False forces it. The
        Spark engine has no bar here: Spark shows its own stage progress.

    Returns
    -------
    WindowComparison

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    >>> window = pd.DataFrame({"x": rng.normal(1.0, 1.0, 5000), "y": rng.normal(size=5000)})
    >>> compare(build_profile(reference), window).drift.drifted_columns
    ['x']
    """
    options = options or DriftOptions()
    if options.detectors:  # a missing backend is said before any row is counted
        from mlflow_observe.backends.alibi import check_installed

        check_installed(options.detectors)
    if is_spark_dataframe(data):  # counted by Spark, on the cluster
        from mlflow_observe.engines.spark import compare_spark

        return compare_spark(baseline, data, options)
    current = baseline.empty_like()
    segments = SegmentCounter(baseline, options.segment_by, max_segments=options.max_segments) \
        if options.segment_by else None
    columns: dict = {}  # every column seen, in order of appearance
    parts = progress_bar(_parts(data, chunk_size), enabled=progress, desc="counting")
    for part in parts:
        columns.update(dict.fromkeys(str(c) for c in part.columns))
        if len(part):
            current.update(part, n_jobs=n_jobs)
            if segments is not None:
                segments.update(part)
    return compare_counted(baseline, current, list(columns), options, segments=segments,
                           predict=predict)


def compare_counted(baseline: DataProfile, current: DataProfile, columns,
                    options: DriftOptions | None = None, *, segments: SegmentCounter | None = None,
                    predict=None) -> WindowComparison:
    """Compare a window already counted into ``baseline.empty_like()`` with the baseline.

    ``columns`` are the window's column names (for missing and extra columns).
    This is the step after counting that every engine shares: :func:`compare`
    counts pandas and Arrow data itself, the Spark engine counts on the cluster.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> current = baseline.empty_like()
    >>> current.update(pd.DataFrame({"x": [2.0, 9.0]}))
    >>> [f.check for f in compare_counted(baseline, current, ["x"]).integrity.findings]
    ['out_of_range']
    """
    options = options or DriftOptions()
    if options.segment_by and segments is None:  # an engine that does not count segments
        raise ValueError("segment_by needs the window counted by pandas (a DataFrame or an "
                         "iterator of batches); the Spark engine does not count segments yet.")
    if current.n_rows == 0:
        raise EmptyWindowError(
            "The production window has no rows: there is nothing to compare with the baseline. "
            "Check the window's time range or the data source."
        )
    columns = list(columns)
    drift = compare_profiles(baseline, current, options, present_columns=columns)
    integrity = check_integrity(
        baseline, current, columns, missing_rate_tolerance=options.missing_rate_tolerance
    )
    multivariate = None
    if options.multivariate:
        # The window's row sample is bounded and merged part by part, as the baseline's.
        multivariate = multivariate_drift(baseline, current, present_columns=columns,
                                          random_state=baseline.settings.get("random_state", 0))
    segment_drift = None
    if segments is not None:
        segment_drift = segments.compare(options, columns, min_size=options.min_segment_size)
    impact = None
    if baseline.impact is not None:
        ranking = rank_by_impact(baseline.impact, drift)
        impact = DriftImpact(ranking) if predict is None else explain_prediction_drift(
            predict, baseline, current, ranking, present_columns=columns,
            random_state=baseline.settings.get("random_state", 0))
    detectors = None
    if options.detectors:
        # Imports alibi-detect only now, and only because a detector was asked for.
        from mlflow_observe.backends.alibi import alibi_drift

        detectors = alibi_drift(baseline, current, options.detectors, present_columns=columns,
                                random_state=baseline.settings.get("random_state", 0))
    return WindowComparison(drift=drift, integrity=integrity, current=current,
                            multivariate=multivariate, segments=segment_drift, impact=impact,
                            detectors=detectors)


def _parts(data, chunk_size):
    """The window as a sequence of DataFrames."""
    if isinstance(data, pd.DataFrame):
        step = chunk_size or max(len(data), 1)
        for start in range(0, max(len(data), 1), step):
            yield data.iloc[start:start + step]
        return
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "The production data must be a pandas DataFrame or an iterable of DataFrames or "
            f"Arrow record batches. Got {type(data).__name__}."
        )
    for part in data:
        if hasattr(part, "to_pandas") and not isinstance(part, pd.DataFrame):
            part = part.to_pandas()
        if not isinstance(part, pd.DataFrame):
            raise TypeError(f"Each part of the window must be a DataFrame or an Arrow record "
                            f"batch. Got {type(part).__name__}.")
        yield part
