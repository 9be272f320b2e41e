"""Drift per segment: the window's rows sharing a value of a column, against the whole baseline.

Each segment value gets its own window profile (``baseline.empty_like()``),
counted part by part as the window streams, so a segment's profile is the same
whether the window came whole or in batches. At most ``max_segments`` values of
a column are counted on their own, in order of first appearance; later values
share one ``(other)`` profile, which bounds memory on columns with many values.

At the end, values with fewer than ``min_size`` rows are merged into
``(other)`` (profiles are mergeable), which is skipped when it is still smaller
than that, as :func:`~mlflow_observe.core.performance.degradation.compare_segments` does.

Every segment is compared with the *whole* baseline: the baseline records no
segments. A segment that has always differed from the population (a region
with older customers, say) shows as drifted in every window; compare its
figures over time rather than with zero. The segment column itself is not
compared within its own segments (it is constant there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mlflow_observe.core.drift.options import FEATURE, SKIPPED, DriftOptions
from mlflow_observe.core.drift.univariate import DriftResult, compare_profiles
from mlflow_observe.core.performance.degradation import OTHER_SEGMENT
from mlflow_observe.core.profile.data_profile import DataProfile

MISSING_SEGMENT = "(missing)"


@dataclass(frozen=True)
class SegmentDrift:
    """The drift of one segment of the window.

    Attributes
    ----------
    column, value : str
        The segment column and its value (``(other)`` for pooled values).
    n_rows : int
    drift : DriftResult
        The segment's rows against the whole baseline.
    """

    column: str
    value: str
    n_rows: int
    drift: DriftResult

    @property
    def score(self) -> float:
        """The mean severity of the segment's compared feature columns (0 when none)."""
        severities = [
            c.severity for c in self.drift.columns if c.role == FEATURE and c.status != SKIPPED
        ]
        return float(np.mean(np.minimum(severities, 10.0))) if severities else 0.0

    def metrics(self) -> dict[str, float]:
        """The segment's own :meth:`DriftResult.metrics`, under a whole window's keys (for a
        segment logged on a run of its own); a window's run logs only ``drift/n_segments``
        and ``drift/n_drifted_segments``."""
        return self.drift.metrics()

    def to_records(self) -> list[dict]:
        """One record: the segment, its drift verdict and counts, and its score."""
        return [
            {
                "column": self.column,
                "value": self.value,
                "n_rows": self.n_rows,
                "dataset_drift": self.drift.dataset_drift,
                "status": self.drift.status,
                "share_drifted_columns": self.drift.share_drifted,
                "n_drifted_columns": self.drift.n_drifted,
                "n_evaluated_columns": self.drift.n_evaluated,
                "drifted_columns": self.drift.drifted_columns,
                "score": self.score,
            }
        ]


class SegmentCounter:
    """Window profiles per segment value, counted part by part.

    Parameters
    ----------
    baseline : DataProfile
    columns : list of str
        The segment columns.
    max_segments : int, default=50
        Values of a column counted on their own; later values go to ``(other)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> counter = SegmentCounter(baseline, ["region"], max_segments=1)
    >>> counter.update(pd.DataFrame({"x": [1.0, 2.0], "region": ["north", "south"]}))
    >>> {value: p.n_rows for value, p in counter.profiles["region"].items()}
    {'north': 1, '(other)': 1}
    """

    def __init__(self, baseline: DataProfile, columns, *, max_segments: int = 50):
        self.baseline = baseline
        self.columns = [str(c) for c in columns]
        self.max_segments = max_segments
        self.profiles: dict[str, dict[str, DataProfile]] = {c: {} for c in self.columns}

    def update(self, frame: pd.DataFrame, *, weights=None) -> None:
        """Count ``frame``'s rows into their segments (each weighing ``weights[i]``, if given)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"segment_by columns not in the data: {missing}.")
        for column in self.columns:
            labels = segment_labels(frame[column])
            profiles = self.profiles[column]
            for value in pd.unique(labels):  # in order of first appearance
                if value not in profiles and len(profiles) >= self.max_segments:
                    value = OTHER_SEGMENT
                profiles.setdefault(value, self.baseline.empty_like())
            known = [v for v in profiles if v != OTHER_SEGMENT]
            slot = np.where(np.isin(labels, known), labels, OTHER_SEGMENT)
            for value in pd.unique(slot):
                rows = slot == value
                part = None if weights is None else np.asarray(weights)[rows]
                profiles[value].update(frame[rows], weights=part, n_jobs=1)

    def compare(
        self, options: DriftOptions, present_columns, *, min_size: int = 200
    ) -> list[SegmentDrift]:
        """Each segment of at least ``min_size`` rows against the baseline, most drifted first."""
        found = []
        for column, profiles in self.profiles.items():
            for value, profile in pool_small_segments(profiles, min_size).items():
                present = [c for c in present_columns if c != column]
                drift = compare_profiles(self.baseline, profile, options, present_columns=present)
                drift = _without_segment_column(drift, column)
                found.append(SegmentDrift(column, value, profile.n_rows, drift))
        return rank_segments(found)


def segment_labels(values: pd.Series) -> np.ndarray:
    """A segment column's values as text, missing ones as ``(missing)``."""
    return values.astype(str).where(values.notna(), MISSING_SEGMENT).to_numpy(dtype=object)


def pool_small_segments(profiles: dict, min_size: int) -> dict:
    """Merge the segments under ``min_size`` rows into ``(other)``; drop it if still small.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> base = build_profile(pd.DataFrame({"x": [1.0]}))
    >>> parts = {v: base.empty_like() for v in "abc"}
    >>> for v, n in zip("abc", (300, 150, 60)):
    ...     parts[v].update(pd.DataFrame({"x": [1.0] * n}))
    >>> {v: p.n_rows for v, p in pool_small_segments(parts, 200).items()}
    {'a': 300, '(other)': 210}
    """
    kept: dict[str, DataProfile] = {}
    small: list[DataProfile] = []
    for value, profile in profiles.items():
        (
            kept.__setitem__(value, profile)
            if profile.n_rows >= min_size and value != OTHER_SEGMENT
            else small.append(profile)
        )
    if small:
        pooled = small[0]
        for profile in small[1:]:
            pooled = pooled.merge(profile)
        if pooled.n_rows >= min_size:
            kept[OTHER_SEGMENT] = pooled
    return kept


def rank_segments(segments) -> list[SegmentDrift]:
    """Drifted segments first, then by share of drifted columns, then by mean severity."""
    return sorted(
        segments,
        key=lambda s: (-s.drift.dataset_drift, -s.drift.share_drifted, -s.score, s.column, s.value),
    )


def _without_segment_column(drift: DriftResult, column: str) -> DriftResult:
    columns = [
        replace(c, note="the segment column (constant within its segment)")
        if c.column == column
        else c
        for c in drift.columns
    ]
    return replace(drift, columns=columns)
