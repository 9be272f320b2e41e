"""Window parts as the baseline sees them: the log's bookkeeping dropped, outputs renamed."""

from __future__ import annotations

import pandas as pd

from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.weights import weights_or_none
from mlflow_observe.logs.schema import SAMPLE_WEIGHT, TIMESTAMP, log_bookkeeping_columns


def weights_column(baseline: DataProfile) -> str | None:
    """The log's column of row weights (``sample_weight``), unless the baseline compares a
    feature of that name (then it is a feature, and the rows are not weighted)."""
    return None if SAMPLE_WEIGHT in baseline.columns else SAMPLE_WEIGHT


def row_weights(frame: pd.DataFrame, column: str | None):
    """The rows' weights from ``column`` (a null weight is 1: a row logged unsampled), or
    None when there is no such column or every row weighs 1 (the unweighted path).

    Values that are not numbers stay NaN, so that counting refuses them by name.

    >>> row_weights(pd.DataFrame({"sample_weight": [1.0, None, 4.0]}), "sample_weight").tolist()
    [1.0, 1.0, 4.0]
    >>> row_weights(pd.DataFrame({"sample_weight": [1.0, 1.0]}), "sample_weight") is None
    True
    """
    if column is None or column not in frame.columns:
        return None
    return weights_or_none(frame[column])


def rows_represented(frame, n_rows: int) -> float:
    """The traffic a window's rows stand for: the sum of their ``sample_weight`` (a null
    weight is 1), or ``n_rows`` when the frame (pandas or Spark) has no such column.

    >>> rows_represented(pd.DataFrame({"sample_weight": [1.0, 4.0, 4.0]}), 3)
    9.0
    """
    if SAMPLE_WEIGHT not in getattr(frame, "columns", ()):
        return float(n_rows)
    if not isinstance(frame, pd.DataFrame):  # a Spark DataFrame: summed on the cluster
        query = f"sum(coalesce(cast(`{SAMPLE_WEIGHT}` as double), 1.0))"
        total = frame.selectExpr(query).first()[0]
        return float(total or 0.0)
    weights = pd.to_numeric(frame[SAMPLE_WEIGHT], errors="coerce").fillna(1.0)
    return float(weights.sum())


def prepare_window_part(
    frame: pd.DataFrame,
    baseline: DataProfile,
    *,
    predictions=None,
    targets=None,
    keep_weights: bool = False,
) -> pd.DataFrame:
    """A part of a streamed window as the baseline sees it.

    The log's bookkeeping columns are dropped, and the prediction and label
    columns are renamed to the baseline's names. With ``keep_weights``, the
    ``sample_weight`` column stays, for the counting to weigh the rows by it
    (see :func:`weights_column`).
    """
    renames = {}
    for column, wanted in ((predictions, baseline.predictions), (targets, baseline.targets)):
        if column and wanted and column in frame.columns and column != wanted:
            renames[column] = wanted
    kept = weights_column(baseline) if keep_weights else None
    drop = [
        c
        for c in log_bookkeeping_columns(frame.columns)
        if c not in baseline.columns and c not in renames and c != kept
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
