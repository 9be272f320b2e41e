"""The monitor's reading of the prediction log through Spark (``engine="spark"``).

The same rows as the pandas reading (:func:`mlflow_observe.logs.reader.read_logs`
with labels and served attributions joined, then the model version's rows), as
a lazy Spark DataFrame: the day's files are read by Spark, each window is a
filter on it, and the checks count it on the cluster (drift, integrity and
attribution drift by :mod:`mlflow_observe.engines.spark`; degradation streams
its few columns to the driver). The labels and the attributions (a sample of
the served rows) are read on the driver, as the pandas reading reads them, and
joined by Spark on ``request_id``.
"""

from __future__ import annotations

import pandas as pd

from mlflow_observe.logs.reader import LogWindowError, log_files, read_attributions, read_labels
from mlflow_observe.logs.schema import (
    ATTRIBUTION_PREFIX,
    LABEL,
    MODEL_NAME,
    MODEL_VERSION,
    REQUEST_ID,
    TIMESTAMP,
)


def read_rows_spark(session, logs: str, model, start, end):
    """The model version's rows in ``[start, end)``, labels and attributions joined; None when none.

    Examples
    --------
    >>> callable(read_rows_spark)
    True
    """
    from pyspark.sql import functions as F

    try:
        files = log_files(logs, start, end)
    except LogWindowError:
        return None
    if not files:
        return None
    frame = session.read.option("mergeSchema", "true").parquet(*files)
    stamps = F.col(TIMESTAMP)
    frame = frame.filter(
        (stamps >= F.lit(start.to_pydatetime())) & (stamps < F.lit(end.to_pydatetime()))
    )
    if MODEL_NAME in frame.columns:
        frame = frame.filter(F.col(MODEL_NAME) == model.name)
    if (
        MODEL_VERSION in frame.columns
        and frame.filter(F.col(MODEL_VERSION).isNotNull()).limit(1).count()
    ):
        # Rows from a server that knew its version: keep this version's only.
        frame = frame.filter(F.col(MODEL_VERSION).cast("string") == str(model.version))
    labels = read_labels(logs)
    if len(labels) and REQUEST_ID in frame.columns:
        frame = frame.join(session.createDataFrame(labels), on=REQUEST_ID, how="left")
    else:
        frame = frame.withColumn(LABEL, F.lit(None).cast("string"))
    attributions = read_attributions(logs, start, end)
    added = [
        c
        for c in attributions.columns
        if c.startswith(ATTRIBUTION_PREFIX) and c not in frame.columns
    ]
    if len(attributions) and added and REQUEST_ID in frame.columns:
        # The attribution columns only, as numbers (what attribution drift counts; a value that
        # is not one counts as not attributed, as on pandas): Spark needs a type per column.
        values = attributions[added].apply(pd.to_numeric, errors="coerce").astype(float)
        values.insert(0, REQUEST_ID, attributions[REQUEST_ID].astype(str))
        frame = frame.join(session.createDataFrame(values), on=REQUEST_ID, how="left")
    return frame


def window_rows(frame, window):
    """The rows of ``frame`` in one window ``[start, end)``."""
    from pyspark.sql import functions as F

    stamps = F.col(TIMESTAMP)
    return frame.filter(
        (stamps >= F.lit(window.start.to_pydatetime()))
        & (stamps < F.lit(window.end.to_pydatetime()))
    )
