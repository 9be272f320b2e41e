"""Window parts as the baseline sees them: the log's bookkeeping dropped, outputs renamed."""

from __future__ import annotations

import pandas as pd

from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.logs.schema import TIMESTAMP, log_bookkeeping_columns


def prepare_window_part(
    frame: pd.DataFrame, baseline: DataProfile, *, predictions=None, targets=None
) -> pd.DataFrame:
    """A part of a streamed window as the baseline sees it.

    The log's bookkeeping columns are dropped, and the prediction and label
    columns are renamed to the baseline's names.
    """
    renames = {}
    for column, wanted in ((predictions, baseline.predictions), (targets, baseline.targets)):
        if column and wanted and column in frame.columns and column != wanted:
            renames[column] = wanted
    drop = [
        c
        for c in log_bookkeeping_columns(frame.columns)
        if c not in baseline.columns and c not in renames
    ]
    unused_outputs = [
        c
        for c in (predictions, targets)
        if c and c in frame.columns and c not in renames and c not in baseline.columns
    ]
    frame = frame.drop(columns=drop + unused_outputs) if drop or unused_outputs else frame
    return frame.rename(columns=renames) if renames else frame


def timestamp_bounds(features):
    """``(first, last)`` of a frame's log ``timestamp`` column, or None."""
    if not isinstance(features, pd.DataFrame) or TIMESTAMP not in features.columns:
        return None
    stamps = pd.to_datetime(features[TIMESTAMP], utc=True, errors="coerce").dropna()
    return None if stamps.empty else (stamps.min(), stamps.max())
